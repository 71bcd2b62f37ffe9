//! A shard's side of the run: its reports go up to the coordinator, stop orders come down.
//!
//! The shard's own run directory is written from the same messages, so if the coordinator
//! goes away (the connection ends, or it falls silent for
//! [`COORDINATOR_SILENCE_LIMIT`]) the shard closes its
//! sessions and keeps everything it measured.

use surge_record::Breach;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::{COORDINATOR_SILENCE_LIMIT, Down, Joined, LineReader, Up};
use crate::wire::ShardMessage;

/// What the coordinator asks of a shard, or what became of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// Close the sessions and finish (a merged guard broke, or the run was interrupted).
    Stop { why: String, breach: Option<Breach> },
    /// The coordinator is gone: stop, keep the shard's own directory, fail.
    CoordinatorLost(String),
}

/// The running link of a joined shard.
pub struct Link {
    reports: mpsc::UnboundedSender<ShardMessage>,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
    orders: watch::Receiver<Option<Order>>,
}

impl Link {
    pub fn start(joined: Joined) -> Self {
        let (orders_tx, orders) = watch::channel(None);
        let orders_tx = std::sync::Arc::new(orders_tx);
        let (reports, mut rx) = mpsc::unbounded_channel::<ShardMessage>();
        let mut w = joined.writer;
        let lost = orders_tx.clone();
        let writer = tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                let up = Up::Report {
                    message: Box::new(message),
                };
                if let Err(e) = w.send(&up).await {
                    order(&lost, Order::CoordinatorLost(format!("cannot report: {e}")));
                    return;
                }
            }
            // Everything reported: the coordinator reads to the end of the stream.
            w.shutdown().await;
        });
        let reader = tokio::spawn(listen(joined.reader, orders_tx));
        Self {
            reports,
            writer,
            reader,
            orders,
        }
    }

    /// Sends a copy of `message` to the coordinator.
    pub fn report(&self, message: &ShardMessage) {
        let _ = self.reports.send(message.clone());
    }

    /// The coordinator's orders (`None` until there is one).
    pub fn orders(&self) -> watch::Receiver<Option<Order>> {
        self.orders.clone()
    }

    /// Flushes what is queued (at most a few seconds) and closes the connection.
    pub async fn close(self) {
        drop(self.reports);
        let _ = timeout(COORDINATOR_SILENCE_LIMIT, self.writer).await;
        self.reader.abort();
    }
}

fn order(to: &watch::Sender<Option<Order>>, o: Order) {
    to.send_if_modified(|now| {
        if now.is_none() {
            *now = Some(o);
            true
        } else {
            false
        }
    });
}

async fn listen(mut reader: LineReader, orders: std::sync::Arc<watch::Sender<Option<Order>>>) {
    loop {
        match timeout(COORDINATOR_SILENCE_LIMIT, reader.next::<Down>()).await {
            Ok(Ok(Some(Down::Stop { why, breach }))) => order(&orders, Order::Stop { why, breach }),
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => {
                order(
                    &orders,
                    Order::CoordinatorLost("the coordinator closed the connection".into()),
                );
                return;
            }
            Ok(Err(e)) => {
                order(
                    &orders,
                    Order::CoordinatorLost(format!("the link broke: {e}")),
                );
                return;
            }
            Err(_) => {
                order(
                    &orders,
                    Order::CoordinatorLost(format!(
                        "nothing from the coordinator for {} s",
                        COORDINATOR_SILENCE_LIMIT.as_secs()
                    )),
                );
                return;
            }
        }
    }
}
