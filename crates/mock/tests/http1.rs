//! The lean HTTP/1.1 path of the DynamoDB API (`surge_mock::http1`) on raw sockets:
//! pipelined requests, requests in pieces, bad input, `Connection: close`, large bodies,
//! and the hand-over to hyper, whose answers the lean path's must equal.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use surge_mock::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// One answer as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header names in the order sent, lowercase, with their values.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The header names, less the ones that differ from answer to answer by value only.
    fn names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// A raw HTTP/1.1 connection: requests are bytes, answers are parsed.
struct Raw {
    read: OwnedReadHalf,
    /// `None` once taken to write from another task.
    write: Option<OwnedWriteHalf>,
    buf: Vec<u8>,
}

impl Raw {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        Self {
            read,
            write: Some(write),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        let w = self.write.as_mut().expect("not taken");
        w.write_all(bytes).await.unwrap();
    }

    /// Reads more into the buffer; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.read.read(&mut chunk).await.unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next answer, or `None` when the server closed the connection before one.
    async fn answer(&mut self) -> Option<Answer> {
        for _ in 0..100_000 {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = res.parse(&self.buf).unwrap() {
                let headers: Vec<(String, String)> = res
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8(h.value.to_vec()).unwrap(),
                        )
                    })
                    .collect();
                let status = res.code.unwrap();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                while self.buf.len() < head + len {
                    assert!(self.fill().await, "the body was cut short");
                }
                let body = self.buf[head..head + len].to_vec();
                self.buf.drain(..head + len);
                return Some(Answer {
                    status,
                    headers,
                    body,
                });
            }
            if !self.fill().await {
                return None;
            }
        }
        panic!("no answer after many reads");
    }

    /// Whether the server closed the connection (nothing more to read).
    async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await
    }
}

fn request(op: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: DynamoDB_20120810.{op}\r\n\
         Content-Type: application/x-amz-json-1.0\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn put(pk: &str, text: &str) -> Vec<u8> {
    let body = json!({"TableName": "bench", "Item": {"pk": {"S": pk}, "text": {"S": text}}});
    request("PutItem", &body.to_string(), "")
}

fn get(pk: &str) -> Vec<u8> {
    let body = json!({"TableName": "bench", "Key": {"pk": {"S": pk}}});
    request("GetItem", &body.to_string(), "")
}

async fn server_with_table(config: Config) -> surge_mock::Server {
    let server = common::start_with(config).await;
    let mut c = Raw::open(server.addr).await;
    let create = json!({
        "TableName": "bench",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST"
    });
    c.send(&request("CreateTable", &create.to_string(), ""))
        .await;
    assert_eq!(c.answer().await.unwrap().status, 200);
    server
}

async fn server() -> surge_mock::Server {
    server_with_table(Config::new(common::system())).await
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let s = server().await;
    let mut c = Raw::open(s.addr).await;
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend(put(&format!("u{i}"), &format!("text {i}")));
        batch.extend(get(&format!("u{i}")));
    }
    batch.extend(get("nobody"));
    c.send(&batch).await;
    for i in 0..20 {
        let p = c.answer().await.unwrap();
        assert_eq!((p.status, p.json()), (200, json!({})));
        let g = c.answer().await.unwrap();
        assert_eq!(g.status, 200);
        assert_eq!(g.json()["Item"]["text"]["S"], format!("text {i}"));
    }
    assert_eq!(c.answer().await.unwrap().json(), json!({}));
}

#[tokio::test]
async fn a_request_in_pieces_is_answered_once_whole() {
    let s = server().await;
    let mut c = Raw::open(s.addr).await;
    let mut two = put("piece", "by piece");
    two.extend(get("piece"));
    // Cut through the head, the blank line and the body of both requests.
    for chunk in two.chunks(7) {
        c.send(chunk).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(c.answer().await.unwrap().status, 200);
    let g = c.answer().await.unwrap();
    assert_eq!(g.json()["Item"]["text"]["S"], "by piece");
}

#[tokio::test]
async fn connection_close_is_answered_then_closed() {
    let s = server().await;
    let mut c = Raw::open(s.addr).await;
    let body = json!({"TableName": "bench", "Key": {"pk": {"S": "x"}}}).to_string();
    // A request after the closing one is never answered.
    let mut bytes = request("GetItem", &body, "Connection: close\r\n");
    bytes.extend(get("x"));
    c.send(&bytes).await;
    let a = c.answer().await.unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.header("connection"), Some("close"));
    assert!(c.closed().await);
}

#[tokio::test]
async fn the_lean_answer_equals_hypers() {
    let s = server().await;
    let cases = [
        put("same", "answer"),
        get("same"),
        get("missing"),
        request("GetItem", "{not json", ""),
        request("Frobnicate", "{}", ""),
        request(
            "GetItem",
            &json!({"TableName": "nope", "Key": {"pk": {"S": "a"}}}).to_string(),
            "",
        ),
        request(
            "GetItem",
            &json!({"TableName": "bench", "Key": {"pk": {"S": "x"}}}).to_string(),
            "Connection: close\r\n",
        ),
    ];
    for req in cases {
        // The lean path: a fresh connection's first request.
        let mut lean = Raw::open(s.addr).await;
        lean.send(&req).await;
        let a = lean.answer().await.unwrap();
        // hyper: the same request after one the lean path leaves to it.
        let mut hyper = Raw::open(s.addr).await;
        hyper
            .send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await;
        assert_eq!(hyper.answer().await.unwrap().body, b"ok\n");
        hyper.send(&req).await;
        let b = hyper.answer().await.unwrap();
        let what = String::from_utf8_lossy(&req[..60]).to_string();
        assert_eq!(a.status, b.status, "{what}");
        assert_eq!(a.names(), b.names(), "{what}");
        assert_eq!(a.body, b.body, "{what}");
        for h in [
            "content-type",
            "x-amz-crc32",
            "content-length",
            "connection",
        ] {
            assert_eq!(a.header(h), b.header(h), "{h} of {what}");
        }
        assert_eq!(
            a.header("x-amz-crc32").unwrap(),
            crc32fast::hash(&a.body).to_string()
        );
        assert_eq!(a.header("date").unwrap().len(), 29);
        // Both close after `Connection: close`, and both keep serving otherwise.
        for c in [&mut lean, &mut hyper] {
            if a.header("connection") == Some("close") {
                assert!(c.closed().await, "{what}");
            } else {
                c.send(&get("same")).await;
                assert_eq!(c.answer().await.unwrap().status, 200, "{what}");
            }
        }
    }
}

#[tokio::test]
async fn other_routes_on_the_same_connection_go_to_hyper() {
    let s = server().await;
    let mut c = Raw::open(s.addr).await;
    let mut bytes = put("k", "v");
    bytes.extend(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    bytes.extend(get("k"));
    c.send(&bytes).await;
    assert_eq!(c.answer().await.unwrap().status, 200);
    assert_eq!(c.answer().await.unwrap().body, b"ok\n");
    let g = c.answer().await.unwrap();
    assert_eq!(g.json()["Item"]["text"]["S"], "v");
    // A chunked DynamoDB body is hyper's too, and answered.
    let body = json!({"TableName": "bench", "Key": {"pk": {"S": "k"}}}).to_string();
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let mut c = Raw::open(s.addr).await;
    c.send(chunked.as_bytes()).await;
    assert_eq!(c.answer().await.unwrap().json()["Item"]["text"]["S"], "v");
    // The counters saw every DynamoDB request once, whichever path served it.
    let mut m = Raw::open(s.addr).await;
    m.send(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let text = String::from_utf8(m.answer().await.unwrap().body).unwrap();
    let line =
        |op: &str| format!("surge_mock_requests_total{{api=\"dynamodb\",operation=\"{op}\"}}");
    assert!(text.contains(&format!("{} 1\n", line("PutItem"))), "{text}");
    assert!(text.contains(&format!("{} 2\n", line("GetItem"))), "{text}");
}

#[tokio::test]
async fn bad_input_gets_hypers_answer_and_the_server_keeps_serving() {
    let s = server().await;
    // Not HTTP: hyper answers 400 and closes.
    let mut c = Raw::open(s.addr).await;
    c.send(b"\x01\x02 nonsense\r\n\r\n").await;
    let a = c.answer().await;
    assert!(a.as_ref().is_none_or(|a| a.status == 400), "{a:?}");
    assert!(c.closed().await);
    // A bad Content-Length after a good request: the good one is answered first.
    let mut c = Raw::open(s.addr).await;
    let mut bytes = get("none");
    bytes.extend(
        b"POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\nContent-Length: x\r\n\r\n",
    );
    c.send(&bytes).await;
    assert_eq!(c.answer().await.unwrap().status, 200);
    let a = c.answer().await;
    assert!(a.as_ref().is_none_or(|a| a.status == 400), "{a:?}");
    // A client that stops mid-request: nothing answered, the connection ends.
    let mut c = Raw::open(s.addr).await;
    c.send(&get("x")[..30]).await;
    c.write.as_mut().unwrap().shutdown().await.unwrap();
    assert!(c.answer().await.is_none_or(|a| a.status == 400));
    // Still serving.
    let mut c = Raw::open(s.addr).await;
    c.send(&get("none")).await;
    assert_eq!(c.answer().await.unwrap().status, 200);
}

#[tokio::test]
async fn large_bodies_are_read_whole_and_the_limit_holds() {
    let mut config = Config::new(common::system());
    config.max_body = 600 * 1024;
    let s = server_with_table(config).await;
    let mut c = Raw::open(s.addr).await;
    // 300 KiB: read over many reads, stored, read back.
    let text = "y".repeat(300 * 1024);
    c.send(&put("big", &text)).await;
    assert_eq!(c.answer().await.unwrap().status, 200);
    c.send(&get("big")).await;
    let g = c.answer().await.unwrap();
    assert_eq!(
        g.json()["Item"]["text"]["S"].as_str().unwrap().len(),
        text.len()
    );
    // Above the item limit (400 KB) but within max_body: DynamoDB's own error.
    c.send(&put("big", &"z".repeat(450 * 1024))).await;
    let a = c.answer().await.unwrap();
    assert_eq!(a.status, 400);
    assert!(
        a.json()["__type"]
            .as_str()
            .unwrap()
            .ends_with("ValidationException")
    );
    // Above max_body: the size error hyper's path gives. The server may answer before it
    // has read the whole body and close, so the body is sent while the answer is read.
    let mut c = Raw::open(s.addr).await;
    let mut write = c.write.take().unwrap();
    let bytes = put("big", &"z".repeat(700 * 1024));
    let sending = tokio::spawn(async move {
        let _ = write.write_all(&bytes).await;
    });
    let a = c.answer().await.unwrap();
    sending.abort();
    assert_eq!(a.status, 400);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("Request size exceeded"),
        "{:?}",
        a.json()
    );
}

#[tokio::test]
async fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let mut config = Config::new(common::system());
    config.max_body = 600 * 1024;
    let s = server_with_table(config).await;
    // A body hyper reads over many reads, so the end of the stream comes while it does.
    let text = "h".repeat(300 * 1024);
    for via_hyper in [false, true] {
        let mut c = Raw::open(s.addr).await;
        if via_hyper {
            c.send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await;
            assert_eq!(c.answer().await.unwrap().body, b"ok\n");
        }
        c.send(&put("half", &text)).await;
        c.write.take().unwrap().shutdown().await.unwrap();
        let a = c.answer().await.expect("answered after the half-close");
        assert_eq!(a.status, 200, "via hyper: {via_hyper}");
        assert!(c.closed().await, "then closed (via hyper: {via_hyper})");
    }
}
