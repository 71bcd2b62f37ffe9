//! The HTTP server: one port, routed by what the request is.
//!
//! - `POST /` with `X-Amz-Target: DynamoDB_20120810.*` → DynamoDB;
//! - `POST /model/{modelId}/{converse,converse-stream,invoke,invoke-with-response-stream}`
//!   → Bedrock Runtime;
//! - `GET /chat` with a WebSocket upgrade → the chat pipeline;
//! - `POST /admin/prewarm` → the cache pre-warm of a release (`pre_warm_for_release`);
//! - `GET /metrics`, `GET /healthz`.
//!
//! Plain DynamoDB calls are answered by a lean HTTP/1.1 path ([`crate::http1`]) until a
//! connection carries anything else; hyper serves the rest.
//!
//! Any `Authorization` (SigV4 or bearer) is accepted on the Bedrock and DynamoDB APIs; the
//! chat WebSocket checks it when `--auth` asks ([`crate::door`]). Request bodies are bounded
//! (`Config::max_body`), and every malformed request gets the answer the real service
//! would give while the server keeps serving.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::App;
use crate::dynamodb::{DynamoError, Operation};
use crate::metrics::Api;

/// Every response body: a whole buffer or a stream of chunks.
pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A random request id in the shape AWS uses.
pub fn request_id() -> String {
    let mut id = [0u8; 36];
    write_request_id(&mut id);
    String::from_utf8(id.to_vec()).expect("hex digits and dashes")
}

/// A random request id (`8-4-4-4-12` lowercase hex digits) into `id`, without allocating.
pub fn write_request_id(id: &mut [u8; 36]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let r: u128 = rand::random();
    let mut digit = 0;
    for (i, b) in id.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            *b = b'-';
        } else {
            *b = HEX[(r >> (124 - 4 * digit)) as usize & 0xf];
            digit += 1;
        }
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(text.to_string()))
        .expect("valid response")
}

/// Accepts connections until the listener fails; each connection is served on its own
/// task, by [`crate::http1`]'s lean path while it carries plain DynamoDB calls, else hyper.
pub async fn serve(listener: TcpListener, app: Arc<App>) -> std::io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            // Out of file descriptors or a reset before accept: keep serving the others.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(crate::http1::serve(stream, app.clone()));
    }
}

/// Serves a connection with hyper until it ends (every route; upgrades included).
pub async fn serve_hyper<I>(io: I, app: Arc<App>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(route(app, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // A client that shuts down its sending side once its request is sent still gets
        // the answer (hyper's default would drop the request at that end of stream).
        .half_close(true)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

async fn route(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metrics") => {
            let sys = &app.config.system;
            app.metrics
                .set_prewarmed(sys.cache.enabled && (sys.cache.prewarm || app.prewarm.active()));
            Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(full(app.metrics.render()))
                .expect("valid response")
        }
        (&Method::POST, "/admin/prewarm") => crate::prewarm::handle(&app, req).await,
        (&Method::GET, "/chat") => crate::chat::upgrade(app, req),
        (&Method::POST, "/") if req.headers().contains_key("x-amz-target") => {
            dynamodb(app, req).await
        }
        (&Method::POST, p) if p.starts_with("/model/") => {
            let rest = p["/model/".len()..].to_string();
            crate::bedrock::api::handle(app, &rest, req).await
        }
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Reads a body of at most `max` bytes; `None` when it is larger or broken.
pub async fn read_body(req: Request<Incoming>, max: usize) -> Option<Bytes> {
    Limited::new(req.into_body(), max)
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes())
}

/// The first step of a DynamoDB request, on either HTTP path: its operation, counted.
pub(crate) fn dynamodb_begin(app: &App, target: &str) -> Result<Operation, DynamoError> {
    let op = Operation::from_target(target);
    app.metrics.dynamodb_request(op.as_ref().ok().copied());
    op
}

/// The last step: runs the operation on `body` (`None`: larger than `Config::max_body` or
/// broken), counts the outcome and writes the JSON answer into `out`. Returns the status.
pub(crate) fn dynamodb_finish(
    app: &App,
    op: Result<Operation, DynamoError>,
    body: Option<&[u8]>,
    started: Instant,
    out: &mut Vec<u8>,
) -> u16 {
    let result = match (op, body) {
        (Err(e), _) => Err(e),
        (Ok(_), None) => Err(DynamoError::Validation(format!(
            "Request size exceeded {} bytes",
            app.config.max_body
        ))),
        (Ok(_), Some(_)) if app.faults.inject_error(Api::Dynamodb, &app.metrics) => Err(
            DynamoError::Internal("Internal server error (injected fault)".into()),
        ),
        (Ok(op), Some(body)) => app.dynamo.call(op, body, out),
    };
    let status = match result {
        Ok(()) => 200,
        Err(e) => {
            if e == DynamoError::ProvisionedThroughputExceeded {
                app.metrics.throttle(Api::Dynamodb);
            } else {
                app.metrics.error(Api::Dynamodb);
            }
            out.extend_from_slice(e.body().as_bytes());
            e.status()
        }
    };
    app.metrics
        .observe(Api::Dynamodb, started.elapsed().as_secs_f64());
    status
}

async fn dynamodb(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let op = dynamodb_begin(&app, &target);
    app.faults.before_request(Api::Dynamodb, &app.metrics).await;
    let body = read_body(req, app.config.max_body).await;
    let mut out = Vec::new();
    let status = dynamodb_finish(&app, op, body.as_deref(), started, &mut out);
    let crc = crc32fast::hash(&out);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
        .header("x-amzn-RequestId", request_id())
        .header("x-amz-crc32", crc.to_string())
        .body(full(out))
        .expect("valid response")
}
