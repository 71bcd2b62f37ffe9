//! A fence after the upgrade response's head: the handshake reads that and not a byte more.
//!
//! tungstenite's client handshake reads the server's answer into a 4 KiB buffer and keeps
//! that buffer as the connection's read buffer for life: 4 KiB a session, 400 MB at 100,000
//! sessions, most of a session's memory. Behind a [`Fenced`] stream the handshake sees the
//! response head only (up to its blank line), so it has read nothing of the frames; bytes
//! the server sent right behind the head (a greeting nobody asked for) wait in the fence.
//! connect.rs then rebuilds the WebSocket around the same stream with surge's own small
//! buffer, and the held bytes are the first it reads: nothing is lost or reordered.
//!
//! Below TLS the fence would see records, not the head, so a `wss://` connection starts
//! with the fence lifted (rustls keeps far larger buffers per connection anyway).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The blank line that ends an HTTP head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";
/// Bytes read at a time while fenced: an upgrade response head is a few hundred.
const CHUNK: usize = 512;

/// A stream that, until it has passed an HTTP head's end, yields nothing past it.
#[derive(Debug)]
pub struct Fenced<S> {
    inner: S,
    /// Whether the head has ended (reads pass straight through once `held` is empty).
    lifted: bool,
    /// How much of [`HEAD_END`] the bytes so far end with.
    matched: usize,
    /// Bytes read past the head, served before anything else.
    held: Vec<u8>,
}

impl<S> Fenced<S> {
    /// A fence that stops reads at the end of the first HTTP head.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            lifted: false,
            matched: 0,
            held: Vec::new(),
        }
    }

    /// No fence: every read passes through.
    pub fn lifted(inner: S) -> Self {
        Self {
            lifted: true,
            ..Self::new(inner)
        }
    }

    /// Whether everything read so far up to the head's end has been handed out, so the
    /// reader has consumed nothing past it.
    pub fn at_head_end(&self) -> bool {
        self.lifted
    }

    /// How many bytes of `bytes` belong to the head (all of them if it does not end in
    /// them); advances the match.
    fn head_part(&mut self, bytes: &[u8]) -> usize {
        for (i, b) in bytes.iter().enumerate() {
            self.matched = if *b == HEAD_END[self.matched] {
                self.matched + 1
            } else if *b == HEAD_END[0] {
                1
            } else {
                0
            };
            if self.matched == HEAD_END.len() {
                self.lifted = true;
                return i + 1;
            }
        }
        bytes.len()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Fenced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.held.is_empty() {
            let n = this.held.len().min(buf.remaining());
            buf.put_slice(&this.held[..n]);
            this.held.drain(..n);
            if this.held.is_empty() {
                this.held = Vec::new(); // give its memory back
            }
            return Poll::Ready(Ok(()));
        }
        if this.lifted {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let mut chunk = [0u8; CHUNK];
        let want = buf.remaining().min(CHUNK);
        let mut read = ReadBuf::new(&mut chunk[..want]);
        match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                let got = read.filled();
                let head = this.head_part(got);
                buf.put_slice(&got[..head]);
                this.held.extend_from_slice(&got[head..]);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Fenced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Reads everything `fenced` yields, `each` bytes at most per read; returns the reads.
    async fn reads<S: AsyncRead + Unpin>(fenced: &mut Fenced<S>, each: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for _ in 0..1_000 {
            let mut buf = vec![0u8; each];
            let n = fenced.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.push(buf[..n].to_vec());
        }
        out
    }

    #[tokio::test]
    async fn no_read_crosses_the_head_end_and_nothing_is_lost() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        let frames = b"\x81\x05hello\x81\x02hi";
        let wire: Vec<u8> = [&head[..], &frames[..]].concat();
        for each in [1, 3, 7, 64, 4096] {
            let mut fenced = Fenced::new(&wire[..]);
            let got = reads(&mut fenced, each).await;
            assert_eq!(got.concat(), wire, "every byte, in order (reads of {each})");
            // Some read ends exactly at the head's end.
            let mut total = 0;
            let ends: Vec<usize> = got
                .iter()
                .map(|r| {
                    total += r.len();
                    total
                })
                .collect();
            assert!(ends.contains(&head.len()), "reads of {each}: {ends:?}");
            assert!(fenced.at_head_end());
        }
    }

    #[tokio::test]
    async fn a_head_split_across_reads_and_false_starts_are_found() {
        // "\r\n\r" then "\r\n\r\n": a carriage return restarts the match.
        let wire = b"HTTP/1.1 101 OK\r\nA: b\r\n\r\r\n\r\nrest";
        let mut fenced = Fenced::new(&wire[..]);
        let mut buf = [0u8; 64];
        let mut first = Vec::new();
        while !fenced.at_head_end() {
            let n = fenced.read(&mut buf).await.unwrap();
            assert!(n > 0, "the head ends before the stream");
            first.extend_from_slice(&buf[..n]);
        }
        assert_eq!(first, &wire[..wire.len() - 4]);
        let n = fenced.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"rest");
    }

    #[tokio::test]
    async fn a_lifted_fence_passes_reads_through() {
        let wire = b"\r\n\r\nnot a head";
        let mut fenced = Fenced::lifted(&wire[..]);
        let mut buf = [0u8; 64];
        let n = fenced.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], wire);
    }
}
