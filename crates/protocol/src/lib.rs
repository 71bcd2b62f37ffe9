//! Chat frames on the WebSocket, shared by the load generator and the mock.
//!
//! The mock speaks surge's default JSON shape ([`frames`]); a deployed chatbot may speak
//! another, which a profile describes with a `[protocol]` mapping. [`Codec`] hides the
//! difference: the load generator encodes messages and classifies incoming frames through
//! it without knowing which shape is on the wire, so there is one path for data through
//! the generator whatever the target. API Gateway's own error frames ([`gateway`]) are
//! recognised in front of either shape.

pub mod codec;
pub mod frames;
pub mod gateway;
mod template;

pub use codec::{Codec, Decoded, Incoming, IncomingKind, TokenUsage};
pub use frames::{ChatMessage, ErrorCode, ServerFrame, Usage};
