//! A lingering close. A server that closes a socket while bytes from the client are still
//! unread makes the kernel send a reset, and a reset can destroy the server's last answer
//! before the client has read it: the error for a body too large to read, say, or the
//! answer to a `Connection: close` request that more bytes followed. So, as web servers do
//! (nginx's `lingering_close`), the mock first shuts down its sending side (the client
//! reads the answer, then the end of the stream), then reads and discards whatever still
//! comes until the client closes too, [`LINGER_BYTES`] have come or [`LINGER_TIME`] has
//! passed; only then does the socket close.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Longest wait for the client to close after the mock has.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// Most bytes read and discarded while waiting.
pub const LINGER_BYTES: usize = 4 << 20;

/// Where a lingering close stands.
#[derive(Debug)]
pub struct Linger {
    /// Set once the sending side is shut down.
    deadline: Option<Pin<Box<Sleep>>>,
    left: usize,
}

impl Default for Linger {
    fn default() -> Self {
        Self {
            deadline: None,
            left: LINGER_BYTES,
        }
    }
}

impl Linger {
    /// Shuts down the sending side of `io`, then drains its reading side; ready when the
    /// socket may close.
    pub fn poll_close<I>(&mut self, io: &mut I, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        if self.deadline.is_none() {
            ready!(Pin::new(&mut *io).poll_shutdown(cx))?;
            self.deadline = Some(Box::pin(tokio::time::sleep(LINGER_TIME)));
        }
        let deadline = self.deadline.as_mut().expect("set above");
        let mut scratch = [0u8; 4096];
        while self.left > 0 && deadline.as_mut().poll(cx).is_pending() {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                // The client closed (or reset): nothing of ours is left to lose.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
                Poll::Ready(Err(_)) => break,
                Poll::Ready(Ok(())) => self.left = self.left.saturating_sub(buf.filled().len()),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Closes `io` lingering.
    pub async fn close<I>(io: &mut I) -> io::Result<()>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let mut linger = Self::default();
        poll_fn(|cx| linger.poll_close(io, cx)).await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A client that sent more than the server read gets the server's answer whole.
    #[tokio::test]
    async fn the_answer_survives_unread_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 16];
            s.read_exact(&mut first).await.unwrap();
            s.write_all(b"answer").await.unwrap();
            Linger::close(&mut s).await.unwrap();
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        // Far more than the server reads; still being sent while the answer is read.
        c.write_all(&[b'x'; 16]).await.unwrap();
        let (mut r, mut w) = c.into_split();
        let sending = tokio::spawn(async move {
            let more = vec![b'y'; 256 * 1024];
            let _ = w.write_all(&more).await;
            w
        });
        let mut answer = Vec::new();
        r.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"answer");
        drop(sending.await.unwrap());
        tokio::time::timeout(LINGER_TIME * 2, server)
            .await
            .expect("the server closes once the client has")
            .unwrap();
    }

    /// A client that never closes holds the socket for the linger time, no longer.
    #[tokio::test]
    async fn a_silent_client_is_waited_for_a_bounded_time() {
        let (mut server, _client) = tokio::io::duplex(64);
        let started = std::time::Instant::now();
        tokio::time::timeout(LINGER_TIME * 5, Linger::close(&mut server))
            .await
            .expect("the close ends")
            .unwrap();
        assert!(started.elapsed() >= LINGER_TIME);
    }
}
