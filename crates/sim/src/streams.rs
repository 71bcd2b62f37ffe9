//! The random streams of one run, one per component (see [`crate::rng`]).

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
    tokens,
    ttft,
    bedrock_retry,
    guardrails,
    format,
    network,
);
