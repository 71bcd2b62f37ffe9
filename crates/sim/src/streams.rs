//! The random streams of one run, one per component (see [`crate::rng`]); the model's
//! layers draw from theirs ([`Rngs`]).

use surge_model::draw::{Layer, Rngs};

use crate::rng::Stream;

macro_rules! streams {
    ($($field:ident),+ $(,)?) => {
        /// One independent stream per component, named after its field.
        pub struct Streams {
            $(pub $field: Stream),+
        }

        impl Streams {
            pub fn new(seed: u64) -> Self {
                Self { $($field: Stream::new(seed, stringify!($field))),+ }
            }
        }
    };
}

streams!(
    mix,
    gateway,
    auth,
    cpu,
    task_start,
    burst,
    precomputed,
    classifier,
    memory,
    memory_retry,
    cache,
    rag,
    semantic_cache,
    prompt,
    prompt_cache,
    tokens,
    ttft,
    bedrock_retry,
    guardrails,
    format,
    network,
    retry,
);

impl Rngs for Streams {
    type Rng = Stream;

    #[inline]
    fn of(&mut self, layer: Layer) -> &mut Stream {
        match layer {
            Layer::Auth => &mut self.auth,
            Layer::Cpu => &mut self.cpu,
            Layer::TaskStart => &mut self.task_start,
            Layer::Burst => &mut self.burst,
            Layer::Precomputed => &mut self.precomputed,
            Layer::Classifier => &mut self.classifier,
            Layer::Memory => &mut self.memory,
            Layer::MemoryRetry => &mut self.memory_retry,
            Layer::Cache => &mut self.cache,
            Layer::Rag => &mut self.rag,
            Layer::SemanticCache => &mut self.semantic_cache,
            Layer::Prompt => &mut self.prompt,
            Layer::PromptCache => &mut self.prompt_cache,
            Layer::Tokens => &mut self.tokens,
            Layer::Ttft => &mut self.ttft,
            Layer::BedrockRetry => &mut self.bedrock_retry,
            Layer::Guardrails => &mut self.guardrails,
            Layer::Format => &mut self.format,
            Layer::Network => &mut self.network,
        }
    }
}
