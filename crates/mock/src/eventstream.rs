//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`) that Bedrock
//! response streams are sent in.
//!
//! ```text
//! [total length u32][headers length u32][prelude CRC32 u32][headers][payload][message CRC32 u32]
//! header: [name length u8][name][type u8 = 7 (string)][value length u16][value]
//! ```
//!
//! Both CRCs are CRC-32 (IEEE): the prelude's over its first 8 bytes, the message's over
//! everything before it. The decoder is here for tests and the benchmark client.

use bytes::{BufMut, Bytes, BytesMut};

const STRING: u8 = 7;
const PRELUDE: usize = 12;

/// One event-stream message: string headers and a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

impl Message {
    /// An `event` message of `event_type` with a JSON payload.
    pub fn event(event_type: &str, payload: impl Into<Bytes>) -> Self {
        Self {
            headers: vec![
                (":event-type".into(), event_type.into()),
                (":content-type".into(), "application/json".into()),
                (":message-type".into(), "event".into()),
            ],
            payload: payload.into(),
        }
    }

    /// An `exception` message (`throttlingException`, `internalServerException`, …).
    pub fn exception(exception_type: &str, message: &str) -> Self {
        Self {
            headers: vec![
                (":exception-type".into(), exception_type.into()),
                (":content-type".into(), "application/json".into()),
                (":message-type".into(), "exception".into()),
            ],
            payload: serde_json::json!({ "message": message }).to_string().into(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The message on the wire.
    pub fn encode(&self) -> Bytes {
        let mut headers = BytesMut::new();
        for (name, value) in &self.headers {
            headers.put_u8(name.len() as u8);
            headers.put_slice(name.as_bytes());
            headers.put_u8(STRING);
            headers.put_u16(value.len() as u16);
            headers.put_slice(value.as_bytes());
        }
        let total = PRELUDE + headers.len() + self.payload.len() + 4;
        let mut out = BytesMut::with_capacity(total);
        out.put_u32(total as u32);
        out.put_u32(headers.len() as u32);
        out.put_u32(crc32fast::hash(&out[..8]));
        out.put_slice(&headers);
        out.put_slice(&self.payload);
        out.put_u32(crc32fast::hash(&out));
        out.freeze()
    }
}

/// Why bytes are not an event-stream message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("prelude CRC mismatch")]
    PreludeCrc,
    #[error("message CRC mismatch")]
    MessageCrc,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// Takes one whole message off the front of `buf`; `Ok(None)` when more bytes are needed.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
    if buf.len() < PRELUDE {
        return Ok(None);
    }
    let word = |at: usize| u32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
    let (total, hlen) = (word(0) as usize, word(4) as usize);
    if crc32fast::hash(&buf[..8]) != word(8) {
        return Err(DecodeError::PreludeCrc);
    }
    if total < PRELUDE + hlen + 4 {
        return Err(DecodeError::Malformed("lengths"));
    }
    if buf.len() < total {
        return Ok(None);
    }
    if crc32fast::hash(&buf[..total - 4]) != word(total - 4) {
        return Err(DecodeError::MessageCrc);
    }
    let msg = buf.split_to(total);
    let mut headers = Vec::new();
    let mut h = &msg[PRELUDE..PRELUDE + hlen];
    while !h.is_empty() {
        let n = h[0] as usize;
        let name = h
            .get(1..1 + n)
            .ok_or(DecodeError::Malformed("header name"))?;
        let rest = &h[1 + n..];
        if rest.first() != Some(&STRING) || rest.len() < 3 {
            return Err(DecodeError::Malformed("only string headers are supported"));
        }
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        let value = rest
            .get(3..3 + len)
            .ok_or(DecodeError::Malformed("header value"))?;
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
        h = &rest[3 + len..];
    }
    let payload = Bytes::copy_from_slice(&msg[PRELUDE + hlen..total - 4]);
    Ok(Some(Message { headers, payload }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_pieces_and_detects_corruption() {
        let m = Message::event("contentBlockDelta", r#"{"delta":{"text":"hi"}}"#);
        let wire = m.encode();
        let mut buf = BytesMut::from(&wire[..10]);
        assert_eq!(decode(&mut buf), Ok(None));
        buf.extend_from_slice(&wire[10..]);
        assert_eq!(decode(&mut buf), Ok(Some(m)));
        assert!(buf.is_empty());

        let mut bad = BytesMut::from(&wire[..]);
        let last = bad.len() - 5;
        bad[last] ^= 1;
        assert_eq!(decode(&mut bad), Err(DecodeError::MessageCrc));
    }
}
