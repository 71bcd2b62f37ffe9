//! `surge mock`: the reference chatbot of the seed and its AWS back ends, on one port.
//!
//! A load test against staging needs staging; a load test of the load generator, a
//! laptop rehearsal or a CI job needs something that behaves like the system model on
//! loopback. This crate serves
//!
//! - the chat WebSocket (`/chat`, [`chat`]): API Gateway's rules ([`chat::gateway`]:
//!   connect rate, maximum duration and idle timeout, per-user and account throttles), then
//!   the seed's per-turn pipeline with real sleeps drawn from the system model, a real
//!   intent classifier and semantic cache, conversation memory in the mock DynamoDB and
//!   generation through the mock Bedrock;
//! - the Bedrock Runtime API ([`bedrock`]) with AWS event-stream framing and the model
//!   quotas of the system model;
//! - the DynamoDB API ([`dynamodb`]) in memory, with on-demand capacity;
//! - `POST /admin/prewarm` ([`prewarm`]), the seed's `pre_warm_for_release`;
//! - `/metrics` ([`metrics`]) and `/healthz`;
//!
//! with injectable faults ([`faults`]) and, for more connections than one process may
//! hold, several worker processes on one port ([`workers`]).

pub mod bedrock;
pub mod chat;
pub mod clock;
pub mod door;
pub mod dynamodb;
pub mod eventstream;
pub mod faults;
pub mod http1;
pub mod metrics;
pub mod pool;
pub mod prewarm;
pub mod server;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use surge_profile::SystemModel;
use tokio::net::TcpListener;

use crate::bedrock::Bedrock;
use crate::chat::Chat;
use crate::chat::gateway::GatewayFrames;
use crate::dynamodb::Dynamo;
use crate::faults::Faults;
use crate::metrics::Metrics;

/// How one mock server behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The system model served (latencies, quotas, intents, stores).
    pub system: SystemModel,
    /// Worker processes sharing the port: quotas and capacity are divided by this.
    pub workers: u32,
    pub faults: Faults,
    /// Chat token frames carry every token due within this tick (zero: one frame per
    /// token). Measured inter-token latency is then the gap between frames.
    pub token_tick: Duration,
    /// Largest request body accepted (DynamoDB and Bedrock).
    pub max_body: usize,
    /// Most Bedrock response streams open at once in this process.
    pub max_streams: usize,
    /// The frames of the gateway's own throttles: surge's default error frame, or API
    /// Gateway's `{"message":"Too Many Requests",…}`.
    pub gateway_frames: GatewayFrames,
    /// Who may open a chat WebSocket (`--auth`).
    pub door: Arc<door::Door>,
}

impl Config {
    pub fn new(system: SystemModel) -> Self {
        Self {
            system,
            workers: 1,
            faults: Faults::none(),
            token_tick: Duration::ZERO,
            max_body: 16 * 1024 * 1024,
            max_streams: 10_000,
            gateway_frames: GatewayFrames::Surge,
            door: Arc::default(),
        }
    }
}

/// Everything a request handler needs: the APIs and their shared state.
pub struct App {
    pub config: Config,
    pub dynamo: Dynamo,
    pub bedrock: Bedrock,
    pub chat: Chat,
    pub metrics: Arc<Metrics>,
    pub faults: Faults,
    /// Whether `POST /admin/prewarm` has warmed the product/FAQ cache.
    pub prewarm: prewarm::CacheWarmth,
}

impl App {
    pub fn new(config: Config) -> Arc<Self> {
        let sys = &config.system;
        let dynamo = Dynamo::new(
            sys.memory.enabled.then(|| sys.memory.clone()),
            config.workers,
        );
        let metrics = Arc::new(Metrics::new());
        let bedrock = Bedrock::new(sys, config.workers, config.max_streams, &metrics);
        let chat = Chat::new(
            sys,
            config.workers,
            config.gateway_frames,
            &dynamo,
            metrics.clone(),
        );
        metrics.set_prewarmed(sys.cache.enabled && sys.cache.prewarm);
        Arc::new(Self {
            faults: config.faults.clone(),
            config,
            dynamo,
            bedrock,
            chat,
            metrics,
            prewarm: prewarm::CacheWarmth::default(),
        })
    }
}

/// A server running on a tokio task (what tests and `surge bench` start).
pub struct Server {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Target tracking of the orchestrator, while it runs.
    autoscaler: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (port 0 picks one) and starts serving.
    pub async fn start(addr: SocketAddr, config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self::on(listener, config))
    }

    /// Serves on a listener already bound (a worker's SO_REUSEPORT socket).
    pub fn on(listener: TcpListener, config: Config) -> Self {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let app = App::new(config);
        let task = tokio::spawn(server::serve(listener, app.clone()));
        let autoscaler = app
            .chat
            .orchestrator
            .clone()
            .map(|ecs| tokio::spawn(ecs.autoscale()));
        Self {
            addr,
            app,
            task,
            autoscaler,
        }
    }

    /// Serves until the listener fails.
    pub async fn run(mut self) -> std::io::Result<()> {
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(a) = &self.autoscaler {
            a.abort();
        }
    }
}
