//! A DynamoDB answer written whole into one buffer, with the headers hyper would send for
//! it (`server::dynamodb`'s response): status line, content type, request id, CRC32,
//! `connection: close` when closing, length, date.

use std::cell::RefCell;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use http::StatusCode;

use crate::server::write_request_id;

/// Appends the response carrying `body` to `out`.
pub fn write(out: &mut Vec<u8>, status: u16, body: &[u8], close: bool) {
    if status == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("<none>");
        let _ = write!(out, "HTTP/1.1 {status} {reason}\r\n");
    }
    out.extend_from_slice(b"content-type: application/x-amz-json-1.0\r\nx-amzn-requestid: ");
    let mut id = [0u8; 36];
    write_request_id(&mut id);
    out.extend_from_slice(&id);
    out.extend_from_slice(b"\r\nx-amz-crc32: ");
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(n.format(crc32fast::hash(body)).as_bytes());
    if close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\ncontent-length: ");
    out.extend_from_slice(n.format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\ndate: ");
    with_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

thread_local! {
    /// This second's `Date` value, formatted once a second (hyper caches it the same way).
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = httpdate::fmt_http_date(now).into_bytes();
        }
        f(text)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(status: u16, close: bool) -> String {
        let mut out = Vec::new();
        write(&mut out, status, br#"{"a":1}"#, close);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_answer_has_hypers_shape() {
        let t = text(200, false);
        assert!(t.starts_with(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: "
        ));
        let crc = crc32fast::hash(br#"{"a":1}"#);
        assert!(t.contains(&format!(
            "\r\nx-amz-crc32: {crc}\r\ncontent-length: 7\r\ndate: "
        )));
        assert!(t.ends_with(" GMT\r\n\r\n{\"a\":1}"));
        assert!(!t.contains("connection"));
        let t = text(400, true);
        assert!(t.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(t.contains("\r\nconnection: close\r\ncontent-length: 7\r\n"));
        let id = t.split("x-amzn-requestid: ").nth(1).unwrap();
        let id = &id[..id.find('\r').unwrap()];
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
    }
}
