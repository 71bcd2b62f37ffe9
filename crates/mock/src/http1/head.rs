//! Which requests the lean path serves: a DynamoDB call in its plainest HTTP/1.1 form.
//!
//! Anything else (another route, HTTP/1.0, a chunked body, `Expect`, `Upgrade`, an
//! unusual `Connection`, a body above `Config::max_body`, a head httparse's strict rules
//! refuse) is left to hyper, which then serves the rest of the connection: the lean path
//! only has to be right about what it takes, and hyper stays the judge of everything else.

/// Most header lines the lean path parses; a request with more goes to hyper.
const MAX_HEADERS: usize = 32;

/// A DynamoDB request the lean path serves.
#[derive(Debug, PartialEq, Eq)]
pub struct Call<'a> {
    /// The first `X-Amz-Target`, as hyper's `HeaderValue::to_str` would give it ("" when it
    /// is not visible ASCII).
    pub target: &'a str,
    /// Bytes of the head, up to and including its blank line.
    pub head_len: usize,
    pub body_len: usize,
    /// `Connection: close`: answer, then close.
    pub close: bool,
}

/// What the buffered bytes start with.
#[derive(Debug, PartialEq, Eq)]
pub enum Head<'a> {
    /// Not a whole head yet.
    Partial,
    /// For hyper.
    Other,
    Call(Call<'a>),
}

/// Classifies the request at the start of `buf`.
pub fn parse(buf: &[u8], max_body: usize) -> Head<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Other,
    };
    if req.method != Some("POST") || req.path != Some("/") || req.version != Some(1) {
        return Head::Other;
    }
    let mut target = None;
    let mut length = None;
    let mut close = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"x-amz-target") {
            target.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if length.is_some() {
                return Head::Other;
            }
            match content_length(h.value) {
                Some(n) => length = Some(n),
                None => return Head::Other,
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !h.value.eq_ignore_ascii_case(b"keep-alive") {
                return Head::Other;
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Head::Other;
        }
    }
    let (Some(target), Some(body_len)) = (target, length) else {
        return Head::Other;
    };
    if body_len > max_body {
        return Head::Other;
    }
    Head::Call(Call {
        target: visible_ascii(target).unwrap_or(""),
        head_len,
        body_len,
        close,
    })
}

/// A `Content-Length` of digits only (no sign, no list), as a size.
fn content_length(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 15 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The value as text when every byte is visible ASCII or a tab (`HeaderValue::to_str`).
fn visible_ascii(v: &[u8]) -> Option<&str> {
    v.iter()
        .all(|&b| b == b'\t' || (32..127).contains(&b))
        .then(|| std::str::from_utf8(v).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn call(head: &str) -> Head<'_> {
        parse(head.as_bytes(), MAX)
    }

    #[test]
    fn a_plain_dynamodb_call_is_taken() {
        let h = "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(
            call(h),
            Head::Call(Call {
                target: "DynamoDB_20120810.GetItem",
                head_len: h.len() - 2,
                body_len: 2,
                close: false
            })
        );
        let closing = h.replace("Host: x", "Connection: close");
        assert!(matches!(
            call(&closing),
            Head::Call(Call { close: true, .. })
        ));
        let kept = h.replace("Host: x", "connection: Keep-Alive");
        assert!(matches!(call(&kept), Head::Call(Call { close: false, .. })));
    }

    #[test]
    fn a_head_not_yet_whole_is_partial() {
        let h = "POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\nContent-Length: 2\r\n\r\n";
        for cut in 0..h.len() {
            assert_eq!(call(&h[..cut]), Head::Partial, "cut at {cut}");
        }
    }

    #[test]
    fn everything_else_is_left_to_hyper() {
        let base =
            "POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\nContent-Length: 2\r\n";
        let others = [
            "GET /healthz HTTP/1.1\r\n\r\n".to_string(),
            "POST /model/haiku/converse HTTP/1.1\r\nContent-Length: 2\r\n\r\n".into(),
            base.replace("HTTP/1.1", "HTTP/1.0") + "\r\n",
            base.replace("POST / ", "POST /? ") + "\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n".into(),
            "POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n\r\n".into(),
            format!("{base}Transfer-Encoding: chunked\r\n\r\n"),
            format!("{base}Expect: 100-continue\r\n\r\n"),
            format!("{base}Upgrade: websocket\r\n\r\n"),
            format!("{base}Connection: upgrade\r\n\r\n"),
            format!("{base}Content-Length: 2\r\n\r\n"),
            base.replace("Content-Length: 2", "Content-Length: +2") + "\r\n",
            base.replace("Content-Length: 2", "Content-Length: 2, 2") + "\r\n",
            base.replace("Content-Length: 2", "Content-Length: 1025") + "\r\n",
            "POST / HTTP/1.1\r\nBad Header\r\n\r\n".into(),
            "\u{1}\u{2}garbage\r\n\r\n".into(),
            format!("{base}{}\r\n", "A: b\r\n".repeat(MAX_HEADERS)),
        ];
        for h in &others {
            assert_eq!(call(h), Head::Other, "{h:?}");
        }
    }

    #[test]
    fn a_target_that_is_not_visible_ascii_reads_as_empty() {
        let h = b"POST / HTTP/1.1\r\nX-Amz-Target: Dynamo\xffDB\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(parse(h, MAX), Head::Call(Call { target: "", .. })));
    }
}
