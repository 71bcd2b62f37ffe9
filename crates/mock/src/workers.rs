//! Several processes on one port, for more connections than one process may hold.
//!
//! A process here may hold at most 20,000 open files, and 25,000 chat sessions need more.
//! `surge mock --workers N` binds its port with SO_REUSEPORT, then starts N−1 copies of
//! itself that bind the same port the same way; the kernel spreads new connections evenly
//! over the N listening sockets. Each worker divides per-model Bedrock quotas, DynamoDB
//! capacity and gateway account limits by N, so the whole behaves like one server with the
//! system model's limits.
//!
//! Each worker holds its own in-memory tables and caches: the DynamoDB and Bedrock HTTP
//! APIs are consistent per connection only (an SDK test should use one worker), while
//! chat sessions are unaffected (a session lives on one connection, and so on one worker).
//!
//! Supervision: the parent pipes each child's stdin and closes it to stop the child (a
//! child also stops when the parent dies, as its stdin closes); a child that exits early
//! is reported and the parent stops the others.

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdin, Command};

/// What a worker prints first, followed by its address.
pub const LISTENING: &str = "listening on ";

/// A listening socket with SO_REUSEPORT (and SO_REUSEADDR) set, non-blocking.
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// Raises this process's open-file limit to its hard limit (a default soft limit of 1,024
/// would cap the sessions long before the hard limit does). Returns the limit in force.
pub fn raise_file_limit() -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

/// The child processes of a supervisor.
pub struct Workers {
    children: Vec<Child>,
    /// Held apart from the children: `Child::wait` would close them.
    stdins: Vec<ChildStdin>,
}

impl Workers {
    /// No workers: a single-process server.
    pub fn none() -> Self {
        Self {
            children: Vec::new(),
            stdins: Vec::new(),
        }
    }

    /// Starts `count` copies of `program args…` and waits (up to 30 s each) for each to
    /// print its listening line.
    pub async fn spawn(program: &Path, args: &[OsString], count: u32) -> io::Result<Self> {
        let mut workers = Self::none();
        for _ in 0..count {
            let mut child = Command::new(program)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().expect("piped");
            workers.stdins.push(child.stdin.take().expect("piped"));
            workers.children.push(child);
            let mut lines = BufReader::new(stdout).lines();
            let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
            match first {
                Ok(Ok(Some(line))) if line.starts_with(LISTENING) => {}
                other => {
                    workers.shutdown().await;
                    return Err(io::Error::other(format!(
                        "a worker did not start listening: {other:?}"
                    )));
                }
            }
            // Keep draining the child's stdout so it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
        Ok(workers)
    }

    /// Waits until one worker exits; returns its index and status.
    pub async fn wait_any(&mut self) -> (usize, io::Result<ExitStatus>) {
        if self.children.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.children.iter_mut().map(|c| Box::pin(c.wait()));
        let (status, i, _) = futures::future::select_all(waits).await;
        (i, status)
    }

    /// Closes every worker's stdin, gives them two seconds to exit, then kills the rest.
    pub async fn shutdown(mut self) {
        self.stdins.clear();
        for c in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(2), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
    }
}

/// For a worker: completes when the supervisor closes our stdin (or dies).
pub async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_listeners_share_one_port() {
        let a = reuseport_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap();
        let b = reuseport_listener(addr).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
    }
}
