//! One session: connect, send messages when they are due, time the answers, reconnect.
//!
//! Open model, as wrk2 measures: a message's latency starts at its *intended* time from the
//! plan. A session never sends while an answer streams (users wait); a message that fell due
//! meanwhile goes out when the answer ends, counted late, its clock still started at the
//! intended time — so a stalled server shows in `e2e`/`ttft` and not in `service` (actual
//! send → done). Nothing is corrected twice: values are recorded as measured.
//!
//! Frames that are not the answer, and closes by the server, mean what [`crate::frames`]
//! says; an idle connection is kept open with the profile's keepalive, if it has one.
//!
//! Users react to slowness and failures (`[traffic] abandon_after`, `retry_after_error`):
//! a user gives up on an answer not complete `abandon_after` after the message's intended
//! time — the time the user has been waiting, in an open model — and the message counts as
//! `abandoned`, not as an error and not in the latencies; its late frames are dropped as
//! after a reply timeout. Since `abandon_after` is at most the reply timeout and counts
//! from the intended time (never after the actual send), the user always gives up first.
//! After an error frame or a throttle, the user sends the same text again once, after a
//! drawn delay: the retry is a message of its own whose intended time is the error's time
//! plus the delay, queued with the scheduled ones. A retry that fails is not retried, and
//! a failure of the connection (dropped, closed mid-answer) is not a reply the user could
//! retry; retries still pending when the session's window closes are not sent.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use surge_profile::goodput::tpot_us;
use surge_profile::target::Correlate;
use surge_profile::{Keepalive, KeepaliveAction, Unsolicited};
use surge_protocol::{Codec, Decoded, IncomingKind};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_tungstenite::tungstenite::Message;

use crate::catchup::CatchUp;
use crate::connect::{Backoff, ConnectGate, Connector, Ws};
use crate::correlate::Abandoned;
use crate::errors::{ErrorClass, Failure};
use crate::feed::{Due, Feed, What};
use crate::frames::{self, NO_CLOSE_FRAME, Other, close_code};
use crate::plan::{Plan, Window};
use crate::recording::{Answer, Recording, micros};

/// How long a closing session waits for the server to acknowledge the close.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Shortest token stream whose rate is recorded (tokens/s per answer).
const MIN_STREAMING_S: f64 = 0.001;
/// Stands for the text of a binary frame: unreadable, as a frame that is not JSON.
const BINARY: &str = "<binary frame>";

/// What every session of a process shares.
pub struct Ctx {
    pub plan: Plan,
    /// Gamma and trace messages, handed out to this shard's sessions (`None`: sessions
    /// draw their own gaps).
    pub feed: Option<Feed>,
    pub codec: Codec,
    /// What frames that answer no message are (`[protocol] unsolicited`).
    pub unsolicited: Unsolicited,
    /// Keeps idle connections open (`[protocol] keepalive`).
    pub keepalive: Option<Keepalive>,
    pub connector: Connector,
    pub gate: ConnectGate,
    /// Paces the messages the generator itself made late (catchup.rs).
    pub catch_up: CatchUp,
    /// How many shards share the profile's rate (this one offers 1/shards of it).
    pub shards: u32,
    pub rec: Recording,
    /// Time zero of the run; every plan offset is from here.
    pub start: Instant,
    pub stop: watch::Receiver<bool>,
}

impl Ctx {
    fn at(&self, offset: Duration) -> Instant {
        self.start + offset
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Messages per second this shard offers at `at`.
    fn planned_rate(&self, at: Instant) -> f64 {
        self.plan.rate_at(at - self.start) / f64::from(self.shards.max(1))
    }
}

/// Resolves once the run is stopped (Ctrl-C); never if the stop switch is gone.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How a connection ended.
enum End {
    /// The window closed (or the run ended): close and stop.
    Closed,
    /// Ctrl-C.
    Stopped,
    /// The connection is unusable: reconnect.
    Reconnect,
}

/// Runs session `k` through all its windows.
pub async fn run(ctx: Arc<Ctx>, k: u64) {
    let mut rng = SmallRng::seed_from_u64(ctx.plan.seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let store = ctx.plan.pick_store(&mut rng);
    let mut session = Session {
        ctx: &ctx,
        k,
        store,
        name: ctx.plan.session_name(k),
        rng,
        sent: 0,
        stop: ctx.stop.clone(),
        abandoned: Abandoned::default(),
        retries: Vec::new(),
    };
    for window in ctx.plan.windows(k) {
        if window.open >= ctx.plan.duration || ctx.stopped() {
            break;
        }
        let window = Window {
            open: window.open,
            close: window.close.min(ctx.plan.duration),
        };
        if !session.wait(ctx.at(window.open)).await {
            break;
        }
        if !session.run_window(window).await {
            break;
        }
    }
}

/// A message the user sends again after an error: when (from the start of the run), the
/// same text, the same store.
struct Retry<'a> {
    at: Duration,
    text: &'a str,
    store: usize,
}

/// What one exchange sends.
struct Outgoing<'a> {
    intended: Instant,
    late: bool,
    text: &'a str,
    store: usize,
    /// Whether this is already a retry (which is not retried again).
    retry: bool,
}

struct Session<'a> {
    ctx: &'a Ctx,
    k: u64,
    store: usize,
    /// The session id sent with every message.
    name: String,
    rng: SmallRng,
    sent: u64,
    stop: watch::Receiver<bool>,
    /// Messages given up on whose answers may still come (correlation by id).
    abandoned: Abandoned,
    /// Retries waiting for their time, earliest first.
    retries: Vec<Retry<'a>>,
}

impl<'a> Session<'a> {
    /// Sleeps until `until`; false when stopped first.
    async fn wait(&mut self, until: Instant) -> bool {
        tokio::select! {
            _ = sleep_until(until) => true,
            _ = stopped(&mut self.stop) => false,
        }
    }

    /// The next message due after `from` (or, fed by the shard, when to look again), or
    /// `None` when none is due before `close`.
    fn next_due(&mut self, from: Duration, close: Duration, first: bool) -> Option<Due> {
        if let Some(feed) = &self.ctx.feed {
            return feed.next(self.k, from, close);
        }
        self.ctx
            .plan
            .next_due(from, close, first, &mut self.rng)
            .map(|at| Due::message(at, None))
    }

    /// One open window: connect (paced), converse, reconnect with backoff; false on Ctrl-C.
    async fn run_window(&mut self, window: Window) -> bool {
        let ctx = self.ctx;
        // The user of a window that closed left with the retries it still meant to send.
        self.retries.clear();
        let mut due = self.next_due(window.open, window.close, true);
        let mut backoff = Backoff::default();
        let mut connected_before = false;
        let deadline = ctx.at(window.close);
        loop {
            tokio::select! {
                _ = ctx.gate.admit() => {}
                _ = stopped(&mut self.stop) => return false,
                _ = sleep_until(deadline) => {
                    self.count_unsent(due, window.close);
                    return true;
                }
            }
            // Boxed: the connect future (TCP, TLS, upgrade) is ~10 KB, and unboxed its
            // space would stay in every session's state for the whole run.
            match Box::pin(ctx.connector.connect(self.k)).await {
                Ok((mut ws, took)) => {
                    backoff.reset();
                    ctx.rec.connected(took);
                    let c = &ctx.rec.counters;
                    c.sessions_opened.fetch_add(1, Ordering::Relaxed);
                    c.sessions_open.fetch_add(1, Ordering::Relaxed);
                    if connected_before {
                        c.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    connected_before = true;
                    let end = self.converse(&mut ws, &mut due, window).await;
                    c.sessions_open.fetch_sub(1, Ordering::Relaxed);
                    // Also after the server's close: this sends the reply it is owed.
                    let _ = tokio::time::timeout(CLOSE_GRACE, (*ws).close(None)).await;
                    match end {
                        End::Closed => return true,
                        End::Stopped => return false,
                        End::Reconnect => {}
                    }
                }
                Err(f) => ctx.rec.error(&f),
            }
            let pause = backoff.next(&mut self.rng);
            if Instant::now() + pause >= deadline || !self.wait(Instant::now() + pause).await {
                if ctx.stopped() {
                    return false;
                }
                self.count_unsent(due, window.close);
                return true;
            }
        }
    }

    /// Sends messages as they fall due and reads their answers until the window closes.
    async fn converse(&mut self, ws: &mut Ws, due: &mut Option<Due>, window: Window) -> End {
        let ctx = self.ctx;
        let close = ctx.at(window.close);
        let mut stop = ctx.stop.clone();
        let mut idle_since = Instant::now();
        // When the session last sent something on this connection (the keepalive's gap).
        let mut last_sent = Instant::now();
        // One timer and one stop watch for the connection (and its exchanges); the timer
        // is re-armed per message.
        let wake = sleep_until(close);
        let stop_wait = stopped(&mut stop);
        tokio::pin!(wake, stop_wait);
        loop {
            let keepalive_at = ctx.keepalive.as_ref().map(|k| last_sent + k.every.to_std());
            let at = due.map_or(close, |d| ctx.at(d.at).min(close));
            let at = self.retries.first().map_or(at, |r| ctx.at(r.at).min(at));
            let at = keepalive_at.map_or(at, |k| k.min(at));
            if wake.deadline() != at {
                wake.as_mut().reset(at);
            }
            tokio::select! {
                _ = &mut wake => {}
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => self.idle_frame(ctx.codec.decode(&text), &text),
                    Some(Ok(Message::Binary(_))) => self.idle_frame(Decoded::NotJson, BINARY),
                    Some(Ok(Message::Close(frame))) => {
                        return self.server_closed(close_code(frame.as_ref()), None);
                    }
                    None | Some(Err(_)) => return self.server_closed(NO_CLOSE_FRAME, None),
                    Some(Ok(_)) => {} // ping (answered by tungstenite), pong
                },
                _ = &mut stop_wait => return End::Stopped,
            }
            let now = Instant::now();
            if let (Some(k), Some(at)) = (&ctx.keepalive, keepalive_at) {
                // A message about to go out keeps the connection open by itself.
                let message_due = due.is_some_and(|d| ctx.at(d.at) <= now)
                    || self.retries.first().is_some_and(|r| ctx.at(r.at) <= now);
                if now >= at && now < close && !message_due {
                    if let Err(end) = self.keepalive(ws, k).await {
                        return end;
                    }
                    last_sent = now;
                    continue;
                }
            }
            if now >= close {
                // The window is over: what fell due but could not be sent (the server was
                // too slow) is counted, not sent after the fact.
                self.count_unsent(*due, window.close);
                return End::Closed;
            }
            // A retry goes out before a scheduled message due no earlier.
            let retry_due = self
                .retries
                .first()
                .is_some_and(|r| ctx.at(r.at) <= now && due.is_none_or(|d| r.at <= d.at));
            let (intended, text, store) = if retry_due {
                let r = self.retries.remove(0);
                (ctx.at(r.at), r.text, r.store)
            } else {
                let Some(d) = *due else {
                    continue;
                };
                let intended = ctx.at(d.at);
                if now < intended {
                    continue;
                }
                let What::Message(row) = d.what else {
                    // The feed had not drawn this far: ask again.
                    *due = self.next_due(d.at, window.close, false);
                    continue;
                };
                *due = self.next_due(d.at, window.close, false);
                let given = row.and_then(|i| ctx.plan.replayed(i));
                let text = ctx
                    .plan
                    .pick_text(given.and_then(|m| m.intent), &mut self.rng);
                let store = given.and_then(|m| m.store).unwrap_or(self.store);
                (intended, text, store)
            };
            // The message is due: it was late if the session was busy when it fell due.
            let late = intended < idle_since;
            if !late {
                let lag = now - intended;
                ctx.rec.lag(lag);
                // Late because the generator stalled: paced, not sent in a burst.
                let slot = ctx.catch_up.slot(now, lag, || ctx.planned_rate(now));
                if slot > now {
                    ctx.rec.counters.paced.fetch_add(1, Ordering::Relaxed);
                    wake.as_mut().reset(slot);
                    tokio::select! {
                        _ = &mut wake => {}
                        _ = &mut stop_wait => return End::Stopped,
                    }
                }
            }
            let now = Instant::now();
            last_sent = now;
            let out = Outgoing {
                intended,
                late,
                text,
                store,
                retry: retry_due,
            };
            // Boxed: an exchange's state (the send, the frame reads, the timings) is most
            // of a session's, and only the few sessions awaiting an answer need it.
            match Box::pin(self.exchange(ws, wake.as_mut(), stop_wait.as_mut(), out)).await {
                Ok(()) => idle_since = Instant::now(),
                Err(end) => return end,
            }
        }
    }

    /// Counts the messages still due before `close`, from `due` on, as never sent.
    fn count_unsent(&mut self, due: Option<Due>, close: Duration) {
        let mut n = 0;
        let mut next = due;
        while let Some(d) = next {
            n += u64::from(d.what != What::Recheck);
            next = self.next_due(d.at, close, false);
        }
        self.ctx.rec.counters.unsent.fetch_add(n, Ordering::Relaxed);
    }

    /// A frame while nothing is in flight.
    fn idle_frame(&mut self, decoded: Decoded, text: &str) {
        let other = frames::while_idle(
            decoded,
            text,
            self.ctx.codec.correlate(),
            &mut self.abandoned,
        );
        self.other(other);
    }

    /// Records a frame that is not part of an answer.
    fn other(&self, other: Other) {
        match other {
            Other::Drop => {}
            Other::Unsolicited(what) => match self.ctx.unsolicited {
                Unsolicited::Count => {
                    self.ctx
                        .rec
                        .counters
                        .unsolicited
                        .fetch_add(1, Ordering::Relaxed);
                }
                Unsolicited::Error => self
                    .ctx
                    .rec
                    .error(&Failure::new(ErrorClass::ProtocolViolation, what)),
            },
            Other::Failure(f) => self.ctx.rec.error(&f),
        }
    }

    /// The server ended the connection with `code` while `in_flight` was due (or while
    /// idle): counted by code, and an error unless it is the ordinary end of an idle
    /// connection. The session reconnects either way.
    fn server_closed(&self, code: u16, in_flight: Option<&str>) -> End {
        self.ctx.rec.closed_by_server(code);
        if let Some(f) = frames::server_close(code, in_flight) {
            self.ctx.rec.error(&f);
        }
        End::Reconnect
    }

    /// Sends the profile's keepalive.
    async fn keepalive(&self, ws: &mut Ws, k: &Keepalive) -> Result<(), End> {
        let frame = match &k.action {
            KeepaliveAction::Send(text) => Message::text(text.clone()),
            KeepaliveAction::Ping => Message::Ping(Vec::new().into()),
        };
        if ws.send(frame).await.is_err() {
            self.ctx.rec.error(&Failure::new(
                ErrorClass::Dropped,
                "connection closed before the keepalive could be sent",
            ));
            return Err(End::Reconnect);
        }
        self.ctx
            .rec
            .counters
            .keepalives
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// After an error or a throttle of `out`, the user sends it again once (if the profile
    /// says users retry), after a drawn delay from now.
    fn retry_later(&mut self, out: &Outgoing<'a>) {
        if out.retry {
            return;
        }
        let Some(delay) = self.ctx.plan.retry_delay(&mut self.rng) else {
            return;
        };
        let at = Instant::now() - self.ctx.start + delay;
        let i = self.retries.partition_point(|r| r.at <= at);
        self.retries.insert(
            i,
            Retry {
                at,
                text: out.text,
                store: out.store,
            },
        );
    }

    /// Sends one message and reads its answer. `timeout` is the connection's timer,
    /// re-armed here for the reply timeout (or the user giving up, whichever is first);
    /// `stop` resolves on Ctrl-C.
    async fn exchange(
        &mut self,
        ws: &mut Ws,
        mut timeout: Pin<&mut Sleep>,
        mut stop: Pin<&mut impl Future<Output = ()>>,
        out: Outgoing<'a>,
    ) -> Result<(), End> {
        let ctx = self.ctx;
        let id = format!("{}-{}", self.k, self.sent);
        let Outgoing {
            intended,
            late,
            text,
            store,
            ..
        } = out;
        let store_name = ctx.plan.store_name(store);
        let frame = ctx.codec.encode(&self.name, &id, store_name, text);
        if ws.send(Message::text(frame)).await.is_err() {
            ctx.rec.error(&Failure::new(
                ErrorClass::Dropped,
                "connection closed before the message could be sent",
            ));
            return Err(End::Reconnect);
        }
        let sent_at = Instant::now();
        self.sent += 1;
        let c = &ctx.rec.counters;
        c.sent.fetch_add(1, Ordering::Relaxed);
        if late {
            c.late.fetch_add(1, Ordering::Relaxed);
        }
        if out.retry {
            c.retries.fetch_add(1, Ordering::Relaxed);
        }
        let timeout_at = sent_at + ctx.plan.reply_timeout;
        // The user gives up first when their patience ends by the reply timeout.
        let gives_up = ctx
            .plan
            .abandon_after
            .map(|a| intended + a)
            .filter(|g| *g <= timeout_at);
        let deadline = gives_up.unwrap_or(timeout_at);
        let mut first: Option<Instant> = None;
        let mut last: Option<Instant> = None;
        let mut itl: Vec<u64> = Vec::new();
        // Tokens that streamed after the first token frame (the rate's numerator).
        let mut streamed: u64 = 0;
        // Every token the frames carried.
        let mut carried: u64 = 0;
        // One timer and one stop watch for the whole answer, not one per frame: a streamed
        // answer is hundreds of frames, and re-arming a timer per frame costs more than
        // reading the frame.
        timeout.as_mut().reset(deadline);
        loop {
            let frame = tokio::select! {
                frame = ws.next() => frame,
                _ = timeout.as_mut() => {
                    if gives_up.is_some() {
                        c.abandoned.fetch_add(1, Ordering::Relaxed);
                    } else {
                        ctx.rec.error(&Failure::new(ErrorClass::ReplyTimeout, format!(
                            "no complete answer to {id} within {:?}", ctx.plan.reply_timeout)));
                    }
                    // By id, a late answer can be recognised and dropped: keep the
                    // connection. By order it would be taken for the next one's.
                    return match ctx.codec.correlate() {
                        Correlate::Id => {
                            self.abandoned.add(id);
                            Ok(())
                        }
                        Correlate::Order => Err(End::Reconnect),
                    };
                }
                _ = stop.as_mut() => return Err(End::Stopped),
            };
            let text = match frame {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Binary(_))) => {
                    let judged = frames::while_waiting(
                        Decoded::NotJson,
                        BINARY,
                        &id,
                        ctx.codec.correlate(),
                        &mut self.abandoned,
                    );
                    if let Err(other) = judged {
                        self.other(other);
                    }
                    continue;
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(self.server_closed(close_code(frame.as_ref()), Some(&id)));
                }
                None | Some(Err(_)) => return Err(self.server_closed(NO_CLOSE_FRAME, Some(&id))),
                Some(Ok(_)) => continue,
            };
            let now = Instant::now();
            let judged = frames::while_waiting(
                ctx.codec.decode(text.as_str()),
                text.as_str(),
                &id,
                ctx.codec.correlate(),
                &mut self.abandoned,
            );
            let inc = match judged {
                Ok(inc) => inc,
                Err(other) => {
                    self.other(other);
                    continue;
                }
            };
            match inc.kind {
                IncomingKind::Token { tokens: n } => {
                    carried += u64::from(n);
                    if let Some(prev) = last {
                        itl.push(micros(now - prev));
                        streamed += u64::from(n);
                    }
                    first.get_or_insert(now);
                    last = Some(now);
                }
                IncomingKind::Done => {
                    // From the first to the last token frame; an answer that came in one
                    // burst has no meaningful rate.
                    let streaming = first
                        .zip(last)
                        .map(|(f, l)| (l - f).as_secs_f64())
                        .filter(|s| *s >= MIN_STREAMING_S && streamed > 0);
                    let usage = inc.usage.unwrap_or_default();
                    let tokens = usage.output.or((carried > 0).then_some(carried));
                    // Timing between tokens needs at least two frames: an answer that came
                    // in one frame has none to measure.
                    let tpot = first
                        .zip(last)
                        .filter(|_| !itl.is_empty())
                        .zip(tokens)
                        .and_then(|((f, l), n)| tpot_us(micros(l - f), n));
                    ctx.rec.answer(&Answer {
                        store,
                        model: inc.model.as_deref(),
                        ttft: first.map(|f| micros(f - intended)),
                        e2e: micros(now - intended),
                        service: micros(now - sent_at),
                        itl: &itl,
                        tokens_per_s: streaming.map(|s| streamed as f64 / s),
                        tpot,
                        tokens,
                        input_tokens: usage.input,
                    });
                    return Ok(());
                }
                IncomingKind::Throttle => {
                    ctx.rec
                        .error(&Failure::new(ErrorClass::Throttled, text.as_str()));
                    self.retry_later(&out);
                    return Ok(());
                }
                IncomingKind::Error { message } => {
                    ctx.rec
                        .error(&Failure::new(ErrorClass::ServerError, message));
                    self.retry_later(&out);
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every session's state lives as long as the run, 100,000 of them per rehearsal: it
    /// must stay small (the connect future alone is ~10 KB and the stream ~1.4 KB, hence
    /// their boxes; with the stream inline the state took ~4 KB).
    #[tokio::test]
    async fn a_session_state_stays_small() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/local.toml");
        let plan = Plan::new(&surge_profile::Profile::load(path).unwrap());
        let (samples, _) = tokio::sync::mpsc::unbounded_channel();
        let (_stop, stop) = watch::channel(false);
        let start = Instant::now();
        let url = "ws://127.0.0.1:9/chat";
        let ctx = Arc::new(Ctx {
            gate: ConnectGate::new(1.0),
            catch_up: CatchUp::new(start),
            shards: 1,
            codec: Codec::default_shape(),
            unsolicited: Unsolicited::Count,
            keepalive: None,
            rec: Recording::new(&plan.store_names(), Default::default(), start, samples),
            connector: Connector::new(
                url,
                &[],
                crate::auth::Door::Open,
                vec![],
                Duration::from_secs(1),
            )
            .unwrap(),
            plan,
            feed: None,
            start,
            stop,
        });
        let session = run(ctx, 1);
        let size = std::mem::size_of_val(&session);
        assert!(size <= 1536, "a session's state takes {size} bytes");
    }
}
