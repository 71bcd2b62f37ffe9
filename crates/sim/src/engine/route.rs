//! One turn's way through the layers ([`surge_model::turn`] says which way): the event
//! handlers of a message, from arrival to its memory write. Uncontended latencies are
//! drawn and added to the time of the next contended step; see the parent module for the
//! whole picture.

use surge_model::bedrock::{Lease, Tokens, charge, reservation, token_gap};
use surge_model::gateway::{self, Admission};
use surge_model::time::Nanos;
use surge_model::turn::{self, Answer, Throttled, WayBack};

use std::cmp::Reverse;

use super::{Event, Sim};
use crate::arrivals::Given;
use crate::message::{Message, NO_SESSION};
use crate::stats::{ErrorClass, Judged, Step};

impl Sim<'_> {
    // ---- arrival and gateway -------------------------------------------------------

    /// A message due at `t0`, handled when it reaches the orchestrator: at `t0` plus a
    /// constant auth latency ([`Sim::auth_folded`]), so that step costs no event. Its user
    /// sends it then, or when the answer in flight lands ([`crate::sessions`]).
    pub(super) fn arrival(&mut self, t0: Nanos) {
        self.now = t0 + self.auth_folded;
        let stage = self.arrivals.stage();
        let Some(given) = self
            .arrivals
            .take(self.gateway.connected_share(self.wanted))
        else {
            return;
        };
        self.enter(t0, given, stage, false);
    }

    /// The earliest retry falls due: its user sends the failed text again, on the same
    /// session (see [`Sim::retry_later`]).
    pub(super) fn retry_arrival(&mut self) {
        let Some(Reverse(r)) = self.retries.pop() else {
            return;
        };
        self.now = r.t0 + self.auth_folded;
        self.counters.retries += 1;
        let given = Given {
            session: Some(r.session),
            intent: Some(usize::from(r.intent)),
            store: Some(usize::from(r.store)),
        };
        self.enter(r.t0, given, usize::from(r.stage), true);
    }

    /// Message `given`, due at `t0` in `stage`, enters the system (`retry`: sent again).
    fn enter(&mut self, t0: Nanos, given: Given, stage: usize, retry: bool) {
        self.counters.sent += 1;
        let rng = &mut self.rng;
        let store = given
            .store
            .unwrap_or_else(|| self.plan.store_mix.draw(&mut rng.mix));
        let intent = given
            .intent
            .unwrap_or_else(|| self.plan.intent_mix.draw(&mut rng.mix));
        self.consumption.message(store);
        let connected = self.gateway.connected().max(1);
        let session = given
            .session
            .unwrap_or_else(|| rng.gateway.below(connected) as u32);
        let earlier_turns = self.turns.as_mut().map_or(0, |turns| {
            let i = session as usize;
            if i >= turns.len() {
                turns.resize(i + 1, 0);
            }
            let earlier = turns[i];
            turns[i] = earlier.saturating_add(1);
            earlier
        });
        let m = self.msgs.insert(Message {
            t0,
            session,
            store: store as u8,
            intent: intent as u8,
            model: self.plan.intents[intent].model as u8,
            stage: stage.min(u8::MAX as usize) as u8,
            measured: t0 >= self.warmup,
            earlier_turns,
            retry,
            ..Message::default()
        });
        if let Some(at) = self.sessions.arrive(session, t0, m) {
            self.send(m, at);
        }
    }

    /// The user sends message `m` at `at` (its intended time, or later when it waited).
    pub(super) fn send(&mut self, m: u32, at: Nanos) {
        let session = self.msgs[m].session;
        match self.gateway.admit(at, session as usize) {
            Admission::Accepted => {
                if let Some(a) = self.abandon_after {
                    // Sent late, the user's patience may be over already: then at once.
                    let patience_ends = (self.msgs[m].t0 + a).max(at);
                    self.at(patience_ends, Event::GiveUp(m));
                }
            }
            Admission::UserLimit => return self.fail(m, ErrorClass::GatewayUser, at),
            Admission::AccountLimit => return self.fail(m, ErrorClass::GatewayAccount, at),
        }
        self.steps.measured += u64::from(self.msgs[m].measured);
        let auth = match self.auth_folded {
            0 => turn::auth(self.sys, &mut self.rng),
            folded => folded,
        };
        self.step(m, Step::Auth, auth);
        let at = at + auth;
        match (&self.ecs, at == self.now) {
            (Some(_), true) => self.orchestrate(m),
            (Some(_), false) => self.at(at, Event::Orchestrate(m)),
            (None, _) => self.after_orchestration(m, at),
        }
    }

    /// The answer to (or error of) `m` reached its user at `t`: the session may send the
    /// next message. Does nothing the second time.
    pub(super) fn release_session(&mut self, m: u32, t: Nanos) {
        let session = std::mem::replace(&mut self.msgs[m].session, NO_SESSION);
        if session == NO_SESSION {
            return;
        }
        // No message not yet arrived can be due before the next candidate arrival.
        let horizon = self.horizon();
        if let Some(next) = self.sessions.release(session, t, horizon) {
            self.send(next, t);
        }
    }

    // ---- orchestrator and burst workers --------------------------------------------

    /// Serves message `m` on the worker it holds: records its wait, schedules its end.
    pub(super) fn serve(&mut self, m: u32) {
        let ecs = self.ecs.as_ref().expect("orchestrator enabled");
        let service = turn::service_time(self.sys, ecs.share, &mut self.rng);
        let waited = self.now - self.msgs[m].mark;
        if self.msgs[m].measured {
            self.lat.queue_wait(waited);
            self.steps.add(Step::Queue, waited);
            self.steps.add(Step::Orchestrator, service);
        }
        self.at(self.now + service, Event::CpuDone(m));
    }

    pub(super) fn orchestrate(&mut self, m: u32) {
        let now = self.now;
        self.msgs[m].mark = now;
        let ecs = self.ecs.as_mut().expect("orchestrator enabled");
        if ecs.service.try_start(now) {
            return self.serve(m);
        }
        if turn::overflows(&self.sys.burst, ecs.service.queue_len()) {
            if let Some(start) = self.burst.as_mut().and_then(|b| b.try_invoke(now)) {
                let busy = turn::burst_busy(&self.sys.burst, start, &mut self.rng);
                self.counters.burst_invocations += 1;
                self.consumption.lambda(busy);
                self.step(m, Step::Burst, busy);
                return self.at(now + busy, Event::BurstDone(m));
            }
        }
        self.ecs.as_mut().expect("checked").service.enqueue(now, m);
    }

    pub(super) fn cpu_done(&mut self, m: u32) {
        let ecs = self.ecs.as_mut().expect("orchestrator enabled");
        if let Some(next) = ecs.service.finish(self.now) {
            self.serve(next);
        }
        self.after_orchestration(m, self.now);
    }

    // ---- the turn after orchestration ----------------------------------------------

    pub(super) fn after_orchestration(&mut self, m: u32, t: Nanos) {
        let sys = self.sys;
        self.msgs[m].orchestrated = t;
        if let Some(d) = turn::precomputed(sys, &mut self.rng) {
            self.counters.precomputed += 1;
            self.step(m, Step::Precomputed, d);
            return self.respond(m, t + d, Answer::Ready);
        }
        let classify = turn::classify(sys, &mut self.rng);
        self.step(m, Step::Classifier, classify);
        let reads = turn::memory_reads(sys);
        if reads > 0 {
            let msg = &mut self.msgs[m];
            msg.pending = reads.min(u32::from(u8::MAX)) as u8;
            msg.attempts = 0;
            msg.mark = t + classify;
            self.memory_read(m, t + classify);
        } else {
            self.after_memory(m, t + classify);
        }
    }

    /// Reads the conversation memory of `m`, due at `now` (charged ahead, see the module docs).
    pub(super) fn memory_read(&mut self, m: u32, now: Nanos) {
        let table = self.table.as_mut().expect("memory enabled");
        let msg = &mut self.msgs[m];
        while msg.pending > 0 && table.read(now) {
            msg.pending -= 1;
            self.consumption.read_units += table.read_units;
        }
        if msg.pending == 0 {
            let done = now + turn::memory_read_latency(&self.sys.memory, &mut self.rng);
            let spent = done - msg.mark;
            self.step(m, Step::Memory, spent);
            return self.after_memory(m, done);
        }
        self.retry_memory(m, now, Event::MemoryRead(m), ErrorClass::DynamodbRead);
    }

    /// A DynamoDB request of `m` made at `now` was throttled: back off and retry, or give up.
    pub(super) fn retry_memory(&mut self, m: u32, now: Nanos, again: Event, class: ErrorClass) {
        let attempts = u32::from(self.msgs[m].attempts);
        let Some(wait) = turn::memory_retry(&self.sys.memory, attempts, &mut self.rng) else {
            return self.fail(m, class, now);
        };
        let msg = &mut self.msgs[m];
        msg.attempts = msg.attempts.saturating_add(1);
        self.counters.memory_retries += 1;
        self.at(now + wait, again);
    }

    pub(super) fn after_memory(&mut self, m: u32, t: Nanos) {
        let sys = self.sys;
        let intent = &self.plan.intents[usize::from(self.msgs[m].intent)];
        let (llm, rag) = (intent.llm, intent.rag);
        let cache = match turn::cache_lookup(sys, turn::cache_hit_ratio(sys), &mut self.rng) {
            Some(lookup) => {
                self.counters.cache_lookups += 1;
                self.counters.cache_hits += u64::from(lookup.hit);
                lookup.latency
            }
            None => 0,
        };
        let orchestrated = self.msgs[m].orchestrated;
        let fanned = turn::fan_out(sys, rag, t, orchestrated, cache, &mut self.rng);
        self.step(m, Step::FanOut, fanned - t);
        if !turn::generates(sys, llm) {
            return self.respond(m, fanned, Answer::Template);
        }
        if let Some(d) = turn::semantic_lookup(sys, &mut self.rng) {
            self.step(m, Step::SemanticCache, d);
            self.counters.semantic_lookups += 1;
            if turn::semantic_hit(sys, &mut self.rng) {
                self.counters.semantic_hits += 1;
                return self.respond(m, fanned + d, Answer::Ready);
            }
            return self.start_llm(m, fanned + d);
        }
        self.start_llm(m, fanned);
    }

    // ---- Bedrock -------------------------------------------------------------------

    pub(super) fn start_llm(&mut self, m: u32, t: Nanos) {
        let msg = &self.msgs[m];
        let intent = &self.plan.intents[usize::from(msg.intent)];
        let prompt = self.plan.stores[usize::from(msg.store)].prompt_tokens;
        let earlier = u32::from(msg.earlier_turns);
        let input = turn::input_tokens(self.sys, prompt, earlier, &mut self.rng);
        let cached = turn::cached_prompt(self.sys, prompt, &mut self.rng);
        let output = turn::output_tokens(&intent.output_tokens, intent.max_tokens, &mut self.rng);
        let msg = &mut self.msgs[m];
        msg.input_tokens = (input - cached) as f32;
        msg.prompt_cached = cached > 0.0;
        msg.output_tokens = output;
        msg.attempts = 0;
        msg.mark = t;
        self.counters.llm_calls += 1;
        self.at(t, Event::LlmStart(m));
    }

    /// What the call of `m` reserves on the model it is calling now.
    pub(super) fn reserved(&self, m: u32) -> f64 {
        let msg = &self.msgs[m];
        let max_tokens = self.plan.intents[usize::from(msg.intent)].max_tokens;
        let spec = &self.plan.models[usize::from(msg.model)].model;
        reservation(spec, f64::from(msg.input_tokens), max_tokens)
    }

    pub(super) fn llm_start(&mut self, m: u32) {
        let now = self.now;
        let reserve = self.reserved(m);
        let model = usize::from(self.msgs[m].model);
        let capacity = self.bedrock.as_mut().expect("bedrock enabled");
        if let Some(lease) = capacity.reserve(model, now, reserve) {
            self.msgs[m].lease = Some(lease);
            if let Some(slots) = &mut self.slots[model] {
                if !slots.try_start(now) {
                    // Every slot is busy: the call waits, its quota reserved.
                    return slots.enqueue(now, m);
                }
            }
            return self.generate(m, now);
        }
        let msg = &mut self.msgs[m];
        let (attempts, fell_back) = (u32::from(msg.attempts), msg.fell_back);
        let on_fast_model = model == self.plan.fast_model;
        match turn::on_throttle(
            &self.sys.bedrock,
            attempts,
            fell_back,
            on_fast_model,
            &mut self.rng,
        ) {
            Throttled::Retry { after } => {
                let msg = &mut self.msgs[m];
                msg.attempts = msg.attempts.saturating_add(1);
                self.at(now + after, Event::LlmStart(m));
            }
            Throttled::Fallback => {
                let msg = &mut self.msgs[m];
                msg.fell_back = true;
                msg.model = self.plan.fast_model as u8;
                self.at(now, Event::LlmStart(m));
            }
            Throttled::Fail => self.fail(m, ErrorClass::Bedrock, now),
        }
    }

    /// The model starts on the call of `m` at `now`: its first token comes after the TTFT
    /// and the prompt's prefill, its last at the output rate.
    pub(super) fn generate(&mut self, m: u32, now: Nanos) {
        let model = usize::from(self.msgs[m].model);
        let spec = &self.plan.models[model].model;
        let input = f64::from(self.msgs[m].input_tokens);
        let tokens = Tokens::draw(spec, now, input, &mut self.rng);
        let msg = &mut self.msgs[m];
        // Posted in chunks, the first token reaches the client with the first chunk.
        msg.first_token = match self.chunk {
            Some(chunk) => tokens.due(chunk.min(msg.output_tokens).max(1) - 1),
            None => tokens.first(),
        };
        let end = tokens.due(msg.output_tokens);
        self.at(end, Event::LlmEnd(m));
    }

    pub(super) fn llm_end(&mut self, m: u32) {
        let now = self.now;
        let reserved = self.reserved(m);
        let msg = &mut self.msgs[m];
        let model = usize::from(msg.model);
        let spec = &self.plan.models[model].model;
        let used = charge(
            spec,
            f64::from(msg.input_tokens),
            f64::from(msg.output_tokens),
        );
        let lease: Lease = msg.lease.take().expect("a call in progress holds a lease");
        msg.generated = true;
        let (mark, tokens, measured) = (msg.mark, msg.output_tokens, msg.measured);
        let store = usize::from(msg.store);
        let cached = if msg.prompt_cached {
            self.plan.stores[store].prompt_tokens
        } else {
            0.0
        };
        self.consumption.llm_call(
            store,
            model,
            f64::from(msg.input_tokens),
            f64::from(msg.output_tokens),
            cached,
        );
        self.bedrock
            .as_mut()
            .expect("bedrock enabled")
            .settle(model, lease, reserved, used);
        let next = self.slots[model].as_mut().and_then(|s| s.finish(now));
        if let Some(next) = next {
            self.generate(next, now);
        }
        let gap = token_gap(&self.plan.models[model].model);
        if tokens > 1 && self.sys.bedrock.streaming {
            // From the first token frame to the last (due one gap before the answer is
            // done); an answer that is not streamed comes in one frame, with no timing
            // between its tokens to measure.
            let msg = &mut self.msgs[m];
            msg.tpot = Some((now - gap).saturating_sub(msg.first_token) / Nanos::from(tokens - 1));
        }
        if measured {
            self.steps.add(Step::Llm, now - mark);
            if self.sys.bedrock.streaming && tokens > 1 {
                self.lat.itl(gap, u64::from(tokens - 1));
            }
        }
        self.respond(m, now, Answer::Generated);
    }

    // ---- the way back --------------------------------------------------------------

    pub(super) fn respond(&mut self, m: u32, t: Nanos, answer: Answer) {
        if let Some(chunk) = self.chunk {
            let posts = match answer {
                Answer::Generated => gateway::chunk_posts(chunk, self.msgs[m].output_tokens),
                Answer::Template | Answer::Ready => 1,
            };
            self.gateway.posted(t, posts);
        }
        let back = WayBack::draw(self.sys, answer, &mut self.rng);
        let done = t + back.total();
        let msg = &mut self.msgs[m];
        if msg.measured {
            self.steps.add(Step::Guardrails, back.guardrails);
            self.steps.add(Step::Format, back.format);
            self.steps.add(Step::Network, back.network);
        }
        msg.first_token = back.first_token(msg.first_token, done);
        if done < self.interval_end() {
            // Nothing observable changes before the answer lands in the same interval.
            self.done(m, done);
        } else {
            self.at(done, Event::Done(m));
        }
    }

    /// The answer of `m` reaches the user at `now`.
    pub(super) fn done(&mut self, m: u32, now: Nanos) {
        let e2e = now - self.msgs[m].t0;
        // Recorded ahead of the clock, the answer may land after the user's patience ended
        // at a time the clock has not reached: they left then.
        let left = self
            .abandons(m, now)
            .then(|| {
                self.abandon_after
                    .map(|a| (self.msgs[m].t0 + a).max(self.now))
            })
            .flatten();
        let msg = &self.msgs[m];
        if msg.measured && left.is_none() {
            let ttft = msg.first_token - msg.t0;
            if let Some(stop) = &mut self.early_stop {
                stop.answered(e2e, ttft);
            }
            let model = msg.generated.then_some(usize::from(msg.model));
            self.lat.answered(
                e2e,
                ttft,
                usize::from(msg.store),
                model,
                usize::from(msg.stage),
            );
        }
        // Goodput counts every answer, as `sent` and `completed` do; an answer the user
        // gave up on is not a good one.
        let tokens = if msg.generated { msg.output_tokens } else { 0 };
        let good = self.lat.judge(&Judged {
            e2e,
            ttft: msg.first_token - msg.t0,
            tpot: msg.tpot,
            tokens,
            store: usize::from(msg.store),
            model: msg.generated.then_some(usize::from(msg.model)),
            in_time: left.is_none() && e2e <= self.reply_timeout,
            measured: msg.measured && left.is_none(),
        });
        self.counters.good += u64::from(good);
        self.counters.tokens += u64::from(tokens);
        if left.is_some() {
            // Counted by `abandons`.
        } else if e2e > self.reply_timeout {
            self.counters.error(ErrorClass::Timeout);
        } else {
            self.counters.completed += 1;
        }
        self.release_session(m, left.unwrap_or(now));
        let writes = turn::memory_writes(self.sys);
        if writes > 0 {
            let msg = &mut self.msgs[m];
            msg.pending = writes.min(u32::from(u8::MAX)) as u8;
            msg.attempts = 0;
            self.memory_write(m, now);
        } else {
            self.msgs.remove(m);
        }
    }

    /// Writes the turn of `m` to memory, due at `now` (charged ahead, see the module docs).
    pub(super) fn memory_write(&mut self, m: u32, now: Nanos) {
        let table = self.table.as_mut().expect("memory enabled");
        let msg = &mut self.msgs[m];
        while msg.pending > 0 && table.write(now) {
            msg.pending -= 1;
            self.consumption.write_units += table.write_units;
        }
        if msg.pending == 0 {
            return self.msgs.remove(m);
        }
        self.retry_memory(m, now, Event::MemoryWrite(m), ErrorClass::DynamodbWrite);
    }
}
