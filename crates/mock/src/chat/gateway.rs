//! What API Gateway itself does to a chat connection, on the mock: the rules of
//! [`surge_model::gateway`] (one definition, shared with the simulator) in wall time, and
//! the frames the gateway sends of its own.
//!
//! - Upgrades beyond `gateway.connect_rate` (one second of burst) are refused with 429.
//! - A connection is closed with 1001 ("Going away") at `gateway.max_connection`, even in
//!   the middle of an answer, or after `gateway.idle_timeout` without a data frame from the
//!   client (frames the mock sends do not count, nor do pings).
//! - Per-user and account throttles (the seed's Layer 1) answer with surge's default error
//!   frame (`{"type":"error","code":"throttled",…}`), or with [`GatewayFrames::Aws`] the
//!   frame API Gateway sends: `{"message":"Too Many Requests","connectionId":…,
//!   "requestId":…}`, which carries no message id.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use base64::Engine;
use serde::Serialize;
use surge_model::gateway::{Admission, UserBucket};
use surge_protocol::{ErrorCode, ServerFrame};

use super::Out;

/// Which frames the mock sends for the throttles of the gateway's own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GatewayFrames {
    /// surge's default error frame with code `throttled` and the message id (what
    /// `surge run` understands with the default protocol).
    #[default]
    Surge,
    /// API Gateway's own frame: `{"message":"Too Many Requests","connectionId":…,
    /// "requestId":…}`, no message id.
    Aws,
}

impl FromStr for GatewayFrames {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "surge" => Ok(Self::Surge),
            "aws" => Ok(Self::Aws),
            other => Err(format!(
                "unknown gateway frames {other:?}: use surge or aws"
            )),
        }
    }
}

impl fmt::Display for GatewayFrames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Surge => "surge",
            Self::Aws => "aws",
        })
    }
}

/// An error API Gateway raises itself, as it sends it to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayError {
    message: &'static str,
    connection_id: String,
    request_id: String,
}

impl GatewayError {
    /// The throttle frame of the connection `connection_id`, with a fresh request id.
    fn too_many_requests(connection_id: &str) -> Self {
        Self {
            message: "Too Many Requests",
            connection_id: connection_id.to_string(),
            request_id: aws_id(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a gateway error serializes")
    }
}

/// An id in API Gateway's shape (`L0SM9cOFvHcCIhw=`): 11 random bytes in base64.
fn aws_id() -> String {
    let bytes: [u8; 11] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The client at the other end of one connection, as the gateway knows it.
#[derive(Debug)]
pub struct Caller {
    /// API Gateway's connection id.
    pub connection_id: String,
    /// The per-user token bucket.
    pub user: Mutex<UserBucket>,
}

impl Caller {
    pub fn new(user: UserBucket) -> Self {
        Self {
            connection_id: aws_id(),
            user: Mutex::new(user),
        }
    }
}

impl GatewayFrames {
    /// The frame that answers message `id` of `caller` when the gateway's verdict is
    /// `admission`; `None` when the message was accepted.
    pub(crate) fn refusal(self, admission: Admission, caller: &Caller, id: &str) -> Option<Out> {
        let why = match admission {
            Admission::Accepted => return None,
            Admission::UserLimit => "per-user message rate exceeded",
            Admission::AccountLimit => "account request rate exceeded",
        };
        Some(match self {
            Self::Surge => Out::Frame(ServerFrame::Error {
                id: Some(id.to_string()),
                code: ErrorCode::Throttled,
                message: why.into(),
            }),
            Self::Aws => Out::Gateway(GatewayError::too_many_requests(&caller.connection_id)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_model::gateway::UserLimit;

    fn caller() -> Caller {
        let g = surge_profile::Profile::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../profiles/local.toml"
        ))
        .unwrap()
        .system
        .gateway;
        Caller::new(UserLimit::new(&g).bucket(0))
    }

    #[test]
    fn throttles_answer_in_the_chosen_frames() {
        let c = caller();
        assert_eq!(c.connection_id.len(), 16);
        assert!(c.connection_id.ends_with('='));
        assert!(
            GatewayFrames::Aws
                .refusal(Admission::Accepted, &c, "m")
                .is_none()
        );
        let Some(Out::Frame(ServerFrame::Error { id, code, .. })) =
            GatewayFrames::Surge.refusal(Admission::AccountLimit, &c, "m-1")
        else {
            panic!("surge's error frame")
        };
        assert_eq!((id.as_deref(), code), (Some("m-1"), ErrorCode::Throttled));
        let Some(Out::Gateway(e)) = GatewayFrames::Aws.refusal(Admission::UserLimit, &c, "m-1")
        else {
            panic!("API Gateway's frame")
        };
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{v}");
        assert_eq!(v["message"], "Too Many Requests");
        assert_eq!(v["connectionId"], c.connection_id.as_str());
        assert_eq!(v["requestId"].as_str().unwrap().len(), 16);
        assert_eq!("aws".parse::<GatewayFrames>(), Ok(GatewayFrames::Aws));
        assert_eq!(GatewayFrames::default().to_string(), "surge");
        assert!("json".parse::<GatewayFrames>().is_err());
    }
}
