//! What a frame or a close means to a session: part of the answer it waits for, nothing,
//! a frame nobody asked for, or an error.
//!
//! A chatbot behind API Gateway says more than its answers: a greeting on connect, typing
//! indicators, pushes, pongs to keepalives, and the gateway closes idle connections. One
//! set of rules serves both states of a session — idle ([`while_idle`]) or waiting for
//! one answer ([`while_waiting`]) — so a frame means the same whenever it comes:
//!
//! - an answer frame for the message in flight is the answer; a late frame of a message
//!   given up on, or a frame `[protocol] ignore` names, is dropped;
//! - a frame that answers no message is *unsolicited*: JSON matching no rule, a token or
//!   done frame while idle, a frame naming another message. Counted, not an error
//!   (`[protocol] unsolicited = "error"` makes it a protocol violation);
//! - an error frame that names no message (API Gateway's) fails the message in flight, or
//!   counts as an error of its class while idle;
//! - a frame that cannot be read (not JSON, binary, or a broken answer) is a protocol
//!   violation while an answer is due (it may be that answer, garbled) and unsolicited
//!   while idle;
//! - a close by the server with 1000 (normal) or 1001 (going away: API Gateway's idle
//!   timeout) while idle is the end of a connection, not an error: the session reconnects.
//!   Any other close, or a drop, while idle is `dropped`; any close while an answer is due
//!   is `closed_mid_answer`.

use surge_profile::target::Correlate;
use surge_protocol::{Decoded, Incoming, IncomingKind, codec::snippet};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::correlate::{Abandoned, answers};
use crate::errors::{ErrorClass, Failure};

/// A frame that is not part of the answer a session waits for.
#[derive(Debug, PartialEq)]
pub enum Other {
    /// Nothing: an ignored frame, or a late frame of a message given up on.
    Drop,
    /// A frame that answers no message (counted, or an error by the profile's choice);
    /// the text says what it was, for an error sample.
    Unsolicited(String),
    /// An error of its own.
    Failure(Failure),
}

/// Judges `decoded` (the frame `text`) for a session waiting for the answer to message
/// `id`: the answer's next frame, or something else.
pub fn while_waiting(
    decoded: Decoded,
    text: &str,
    id: &str,
    correlate: Correlate,
    abandoned: &mut Abandoned,
) -> Result<Incoming, Other> {
    let inc = readable(decoded, text, Some(id), abandoned)?;
    if answers(correlate, id, &inc) {
        Ok(inc)
    } else {
        Err(Other::Unsolicited(format!(
            "frame for another message while {id} is in flight: {}",
            snippet(text)
        )))
    }
}

/// Judges `decoded` (the frame `text`) for an idle session.
pub fn while_idle(
    decoded: Decoded,
    text: &str,
    correlate: Correlate,
    abandoned: &mut Abandoned,
) -> Other {
    let inc = match readable(decoded, text, None, abandoned) {
        Ok(inc) => inc,
        Err(other) => return other,
    };
    // Ids mean nothing when answers are matched by order.
    let names_a_message = correlate == Correlate::Id && inc.id.is_some();
    match inc.kind {
        IncomingKind::Throttle if !names_a_message => {
            Other::Failure(Failure::new(ErrorClass::Throttled, snippet(text)))
        }
        IncomingKind::Error { message } if !names_a_message => {
            Other::Failure(Failure::new(ErrorClass::ServerError, message))
        }
        _ => Other::Unsolicited(describe(text, None)),
    }
}

/// The answer frame `decoded` is, or what else it is when it is none (or one of a
/// message given up on), for a session waiting for `in_flight` or idle.
fn readable(
    decoded: Decoded,
    text: &str,
    in_flight: Option<&str>,
    abandoned: &mut Abandoned,
) -> Result<Incoming, Other> {
    match decoded {
        Decoded::Answer(inc) if abandoned.absorbs(&inc) => Err(Other::Drop),
        Decoded::Answer(inc) => Ok(inc),
        Decoded::Ignored => Err(Other::Drop),
        Decoded::Unmatched => Err(Other::Unsolicited(describe(text, in_flight))),
        Decoded::NotJson => Err(match in_flight {
            Some(id) => Other::Failure(Failure::new(
                ErrorClass::ProtocolViolation,
                format!(
                    "frame is not JSON while the answer to {id} is due: {}",
                    snippet(text)
                ),
            )),
            None => Other::Unsolicited(describe(text, None)),
        }),
        Decoded::Malformed(why) => Err(Other::Failure(Failure::new(
            ErrorClass::ProtocolViolation,
            why,
        ))),
    }
}

fn describe(text: &str, in_flight: Option<&str>) -> String {
    match in_flight {
        Some(id) => format!(
            "frame that answers nothing while {id} is in flight: {}",
            snippet(text)
        ),
        None => format!("frame while idle: {}", snippet(text)),
    }
}

/// Close code of a connection that ended without a close frame (RFC 6455).
pub const NO_CLOSE_FRAME: u16 = 1006;
/// Close code of a close frame that carried none (RFC 6455).
pub const NO_STATUS: u16 = 1005;

/// The close code of a close frame from the server.
pub fn close_code(frame: Option<&CloseFrame>) -> u16 {
    frame.map_or(NO_STATUS, |f| u16::from(f.code))
}

/// What the server closing the connection with `code` is for a session with `in_flight`
/// (or idle): an error, or `None` for the ordinary end of an idle connection.
pub fn server_close(code: u16, in_flight: Option<&str>) -> Option<Failure> {
    match in_flight {
        Some(id) => Some(Failure::new(
            ErrorClass::ClosedMidAnswer,
            format!("connection closed (close code {code}) while waiting for the answer to {id}"),
        )),
        None if matches!(code, 1000 | 1001) => None,
        None if code == NO_CLOSE_FRAME => Some(Failure::new(
            ErrorClass::Dropped,
            "connection dropped while idle (no close frame)",
        )),
        None => Some(Failure::new(
            ErrorClass::Dropped,
            format!("connection closed while idle (close code {code})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_profile::Protocol;
    use surge_profile::target::FrameMatch;
    use surge_protocol::Codec;

    fn codec() -> Codec {
        Codec::for_profile(&Protocol {
            ignore: vec![FrameMatch {
                pointer: "/type".into(),
                equals: "typing".into(),
            }],
            ..Protocol::default()
        })
    }

    fn waiting(text: &str, a: &mut Abandoned) -> Result<Incoming, Other> {
        while_waiting(codec().decode(text), text, "1-0", Correlate::Id, a)
    }

    fn idle(text: &str, a: &mut Abandoned) -> Other {
        while_idle(codec().decode(text), text, Correlate::Id, a)
    }

    fn class(v: &Other) -> Option<ErrorClass> {
        match v {
            Other::Failure(f) => Some(f.class),
            _ => None,
        }
    }

    const TOKEN: &str = r#"{"type":"token","id":"1-0","text":"Hi"}"#;
    const GATEWAY: &str =
        r#"{"message":"Internal server error","connectionId":"c","requestId":"r"}"#;
    const THROTTLED: &str = r#"{"message":"Too Many Requests","connectionId":"c","requestId":"r"}"#;
    const REFUSED: &str = r#"{"type":"error","id":"1-0","code":"server_error","message":"x"}"#;

    #[test]
    fn in_flight_answers_and_everything_else() {
        let mut a = Abandoned::default();
        assert!(waiting(TOKEN, &mut a).is_ok());
        for other in [
            TOKEN.replace("1-0", "9-9"),
            r#"{"type":"greeting","text":"Welcome!"}"#.into(),
        ] {
            let v = waiting(&other, &mut a);
            assert!(matches!(v, Err(Other::Unsolicited(_))), "{other}: {v:?}");
        }
        assert_eq!(waiting(r#"{"type":"typing"}"#, &mut a), Err(Other::Drop));
        // The gateway's frames fail the message in flight.
        for frame in [GATEWAY, THROTTLED] {
            let v = waiting(frame, &mut a);
            assert!(matches!(v, Ok(Incoming { id: None, .. })), "{v:?}");
        }
        // Unreadable frames may be the answer, garbled.
        for frame in ["garbage", r#"{"type":"done","id":"1-0"}"#] {
            let v = waiting(frame, &mut a).unwrap_err();
            assert_eq!(class(&v), Some(ErrorClass::ProtocolViolation), "{frame}");
        }
    }

    #[test]
    fn while_idle_frames_are_unsolicited_unless_an_error_names_no_message() {
        let mut a = Abandoned::default();
        for frame in [
            TOKEN,
            REFUSED,
            "garbage",
            r#"{"type":"pong"}"#,
            r#"{"type":"greeting"}"#,
        ] {
            let v = idle(frame, &mut a);
            assert!(matches!(v, Other::Unsolicited(_)), "{frame}: {v:?}");
        }
        assert_eq!(class(&idle(GATEWAY, &mut a)), Some(ErrorClass::ServerError));
        assert_eq!(class(&idle(THROTTLED, &mut a)), Some(ErrorClass::Throttled));
        assert_eq!(idle(r#"{"type":"typing"}"#, &mut a), Other::Drop);
        // A late answer of a message given up on is dropped, to its end.
        a.add("1-0".into());
        assert_eq!(idle(TOKEN, &mut a), Other::Drop);
        assert_eq!(idle(REFUSED, &mut a), Other::Drop);
        assert!(matches!(idle(TOKEN, &mut a), Other::Unsolicited(_)));
        // By order, ids say nothing: an error frame while idle is an error.
        let v = while_idle(codec().decode(REFUSED), REFUSED, Correlate::Order, &mut a);
        assert_eq!(class(&v), Some(ErrorClass::ServerError));
    }

    #[test]
    fn closes_by_code() {
        assert_eq!(server_close(1001, None), None);
        assert_eq!(server_close(1000, None), None);
        for code in [1005, 1006, 1011, 4000] {
            assert_eq!(
                server_close(code, None).map(|f| f.class),
                Some(ErrorClass::Dropped),
                "{code}"
            );
        }
        for code in [1000, 1001, 1006] {
            assert_eq!(
                server_close(code, Some("1-0")).map(|f| f.class),
                Some(ErrorClass::ClosedMidAnswer)
            );
        }
        assert_eq!(close_code(None), NO_STATUS);
    }
}
