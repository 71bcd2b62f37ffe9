//! Shards as processes: spawn N workers of this very binary, read their JSON lines.
//!
//! Each worker gets its [`WorkerSpec`] on stdin and writes [`ShardMessage`]s to stdout, one
//! per line; its stderr goes to ours. A worker whose stdout ends without a `finished`
//! message has died: the coordinator is told ([`ShardEvent::Gone`]) and keeps everything the
//! worker reported before.

use std::ffi::OsString;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedSender;

use crate::wire::{ShardMessage, WorkerSpec};

/// What the coordinator hears from a shard.
#[derive(Debug)]
pub enum ShardEvent {
    /// Boxed: an interval report is a few hundred bytes, a death notice a string.
    Message(Box<ShardMessage>),
    /// The shard ended without finishing (process died, or could not start).
    Gone(String),
    /// A shard of a rendezvous run went away or fell silent mid-run: the run goes on
    /// without it and is marked degraded.
    Lost(String),
}

/// The running worker processes.
pub struct Workers {
    pids: Vec<u32>,
}

impl Workers {
    /// Spawns one worker per spec with `command` (program, then arguments).
    pub async fn spawn(
        command: &[OsString],
        specs: Vec<WorkerSpec>,
        events: UnboundedSender<(u32, ShardEvent)>,
    ) -> Result<Self, String> {
        let (program, args) = command
            .split_first()
            .ok_or("no worker command to spawn shards with")?;
        let mut pids = Vec::new();
        for spec in specs {
            let index = spec.shard.index;
            let mut child = Command::new(program)
                .args(args)
                // Local workers report over their pipes: the rendezvous key is not theirs.
                .env_remove(crate::rendezvous::key::KEY_ENV)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start shard {index}: {e}"))?;
            pids.push(child.id().unwrap_or(0));
            let json = serde_json::to_vec(&spec).expect("specs serialize");
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(&json)
                .await
                .map_err(|e| format!("cannot brief shard {index}: {e}"))?;
            drop(stdin);
            tokio::spawn(follow(index, child, events.clone()));
        }
        Ok(Self { pids })
    }

    /// Asks every worker to finish its interval and stop (SIGINT, as Ctrl-C would).
    pub fn interrupt(&self) {
        for &pid in &self.pids {
            if pid > 0 {
                // SAFETY: kill with a pid we spawned and a valid signal number.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGINT);
                }
            }
        }
    }
}

async fn follow(index: u32, mut child: Child, events: UnboundedSender<(u32, ShardEvent)>) {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut finished = false;
    let mut trouble = None;
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => match serde_json::from_str::<ShardMessage>(&line) {
                Ok(msg) => {
                    finished |= matches!(msg, ShardMessage::Finished(_));
                    let _ = events.send((index, ShardEvent::Message(Box::new(msg))));
                }
                Err(e) => trouble = Some(format!("unreadable report from shard {index}: {e}")),
            },
            Ok(None) => break,
            Err(e) => {
                trouble = Some(format!("reading shard {index}: {e}"));
                break;
            }
        }
    }
    let status = child.wait().await;
    if !finished {
        let why = match status {
            Ok(s) => format!("shard {index} ended without finishing ({s})"),
            Err(e) => format!("shard {index} ended without finishing: {e}"),
        };
        let why = trouble.map_or(why.clone(), |t| format!("{why}; {t}"));
        let _ = events.send((index, ShardEvent::Gone(why)));
    }
}
