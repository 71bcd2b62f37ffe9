//! A lean HTTP/1.1 path for the DynamoDB API, in front of hyper.
//!
//! DynamoDB calls come one after another on keep-alive connections, tens of thousands a
//! second in a benchmark, and each costs the kernel a read and a write however it is
//! served. What the server adds on top is what this path cuts: it reads into one buffer
//! per connection, answers from it and writes each answer (every answer of a pipelined
//! batch) with one `write` from one reused buffer, with no per-request header map, boxed
//! body or `writev`. The DynamoDB work itself is `server::dynamodb_begin`/`_finish`, the
//! same as on hyper's path.
//!
//! It takes only the plainest DynamoDB requests ([`head`]); at the first request it does
//! not take, it hands the connection with the bytes it has read to hyper (`rewind`),
//! which serves it from then on: WebSocket upgrades, Bedrock streams, malformed requests
//! and their answers stay hyper's.

mod answer;
pub mod head;
mod linger;
mod rewind;

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::App;
use crate::metrics::Api;
use crate::server::{dynamodb_begin, dynamodb_finish};
use head::Head;

/// Bytes a read asks for at least.
const READ_CHUNK: usize = 8 * 1024;
/// Buffers larger than this are given back once empty.
const KEEP: usize = 256 * 1024;
/// A head still incomplete after this many bytes goes to hyper (which has its own limit).
const MAX_HEAD: usize = 64 * 1024;

/// How the lean path left a connection.
enum End {
    /// Closed (by the client, an error, or after `Connection: close`).
    Closed,
    /// For hyper, with the bytes read and not yet served.
    HandOver(Vec<u8>),
}

/// Serves one accepted connection: here while its requests are plain DynamoDB calls, then
/// through hyper.
pub async fn serve(mut stream: TcpStream, app: Arc<App>) {
    match lean(&mut stream, &app).await {
        End::Closed => {}
        End::HandOver(read) => {
            crate::server::serve_hyper(rewind::Rewind::new(read, stream), app).await;
        }
    }
}

async fn lean(stream: &mut TcpStream, app: &App) -> End {
    let max_body = app.config.max_body;
    let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // Where the first unserved request starts in `inbuf`.
    let mut start = 0;
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut body: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        // Answer every whole request buffered.
        let mut need = 0;
        let mut close = false;
        while start < inbuf.len() {
            let pending = &inbuf[start..];
            let call = match head::parse(pending, max_body) {
                Head::Call(c) => c,
                Head::Partial if pending.len() <= MAX_HEAD => break,
                Head::Partial | Head::Other => {
                    if write_out(stream, &mut out).await.is_err() {
                        return End::Closed;
                    }
                    inbuf.drain(..start);
                    return End::HandOver(inbuf);
                }
            };
            let whole = call.head_len + call.body_len;
            if pending.len() < whole {
                need = whole - pending.len();
                break;
            }
            let started = Instant::now();
            let op = dynamodb_begin(app, call.target);
            app.faults.before_request(Api::Dynamodb, &app.metrics).await;
            body.clear();
            let status = dynamodb_finish(
                app,
                op,
                Some(&pending[call.head_len..whole]),
                started,
                &mut body,
            );
            answer::write(&mut out, status, &body, call.close);
            start += whole;
            if call.close {
                close = true;
                break;
            }
        }
        if write_out(stream, &mut out).await.is_err() {
            return End::Closed;
        }
        if close {
            let _ = linger::Linger::close(stream).await;
            return End::Closed;
        }
        if start == inbuf.len() {
            inbuf.clear();
            start = 0;
            if inbuf.capacity() > KEEP {
                // A large body passed: do not hold its buffers for the connection's life.
                inbuf = Vec::with_capacity(READ_CHUNK);
                out = Vec::with_capacity(READ_CHUNK);
                body = Vec::with_capacity(READ_CHUNK);
            }
        } else if start > 0 {
            inbuf.drain(..start);
            start = 0;
        }
        inbuf.reserve(need.max(READ_CHUNK));
        match stream.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) if inbuf.is_empty() => return End::Closed,
            // The client stopped sending mid-request: hyper decides what that deserves.
            Ok(0) => return End::HandOver(inbuf),
            Err(_) => return End::Closed,
            Ok(_) => {}
        }
    }
}

/// Sends what `out` holds and empties it.
async fn write_out(stream: &mut TcpStream, out: &mut Vec<u8>) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let r = stream.write_all(out).await;
    out.clear();
    r
}
