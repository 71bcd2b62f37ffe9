//! One turn's way through the layers: the event handlers of a message, from arrival to
//! its memory write. Uncontended latencies are drawn and added to the time of the next
//! contended step; see the parent module for the whole picture.

use surge_profile::system::ThrottlePolicy;

use super::{Answer, Event, Sim, draw};
use crate::bedrock::Lease;
use crate::burst::Start;
use crate::gateway::Admission;
use crate::message::{Message, NO_SESSION};
use crate::retry::backoff;
use crate::stats::{ErrorClass, Step};
use crate::time::{Nanos, SECOND, nanos};

impl Sim<'_> {
    // ---- arrival and gateway -------------------------------------------------------

    /// A message due at `t0`, handled when it reaches the orchestrator: at `t0` plus a
    /// constant auth latency ([`Sim::auth_folded`]), so that step costs no event. Its user
    /// sends it then, or when the answer in flight lands ([`crate::sessions`]).
    pub(super) fn arrival(&mut self, t0: Nanos) {
        self.now = t0 + self.auth_folded;
        let stage = self.arrivals.stage();
        if !self
            .arrivals
            .take(self.gateway.connected_share(self.wanted))
        {
            return;
        }
        self.counters.sent += 1;
        let store = self.plan.store_mix.draw(&mut self.rng.mix);
        let intent = self.plan.intent_mix.draw(&mut self.rng.mix);
        self.consumption.message(store);
        let connected = self.gateway.connected().max(1);
        let session = self.rng.gateway.below(connected) as u32;
        let m = self.msgs.insert(Message {
            t0,
            session,
            store: store as u8,
            intent: intent as u8,
            model: self.plan.intents[intent].model as u8,
            stage: stage.min(u8::MAX as usize) as u8,
            measured: t0 >= self.warmup,
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
            Admission::Accepted => {}
            Admission::UserLimit => return self.fail(m, ErrorClass::GatewayUser, at),
            Admission::AccountLimit => return self.fail(m, ErrorClass::GatewayAccount, at),
        }
        self.steps.measured += u64::from(self.msgs[m].measured);
        let auth = match (self.sys.gateway.enabled, self.auth_folded) {
            (false, _) => 0,
            (true, 0) => draw(&self.sys.gateway.auth, &mut self.rng.auth),
            (true, folded) => folded,
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
        let horizon = self.arrivals.peek().unwrap_or(Nanos::MAX);
        if let Some(next) = self.sessions.release(session, t, horizon) {
            self.send(next, t);
        }
    }

    // ---- orchestrator and burst workers --------------------------------------------

    /// Serves message `m` on the worker it holds: records its wait, schedules its end.
    pub(super) fn serve(&mut self, m: u32) {
        let ecs = self.ecs.as_ref().expect("orchestrator enabled");
        let cpu = draw(&self.sys.orchestrator.cpu_per_message, &mut self.rng.cpu);
        let service = ecs.service_time(cpu);
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
        let threshold = self.sys.burst.queue_threshold as usize;
        if ecs.service.queue_len() >= threshold {
            if let Some(start) = self.burst.as_mut().and_then(|b| b.try_invoke(now)) {
                let b = &self.sys.burst;
                let start = match start {
                    Start::Warm => draw(&b.warm_start, &mut self.rng.burst),
                    Start::Cold => draw(&b.cold_start, &mut self.rng.burst),
                };
                let busy = start + draw(&b.service, &mut self.rng.burst);
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
        if sys.precomputed.enabled
            && self
                .rng
                .precomputed
                .chance(sys.precomputed.share.fraction())
        {
            self.counters.precomputed += 1;
            let d = draw(&sys.precomputed.latency, &mut self.rng.precomputed);
            self.step(m, Step::Precomputed, d);
            return self.respond(m, t + d, Answer::Ready);
        }
        let classify = if sys.classifier.enabled {
            draw(&sys.classifier.latency, &mut self.rng.classifier)
        } else {
            0
        };
        self.step(m, Step::Classifier, classify);
        let reads = sys.memory.reads_per_turn;
        if self.table.is_some() && reads > 0 {
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
            let done = now + draw(&self.sys.memory.read_latency, &mut self.rng.memory);
            let spent = done - msg.mark;
            self.step(m, Step::Memory, spent);
            return self.after_memory(m, done);
        }
        self.retry_memory(m, now, Event::MemoryRead(m), ErrorClass::DynamodbRead);
    }

    /// A DynamoDB request of `m` made at `now` was throttled: back off and retry, or give up.
    pub(super) fn retry_memory(&mut self, m: u32, now: Nanos, again: Event, class: ErrorClass) {
        let msg = &mut self.msgs[m];
        if u32::from(msg.attempts) >= self.sys.memory.max_retries {
            return self.fail(m, class, now);
        }
        let wait = backoff(
            nanos(self.sys.memory.retry_base),
            u32::from(msg.attempts),
            &mut self.rng.memory_retry,
        );
        msg.attempts = msg.attempts.saturating_add(1);
        self.counters.memory_retries += 1;
        self.at(now + wait, again);
    }

    pub(super) fn after_memory(&mut self, m: u32, t: Nanos) {
        let sys = self.sys;
        let intent = &self.plan.intents[usize::from(self.msgs[m].intent)];
        let (llm, rag) = (intent.llm, intent.rag);
        let cache = if sys.cache.enabled {
            let ratio = if sys.cache.prewarm {
                sys.cache.prewarmed_hit_ratio
            } else {
                sys.cache.hit_ratio
            };
            self.counters.cache_lookups += 1;
            if self.rng.cache.chance(ratio.fraction()) {
                self.counters.cache_hits += 1;
                draw(&sys.cache.hit_latency, &mut self.rng.cache)
            } else {
                draw(&sys.cache.miss_latency, &mut self.rng.cache)
            }
        } else {
            0
        };
        let fanned = if rag && sys.rag.enabled {
            let r = draw(&sys.rag.latency, &mut self.rng.rag);
            if sys.rag.speculative {
                (t + cache).max(self.msgs[m].orchestrated + r)
            } else {
                t + cache.max(r)
            }
        } else {
            t + cache
        };
        self.step(m, Step::FanOut, fanned - t);
        if !(llm && self.bedrock.is_some()) {
            return self.respond(m, fanned, Answer::Template);
        }
        if sys.semantic_cache.enabled {
            let d = draw(&sys.semantic_cache.latency, &mut self.rng.semantic_cache);
            self.step(m, Step::SemanticCache, d);
            self.counters.semantic_lookups += 1;
            if self
                .rng
                .semantic_cache
                .chance(sys.semantic_cache.hit_ratio.fraction())
            {
                self.counters.semantic_hits += 1;
                return self.respond(m, fanned + d, Answer::Ready);
            }
            return self.start_llm(m, fanned + d);
        }
        self.start_llm(m, fanned);
    }

    // ---- Bedrock -------------------------------------------------------------------

    pub(super) fn start_llm(&mut self, m: u32, t: Nanos) {
        let sys = self.sys;
        let msg = &self.msgs[m];
        let intent = &self.plan.intents[usize::from(msg.intent)];
        let prompt = self.plan.stores[usize::from(msg.store)].prompt_tokens;
        let context = sys.prompt.context_tokens.sample(&mut self.rng.prompt);
        let output = intent.output_tokens.sample(&mut self.rng.tokens).round();
        let msg = &mut self.msgs[m];
        msg.input_tokens = (prompt + context) as f32;
        msg.output_tokens = (output as u32).min(intent.max_tokens);
        msg.attempts = 0;
        msg.mark = t;
        self.counters.llm_calls += 1;
        self.at(t, Event::LlmStart(m));
    }

    pub(super) fn reserved(&self, m: u32) -> f64 {
        let msg = &self.msgs[m];
        f64::from(msg.input_tokens)
            + f64::from(self.plan.intents[usize::from(msg.intent)].max_tokens)
    }

    pub(super) fn llm_start(&mut self, m: u32) {
        let now = self.now;
        let reserve = self.reserved(m);
        let model = usize::from(self.msgs[m].model);
        let capacity = self.bedrock.as_mut().expect("bedrock enabled");
        if let Some(lease) = capacity.reserve(model, now, reserve) {
            let spec = &self.plan.models[model].model;
            let ttft = draw(&spec.ttft, &mut self.rng.ttft);
            let msg = &mut self.msgs[m];
            let generate = f64::from(msg.output_tokens) / spec.output_rate.per_second();
            msg.lease = Some(lease);
            msg.first_token = now + ttft;
            return self.at(
                now + ttft + (generate * SECOND as f64) as Nanos,
                Event::LlmEnd(m),
            );
        }
        let bedrock = &self.sys.bedrock;
        let msg = &mut self.msgs[m];
        match bedrock.on_throttle {
            ThrottlePolicy::Retry if u32::from(msg.attempts) < bedrock.max_retries => {
                let wait = backoff(
                    nanos(bedrock.retry_base),
                    u32::from(msg.attempts),
                    &mut self.rng.bedrock_retry,
                );
                msg.attempts = msg.attempts.saturating_add(1);
                self.at(now + wait, Event::LlmStart(m));
            }
            ThrottlePolicy::Fallback if !msg.fell_back && model != self.plan.fast_model => {
                msg.fell_back = true;
                msg.model = self.plan.fast_model as u8;
                self.at(now, Event::LlmStart(m));
            }
            _ => self.fail(m, ErrorClass::Bedrock, now),
        }
    }

    pub(super) fn llm_end(&mut self, m: u32) {
        let now = self.now;
        let reserved = self.reserved(m);
        let msg = &mut self.msgs[m];
        let model = usize::from(msg.model);
        let used = f64::from(msg.input_tokens) + f64::from(msg.output_tokens);
        let lease: Lease = msg.lease.take().expect("a call in progress holds a lease");
        msg.generated = true;
        let (mark, tokens, measured) = (msg.mark, msg.output_tokens, msg.measured);
        self.consumption.llm_call(
            usize::from(msg.store),
            model,
            f64::from(msg.input_tokens),
            f64::from(msg.output_tokens),
        );
        self.bedrock
            .as_mut()
            .expect("bedrock enabled")
            .settle(model, lease, reserved, used);
        if measured {
            self.steps.add(Step::Llm, now - mark);
            if self.sys.bedrock.streaming && tokens > 1 {
                let rate = self.plan.models[model].model.output_rate.per_second();
                self.lat
                    .itl((SECOND as f64 / rate) as Nanos, u64::from(tokens - 1));
            }
        }
        self.respond(m, now, Answer::Generated);
    }

    // ---- the way back --------------------------------------------------------------

    pub(super) fn respond(&mut self, m: u32, t: Nanos, answer: Answer) {
        let sys = self.sys;
        let guard = if answer == Answer::Generated && sys.guardrails.enabled {
            draw(&sys.guardrails.latency, &mut self.rng.guardrails)
        } else {
            0
        };
        let format = if answer != Answer::Ready && sys.format.enabled {
            draw(&sys.format.latency, &mut self.rng.format)
        } else {
            0
        };
        let network = if sys.gateway.enabled {
            draw(&sys.gateway.network, &mut self.rng.network)
        } else {
            0
        };
        let done = t + guard + format + network;
        let msg = &mut self.msgs[m];
        if msg.measured {
            self.steps.add(Step::Guardrails, guard);
            self.steps.add(Step::Format, format);
            self.steps.add(Step::Network, network);
        }
        msg.first_token = if answer == Answer::Generated && sys.bedrock.streaming {
            msg.first_token + network
        } else {
            done
        };
        if done < self.interval_end() {
            // Nothing observable changes before the answer lands in the same interval.
            self.done(m, done);
        } else {
            self.at(done, Event::Done(m));
        }
    }

    /// The answer of `m` reaches the user at `now`.
    pub(super) fn done(&mut self, m: u32, now: Nanos) {
        let msg = &self.msgs[m];
        let e2e = now - msg.t0;
        if msg.measured {
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
        if e2e > self.reply_timeout {
            self.counters.error(ErrorClass::Timeout);
        } else {
            self.counters.completed += 1;
        }
        self.release_session(m, now);
        let writes = self.sys.memory.writes_per_turn;
        if self.table.is_some() && writes > 0 {
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
