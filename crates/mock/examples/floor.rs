//! The floor under any DynamoDB server on this machine: an HTTP/1.1 server that does no
//! work of its own. It reads requests off keep-alive connections (httparse for the head,
//! then `Content-Length` bytes of body) and answers each with one canned 200 carrying a
//! GetItem-sized item, one write for all the answers a read completes, on the same tokio
//! runtime the mock runs on. What it spends per request is the kernel's (a read and a write
//! on loopback) and the runtime's; whatever a real server spends beyond that is its own
//! work. `scripts/bench-mock.sh` serves it beside the mock and its peers, so the figure
//! "how close to the floor" comes from the same run.
//!
//! ```text
//! cargo run --release -p surge-mock --example floor -- [LISTEN]   (default 127.0.0.1:0)
//! ```
//!
//! Prints `listening on ADDR` first, as `surge mock` does.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The answer every request gets: the headers `surge mock` sends, a GetItem's item.
fn canned() -> Vec<u8> {
    let body = br#"{"Item":{"pk":{"S":"user-1"},"text":{"S":"What should I read after finishing Naruto?"},"turn":{"N":"1"}}}"#;
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
         x-amzn-requestid: 00000000-0000-4000-8000-000000000000\r\nx-amz-crc32: {}\r\n\
         content-length: {}\r\ndate: Sat, 05 Dec 2026 00:00:00 GMT\r\n\r\n",
        crc32fast::hash(body),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The length of the whole request at the start of `buf` once it is all there.
fn whole_request(buf: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = req.parse(buf).ok()? else {
        return None;
    };
    let length = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    (buf.len() >= head + length).then_some(head + length)
}

async fn serve(mut stream: TcpStream, answer: &'static [u8]) {
    let mut inbuf = Vec::with_capacity(8192);
    let mut out = Vec::with_capacity(8192);
    loop {
        inbuf.reserve(8192);
        match stream.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut start = 0;
        while let Some(n) = whole_request(&inbuf[start..]) {
            out.extend_from_slice(answer);
            start += n;
        }
        inbuf.drain(..start);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let answer: &'static [u8] = Box::leak(canned().into_boxed_slice());
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(serve(stream, answer));
    }
}
