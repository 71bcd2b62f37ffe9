//! One turn's route through the layers: what each step costs, what is skipped, what runs
//! in parallel, what retries and what falls back.
//!
//! 1. **Gateway.** Per-user and account limits ([`crate::gateway`]), then auth ([`auth`]).
//! 2. **Orchestrator.** Wait for a worker ([`crate::orchestrator`]), which is busy for the
//!    CPU draw over its share ([`service_time`]). While the queue is at least
//!    `burst.queue_threshold` deep, a Lambda burst worker takes the message instead if
//!    Lambda admits it ([`overflows`], [`crate::burst`], [`burst_busy`]).
//! 3. **Precomputed answer** by its share of traffic ([`precomputed`]): it goes straight
//!    back (an [`Answer::Ready`]). Otherwise the intent is classified ([`classify`]).
//! 4. **Memory read.** [`memory_reads`] requests to the table are issued together; the
//!    step takes one read latency once all are admitted ([`memory_read_latency`]);
//!    throttled ones retry with the SDK's backoff, then fail the turn ([`memory_retry`]).
//! 5. **Fan-out.** The product cache (hit or miss by its ratio, [`cache_lookup`]) runs in
//!    parallel with retrieval when the intent needs it; speculative retrieval starts when
//!    orchestration ends ([`fan_out`]).
//! 6. **Answer.** Intents that need no LLM (or a system without Bedrock) answer from a
//!    template ([`generates`]). LLM intents ask the semantic cache first
//!    ([`semantic_lookup`]): a hit is a ready answer. Else the model of the intent's tier is
//!    called with the store's prompt plus the conversation context ([`input_tokens`],
//!    [`output_tokens`]; the prompt may come from Bedrock's prompt cache, [`cached_prompt`])
//!    under its quotas ([`crate::bedrock`]); a throttled call retries,
//!    falls back to the fast model or fails, by the profile's policy ([`on_throttle`]).
//! 7. **Way back.** Generated answers pass guardrails, generated and template answers are
//!    formatted, every answer crosses the network ([`WayBack`]). Streamed tokens reach the
//!    user a network latency after the model wrote them.
//! 8. **Memory write.** [`memory_writes`] requests are issued when the answer is done, off
//!    its critical path: nothing waits for them; throttled ones retry like reads.
//!
//! Every function draws from the layer it names ([`Layer`]), from the driver's generator.

use surge_profile::Dist;
use surge_profile::SystemModel;
use surge_profile::system::{Bedrock, BurstWorkers, Memory, ThrottlePolicy};

use crate::burst::Start;
use crate::draw::{Layer, Rngs, chance, latency};
use crate::orchestrator::WorkerShare;
use crate::retry::backoff;
use crate::time::{Nanos, nanos};

/// How an answer was produced, which decides the steps after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Written by the LLM: guardrails, format, network; may stream.
    Generated,
    /// A template or product-data answer: format, network.
    Template,
    /// Served ready-made (semantic cache, precomputed): network only.
    Ready,
}

#[inline]
fn draw_from<G: Rngs + ?Sized>(
    d: &Dist<surge_profile::Duration>,
    rngs: &mut G,
    layer: Layer,
) -> Nanos {
    latency(d, rngs.of(layer))
}

/// Step 1: the gateway's auth latency (zero without a gateway).
#[inline]
pub fn auth<G: Rngs + ?Sized>(sys: &SystemModel, rngs: &mut G) -> Nanos {
    if sys.gateway.enabled {
        draw_from(&sys.gateway.auth, rngs, Layer::Auth)
    } else {
        0
    }
}

/// Step 2: how long an orchestrator worker is busy with one message.
#[inline]
pub fn service_time<G: Rngs + ?Sized>(
    sys: &SystemModel,
    share: WorkerShare,
    rngs: &mut G,
) -> Nanos {
    let cpu = draw_from(&sys.orchestrator.cpu_per_message, rngs, Layer::Cpu);
    share.service_time(cpu)
}

/// Step 2: how long a task started by a scale-out takes to join.
#[inline]
pub fn task_start<G: Rngs + ?Sized>(sys: &SystemModel, rngs: &mut G) -> Nanos {
    draw_from(&sys.orchestrator.task_start, rngs, Layer::TaskStart)
}

/// Step 2: whether a message that found no free worker is offered to a burst worker: the
/// queue it would join is `queue_len` deep.
#[inline]
pub fn overflows(burst: &BurstWorkers, queue_len: usize) -> bool {
    burst.enabled && queue_len >= burst.queue_threshold as usize
}

/// Step 2: how long a burst worker is held: its start, then the orchestration it takes over.
#[inline]
pub fn burst_busy<G: Rngs + ?Sized>(burst: &BurstWorkers, start: Start, rngs: &mut G) -> Nanos {
    let start = match start {
        Start::Warm => draw_from(&burst.warm_start, rngs, Layer::Burst),
        Start::Cold => draw_from(&burst.cold_start, rngs, Layer::Burst),
    };
    start + draw_from(&burst.service, rngs, Layer::Burst)
}

/// Step 3: a precomputed answer's latency, when this turn gets one (by its share of traffic).
#[inline]
pub fn precomputed<G: Rngs + ?Sized>(sys: &SystemModel, rngs: &mut G) -> Option<Nanos> {
    let p = &sys.precomputed;
    if p.enabled && chance(rngs.of(Layer::Precomputed), p.share.fraction()) {
        Some(draw_from(&p.latency, rngs, Layer::Precomputed))
    } else {
        None
    }
}

/// Step 3: the intent classifier's latency (zero when it is off).
#[inline]
pub fn classify<G: Rngs + ?Sized>(sys: &SystemModel, rngs: &mut G) -> Nanos {
    if sys.classifier.enabled {
        draw_from(&sys.classifier.latency, rngs, Layer::Classifier)
    } else {
        0
    }
}

/// Step 4: memory reads a turn makes (none without memory).
#[inline]
pub fn memory_reads(sys: &SystemModel) -> u32 {
    if sys.memory.enabled {
        sys.memory.reads_per_turn
    } else {
        0
    }
}

/// Step 8: memory writes a turn makes after its answer (none without memory).
#[inline]
pub fn memory_writes(sys: &SystemModel) -> u32 {
    if sys.memory.enabled {
        sys.memory.writes_per_turn
    } else {
        0
    }
}

/// Step 4: the memory step's latency once every read was admitted.
#[inline]
pub fn memory_read_latency<G: Rngs + ?Sized>(memory: &Memory, rngs: &mut G) -> Nanos {
    draw_from(&memory.read_latency, rngs, Layer::Memory)
}

/// Step 4, 8: a memory request throttled after `attempts` retries: the backoff before the next
/// attempt, or `None` when the SDK gives up.
#[inline]
pub fn memory_retry<G: Rngs + ?Sized>(
    memory: &Memory,
    attempts: u32,
    rngs: &mut G,
) -> Option<Nanos> {
    (attempts < memory.max_retries).then(|| {
        backoff(
            nanos(memory.retry_base),
            attempts,
            rngs.of(Layer::MemoryRetry),
        )
    })
}

/// Step 5: the product cache's hit ratio: pre-warmed or cold.
#[inline]
pub fn cache_hit_ratio(sys: &SystemModel) -> f64 {
    let c = &sys.cache;
    if c.prewarm {
        c.prewarmed_hit_ratio.fraction()
    } else {
        c.hit_ratio.fraction()
    }
}

/// Step 5: one product-cache lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLookup {
    pub hit: bool,
    pub latency: Nanos,
}

/// Step 5: the product-cache lookup with hit ratio `ratio`, or `None` without a cache.
#[inline]
pub fn cache_lookup<G: Rngs + ?Sized>(
    sys: &SystemModel,
    ratio: f64,
    rngs: &mut G,
) -> Option<CacheLookup> {
    let c = &sys.cache;
    if !c.enabled {
        return None;
    }
    let hit = chance(rngs.of(Layer::Cache), ratio);
    let d = if hit { &c.hit_latency } else { &c.miss_latency };
    Some(CacheLookup {
        hit,
        latency: draw_from(d, rngs, Layer::Cache),
    })
}

/// Step 5: when the fan-out that starts at `t` is done: the cache lookup (`cache` long) in
/// parallel with retrieval when the intent needs it (`rag`). Speculative retrieval began
/// when orchestration ended (`orchestrated`), so only what is left of it counts.
#[inline]
pub fn fan_out<G: Rngs + ?Sized>(
    sys: &SystemModel,
    rag: bool,
    t: Nanos,
    orchestrated: Nanos,
    cache: Nanos,
    rngs: &mut G,
) -> Nanos {
    if !(rag && sys.rag.enabled) {
        return t + cache;
    }
    let r = draw_from(&sys.rag.latency, rngs, Layer::Rag);
    if sys.rag.speculative {
        (t + cache).max(orchestrated + r)
    } else {
        t + cache.max(r)
    }
}

/// Step 6: whether an intent's answer is generated by the LLM (else it is a template).
#[inline]
pub fn generates(sys: &SystemModel, llm: bool) -> bool {
    llm && sys.bedrock.enabled
}

/// Step 6: the semantic-cache lookup's latency, or `None` without a semantic cache.
#[inline]
pub fn semantic_lookup<G: Rngs + ?Sized>(sys: &SystemModel, rngs: &mut G) -> Option<Nanos> {
    let s = &sys.semantic_cache;
    s.enabled
        .then(|| draw_from(&s.latency, rngs, Layer::SemanticCache))
}

/// Step 6: whether the semantic cache answers, by its hit ratio: the simulator's stand-in for
/// the similarity search the mock really does.
#[inline]
pub fn semantic_hit<G: Rngs + ?Sized>(sys: &SystemModel, rngs: &mut G) -> bool {
    chance(
        rngs.of(Layer::SemanticCache),
        sys.semantic_cache.hit_ratio.fraction(),
    )
}

/// Step 6: input tokens of an LLM call: the store's rendered prompt (`prompt_tokens`), the
/// conversation context and, with `prompt.history`, the history of the session's
/// `earlier_turns` (at most `prompt.history.turns` of them).
#[inline]
pub fn input_tokens<G: Rngs + ?Sized>(
    sys: &SystemModel,
    prompt_tokens: f64,
    earlier_turns: u32,
    rngs: &mut G,
) -> f64 {
    let p = &sys.prompt;
    let input = prompt_tokens + p.context_tokens.sample(rngs.of(Layer::Prompt));
    match &p.history {
        None => input,
        Some(h) => {
            let kept = earlier_turns.min(u32::from(h.turns));
            input + f64::from(kept) * h.tokens_per_turn.sample(rngs.of(Layer::Prompt))
        }
    }
}

/// Step 6: the mean history a session's `n`-th message carries, over messages 1..=n
/// (for arithmetic without sessions: the pre-flight and the cost model).
pub fn mean_history_tokens(sys: &SystemModel, messages_per_session: f64) -> f64 {
    let Some(history) = &sys.prompt.history else {
        return 0.0;
    };
    let n = messages_per_session.max(1.0).round() as u32;
    let h = u32::from(history.turns);
    let kept: u64 = (0..n).map(|k| u64::from(k.min(h))).sum();
    kept as f64 / f64::from(n) * history.tokens_per_turn.mean()
}

/// Step 6: the input tokens Bedrock reads from its prompt cache for this call: the store's
/// system prompt (`prompt_tokens`) on a cache hit, by `prompt.cache_hit_ratio`; none
/// without prompt caching. The call's other input tokens are read, prefilled and charged.
#[inline]
pub fn cached_prompt<G: Rngs + ?Sized>(sys: &SystemModel, prompt_tokens: f64, rngs: &mut G) -> f64 {
    let ratio = sys.prompt.cache_hit_ratio.fraction();
    if ratio > 0.0 && chance(rngs.of(Layer::PromptCache), ratio) {
        prompt_tokens
    } else {
        0.0
    }
}

/// Step 6: output tokens of an answer whose length is drawn from `length` (an intent's
/// `output_tokens`), rounded, at most `max_tokens`.
#[inline]
pub fn output_tokens<G: Rngs + ?Sized>(length: &Dist<f64>, max_tokens: u32, rngs: &mut G) -> u32 {
    (length.sample(rngs.of(Layer::Tokens)).round() as u32).min(max_tokens)
}

/// Step 6: what a turn does when Bedrock throttles its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Call the same model again after this backoff.
    Retry { after: Nanos },
    /// Call the fast model now.
    Fallback,
    /// Give up: the turn fails.
    Fail,
}

/// Step 6: the profile's throttle policy for a call retried `attempts` times so far, which has
/// (`fell_back`) or has not fallen back yet and is (`on_fast_model`) or is not on the
/// fast model already.
#[inline]
pub fn on_throttle<G: Rngs + ?Sized>(
    bedrock: &Bedrock,
    attempts: u32,
    fell_back: bool,
    on_fast_model: bool,
    rngs: &mut G,
) -> Throttled {
    match bedrock.on_throttle {
        ThrottlePolicy::Retry if attempts < bedrock.max_retries => Throttled::Retry {
            after: backoff(
                nanos(bedrock.retry_base),
                attempts,
                rngs.of(Layer::BedrockRetry),
            ),
        },
        ThrottlePolicy::Fallback if !fell_back && !on_fast_model => Throttled::Fallback,
        _ => Throttled::Fail,
    }
}

/// Step 7: the steps between an answer being ready and its user having it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WayBack {
    pub guardrails: Nanos,
    pub format: Nanos,
    pub network: Nanos,
    /// Whether tokens reach the user as the model writes them.
    pub streamed: bool,
}

impl WayBack {
    /// The way back of an answer produced as `answer`.
    #[inline]
    pub fn draw<G: Rngs + ?Sized>(sys: &SystemModel, answer: Answer, rngs: &mut G) -> Self {
        let guardrails = if answer == Answer::Generated && sys.guardrails.enabled {
            draw_from(&sys.guardrails.latency, rngs, Layer::Guardrails)
        } else {
            0
        };
        let format = if answer != Answer::Ready && sys.format.enabled {
            draw_from(&sys.format.latency, rngs, Layer::Format)
        } else {
            0
        };
        let network = if sys.gateway.enabled {
            draw_from(&sys.gateway.network, rngs, Layer::Network)
        } else {
            0
        };
        Self {
            guardrails,
            format,
            network,
            streamed: answer == Answer::Generated && sys.bedrock.streaming,
        }
    }

    /// How long after the answer was ready its user has all of it.
    #[inline]
    pub fn total(&self) -> Nanos {
        self.guardrails + self.format + self.network
    }

    /// When the user sees the first token of an answer done at `done`, whose model wrote
    /// its first token at `model_first`: streamed, a network latency after the model
    /// wrote it; otherwise with the whole answer.
    #[inline]
    pub fn first_token(&self, model_first: Nanos, done: Nanos) -> Nanos {
        if self.streamed {
            model_first + self.network
        } else {
            done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::Shared;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use surge_profile::Profile;

    fn system(name: &str) -> SystemModel {
        let path = format!("{}/../../profiles/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        Profile::load(&path).unwrap().system
    }

    fn rngs() -> Shared<StdRng> {
        Shared(StdRng::seed_from_u64(42))
    }

    const MS: Nanos = 1_000_000;

    #[test]
    fn each_shipped_intent_takes_its_documented_route() {
        // The seed's Q26 tiers and Q35 "others use templates or cache", with tiering on.
        let mut sys = system("latency-optimizations");
        assert!(sys.bedrock.tiering);
        let route = |sys: &SystemModel| -> Vec<(String, bool, bool, String)> {
            sys.intents
                .iter()
                .map(|(name, i)| {
                    let model = if generates(sys, i.llm) {
                        sys.model_for(i)
                    } else {
                        "-"
                    };
                    (
                        name.clone(),
                        generates(sys, i.llm),
                        i.rag,
                        model.to_string(),
                    )
                })
                .collect()
        };
        let expected = |rows: &[(&str, bool, bool, &str)]| -> Vec<(String, bool, bool, String)> {
            rows.iter()
                .map(|(n, g, r, m)| (n.to_string(), *g, *r, m.to_string()))
                .collect()
        };
        assert_eq!(
            route(&sys),
            expected(&[
                ("chitchat", true, false, "haiku"),
                ("complex_product_question", true, true, "sonnet"),
                ("order_tracking", false, false, "-"),
                ("product_info", false, false, "-"),
                ("recommendation", true, true, "sonnet"),
                ("simple_faq", true, true, "haiku"),
            ])
        );
        sys.bedrock.tiering = false;
        assert!(
            route(&sys).iter().all(|r| r.3 != "haiku"),
            "no tiering: one model"
        );
        sys.bedrock.enabled = false;
        assert!(
            route(&sys).iter().all(|r| !r.1),
            "without Bedrock every intent is a template"
        );
    }

    #[test]
    fn fan_out_runs_cache_and_retrieval_in_parallel() {
        let mut sys = system("local");
        sys.rag.latency = "100ms".parse().unwrap();
        sys.rag.speculative = false;
        let t = 1_000 * MS;
        assert_eq!(
            fan_out(&sys, true, t, 0, 30 * MS, &mut rngs()),
            t + 100 * MS
        );
        assert_eq!(
            fan_out(&sys, true, t, 0, 150 * MS, &mut rngs()),
            t + 150 * MS
        );
        assert_eq!(
            fan_out(&sys, false, t, 0, 30 * MS, &mut rngs()),
            t + 30 * MS,
            "no rag"
        );
        sys.rag.speculative = true;
        // Retrieval began at orchestration, 60 ms before the fan-out: 40 ms are left.
        assert_eq!(
            fan_out(&sys, true, t, t - 60 * MS, 30 * MS, &mut rngs()),
            t + 40 * MS
        );
        sys.rag.enabled = false;
        assert_eq!(fan_out(&sys, true, t, 0, 30 * MS, &mut rngs()), t + 30 * MS);
    }

    #[test]
    fn skipped_layers_cost_nothing() {
        let mut sys = system("local");
        sys.gateway.enabled = false;
        sys.classifier.enabled = false;
        sys.memory.enabled = false;
        sys.cache.enabled = false;
        sys.precomputed.enabled = false;
        sys.semantic_cache.enabled = false;
        sys.guardrails.enabled = false;
        sys.format.enabled = false;
        let r = &mut rngs();
        assert_eq!((auth(&sys, r), classify(&sys, r)), (0, 0));
        assert_eq!((memory_reads(&sys), memory_writes(&sys)), (0, 0));
        assert_eq!(cache_lookup(&sys, 1.0, r), None);
        assert_eq!(precomputed(&sys, r), None);
        assert_eq!(semantic_lookup(&sys, r), None);
        assert_eq!(WayBack::draw(&sys, Answer::Generated, r).total(), 0);
    }

    #[test]
    fn the_way_back_depends_on_how_the_answer_was_made() {
        let mut sys = system("local");
        sys.guardrails.latency = "100ms".parse().unwrap();
        sys.format.latency = "10ms".parse().unwrap();
        sys.gateway.network = "50ms".parse().unwrap();
        sys.bedrock.streaming = true;
        let r = &mut rngs();
        let generated = WayBack::draw(&sys, Answer::Generated, r);
        assert_eq!(generated.total(), 160 * MS);
        assert_eq!(
            generated.first_token(500 * MS, 2_000 * MS),
            550 * MS,
            "streamed"
        );
        let template = WayBack::draw(&sys, Answer::Template, r);
        assert_eq!(template.total(), 60 * MS);
        assert_eq!(template.first_token(0, 2_000 * MS), 2_000 * MS);
        assert_eq!(WayBack::draw(&sys, Answer::Ready, r).total(), 50 * MS);
        sys.bedrock.streaming = false;
        let whole = WayBack::draw(&sys, Answer::Generated, r);
        assert_eq!(whole.first_token(500 * MS, 2_000 * MS), 2_000 * MS);
    }

    #[test]
    fn throttle_policies_retry_fall_back_or_fail() {
        let mut b = system("local").bedrock;
        b.max_retries = 2;
        b.retry_base = "100ms".parse().unwrap();
        b.on_throttle = ThrottlePolicy::Retry;
        let r = &mut rngs();
        let Throttled::Retry { after } = on_throttle(&b, 1, false, false, r) else {
            panic!("a second retry is allowed");
        };
        assert!((100 * MS..=200 * MS).contains(&after), "{after}");
        assert_eq!(on_throttle(&b, 2, false, false, r), Throttled::Fail);
        b.on_throttle = ThrottlePolicy::Fallback;
        assert_eq!(on_throttle(&b, 0, false, false, r), Throttled::Fallback);
        assert_eq!(on_throttle(&b, 0, true, false, r), Throttled::Fail, "once");
        assert_eq!(
            on_throttle(&b, 0, false, true, r),
            Throttled::Fail,
            "already fast"
        );
        b.on_throttle = ThrottlePolicy::Fail;
        assert_eq!(on_throttle(&b, 0, false, false, r), Throttled::Fail);
    }

    #[test]
    fn memory_retries_until_the_sdk_gives_up() {
        let mut m = system("local").memory;
        m.max_retries = 3;
        m.retry_base = "50ms".parse().unwrap();
        let r = &mut rngs();
        let waits: Vec<_> = (0..5).map(|k| memory_retry(&m, k, r)).collect();
        assert!(waits[..3].iter().all(Option::is_some));
        assert_eq!(&waits[3..], &[None, None]);
        let w2 = waits[2].unwrap();
        assert!(
            (100 * MS..=200 * MS).contains(&w2),
            "third attempt waits 100-200 ms: {w2}"
        );
    }

    #[test]
    fn tokens_and_precomputed_shares() {
        let mut sys = system("local");
        sys.precomputed.enabled = true;
        sys.precomputed.share = "25%".parse().unwrap();
        let r = &mut rngs();
        let hits = (0..10_000)
            .filter(|_| precomputed(&sys, r).is_some())
            .count();
        assert!((2_300..2_700).contains(&hits), "{hits}");
        let length = |s: &str| s.parse::<Dist<f64>>().unwrap();
        assert_eq!(output_tokens(&length("99.5"), 4_000, r), 100);
        assert_eq!(
            output_tokens(&length("5000"), 4_000, r),
            4_000,
            "at most max_tokens"
        );
        sys.prompt.context_tokens = "300".parse().unwrap();
        assert_eq!(
            input_tokens(&sys, 1_200.0, 7, r),
            1_500.0,
            "no history by default"
        );
        sys.prompt.history = Some(surge_profile::system::History {
            tokens_per_turn: "100".parse().unwrap(),
            turns: 5,
        });
        assert_eq!(
            input_tokens(&sys, 1_200.0, 0, r),
            1_500.0,
            "a first turn has none"
        );
        assert_eq!(input_tokens(&sys, 1_200.0, 3, r), 1_800.0);
        assert_eq!(
            input_tokens(&sys, 1_200.0, 9, r),
            2_000.0,
            "five turns kept"
        );
        // Messages 1..=4 of a session carry 0, 1, 2, 3 earlier turns: 1.5 on average.
        assert_eq!(mean_history_tokens(&sys, 4.0), 150.0);
        sys.prompt.history = None;
        assert_eq!(
            cached_prompt(&sys, 1_200.0, r),
            0.0,
            "no prompt caching by default"
        );
        sys.prompt.cache_hit_ratio = "100%".parse().unwrap();
        assert_eq!(cached_prompt(&sys, 1_200.0, r), 1_200.0);
        sys.prompt.cache_hit_ratio = "40%".parse().unwrap();
        let hits = (0..10_000)
            .filter(|_| cached_prompt(&sys, 1.0, r) > 0.0)
            .count();
        assert!((3_700..4_300).contains(&hits), "{hits}");
    }

    #[test]
    fn the_queue_overflows_to_burst_workers_at_its_threshold() {
        let mut b = system("local").burst;
        b.enabled = true;
        b.queue_threshold = 10;
        assert!(!overflows(&b, 9) && overflows(&b, 10));
        b.warm_start = "5ms".parse().unwrap();
        b.cold_start = "300ms".parse().unwrap();
        b.service = "25ms".parse().unwrap();
        let r = &mut rngs();
        assert_eq!(burst_busy(&b, Start::Warm, r), 30 * MS);
        assert_eq!(burst_busy(&b, Start::Cold, r), 325 * MS);
        b.enabled = false;
        assert!(!overflows(&b, 1_000));
    }
}
