//! `POST /admin/prewarm`: the seed's `pre_warm_for_release(asin, release_datetime)`.
//!
//! Q19 Layer 6 fills the product cache an hour before a major release (product details and
//! the product FAQ for 2 h, similar items for 1 h), and expects the hit rate during the
//! spike to rise to ~85 %. The mock's product/FAQ cache is a hit ratio drawn per message,
//! so pre-warming switches that ratio from `cache.hit_ratio` to
//! `cache.prewarmed_hit_ratio` until the longest TTL runs out. A rehearsal against the
//! mock then shows the effect in its latency and in `surge_mock_cache_lookups_total`.
//!
//! Request: `{"asin": "B0DFGT5L9Q", "ttl": "2h", "release": "…"}` (`ttl` as a duration or
//! in seconds, default 2 h; `release` is only echoed). Answer: the keys written, the TTL
//! and the hit ratio now in effect. With `--workers N` each worker process has its own
//! cache and one call reaches one of them; set `cache.prewarm = true` in the profile to
//! serve every worker pre-warmed.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};
use surge_profile::SystemModel;

use crate::App;
use crate::server::{Body, full, read_body};

/// The seed's longest TTL: `product:{asin}` and `faq:product:{asin}` for 7,200 s.
const DEFAULT_TTL: Duration = Duration::from_secs(7200);

/// Largest pre-warm request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// Whether the product/FAQ cache is pre-warmed, and until when.
#[derive(Debug, Default)]
pub struct CacheWarmth {
    state: Mutex<Warm>,
}

#[derive(Debug, Default)]
struct Warm {
    until: Option<Instant>,
    asins: BTreeSet<String>,
}

impl CacheWarmth {
    /// Marks the cache pre-warmed for `asin` until `ttl` from now (a longer earlier TTL stays).
    pub fn warm(&self, asin: &str, ttl: Duration) {
        let mut s = self.state.lock().expect("warmth lock");
        let until = Instant::now() + ttl;
        s.until = Some(s.until.map_or(until, |u| u.max(until)));
        s.asins.insert(asin.to_string());
    }

    /// Whether a pre-warm is in effect now.
    pub fn active(&self) -> bool {
        let s = self.state.lock().expect("warmth lock");
        s.until.is_some_and(|u| Instant::now() < u)
    }

    /// Products pre-warmed so far.
    pub fn asins(&self) -> Vec<String> {
        let s = self.state.lock().expect("warmth lock");
        s.asins.iter().cloned().collect()
    }

    /// The product cache's hit ratio now: pre-warmed (by the system model or a call) or not.
    pub fn hit_ratio(&self, sys: &SystemModel) -> f64 {
        if self.active() {
            sys.cache.prewarmed_hit_ratio.fraction()
        } else {
            surge_model::turn::cache_hit_ratio(sys)
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body.to_string()))
        .expect("valid response")
}

fn bad(msg: impl Into<String>) -> Response<Body> {
    answer(StatusCode::BAD_REQUEST, json!({ "error": msg.into() }))
}

/// `ttl` as a duration string (`"2h"`) or a number of seconds.
fn ttl_of(v: Option<&Value>) -> Result<Duration, String> {
    match v {
        None | Some(Value::Null) => Ok(DEFAULT_TTL),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("ttl: expected a positive number of seconds, found {n}")),
        Some(Value::String(s)) => s
            .parse::<surge_profile::Duration>()
            .map_err(|e| format!("ttl: {e}"))
            .and_then(|d| {
                (d.as_nanos() > 0)
                    .then(|| d.to_std())
                    .ok_or_else(|| "ttl: must be longer than zero".to_string())
            }),
        Some(other) => Err(format!(
            "ttl: expected a duration such as \"2h\" or seconds, found {other}"
        )),
    }
}

/// Handles `POST /admin/prewarm`.
pub async fn handle(app: &App, req: Request<Incoming>) -> Response<Body> {
    app.metrics.prewarm_request();
    let Some(bytes) = read_body(req, MAX_BODY).await else {
        return bad(format!("the body is larger than {MAX_BODY} bytes"));
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return bad(format!("expected a JSON object: {e}")),
    };
    let Some(asin) = body
        .get("asin")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty() && a.len() <= 64 && a.chars().all(|c| c.is_ascii_alphanumeric()))
    else {
        return bad("asin: expected a product id of letters and digits, such as \"B0DFGT5L9Q\"");
    };
    let ttl = match ttl_of(body.get("ttl")) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    let sys = &app.config.system;
    if !sys.cache.enabled {
        return answer(
            StatusCode::CONFLICT,
            json!({ "error": "the system model has no product cache (cache.enabled = false)" }),
        );
    }
    app.prewarm.warm(asin, ttl);
    app.metrics.set_prewarmed(true);
    answer(
        StatusCode::OK,
        json!({
            "asin": asin,
            "release": body.get("release").cloned().unwrap_or(Value::Null),
            "keys": [
                { "key": format!("product:{asin}"), "ttl_seconds": ttl.as_secs_f64() },
                { "key": format!("similar:{asin}"), "ttl_seconds": (ttl / 2).as_secs_f64() },
                { "key": format!("faq:product:{asin}"), "ttl_seconds": ttl.as_secs_f64() },
            ],
            "hit_ratio": app.prewarm.hit_ratio(sys),
            "prewarmed": app.prewarm.asins(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_a_duration_or_seconds() {
        assert_eq!(ttl_of(None).unwrap(), DEFAULT_TTL);
        assert_eq!(
            ttl_of(Some(&json!("90s"))).unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            ttl_of(Some(&json!(3600))).unwrap(),
            Duration::from_secs(3600)
        );
        assert!(ttl_of(Some(&json!(0))).is_err());
        assert!(ttl_of(Some(&json!("soon"))).is_err());
        assert!(ttl_of(Some(&json!(true))).is_err());
    }

    #[test]
    fn warmth_expires_and_keeps_the_longest_ttl() {
        let w = CacheWarmth::default();
        assert!(!w.active());
        w.warm("A1", Duration::from_secs(60));
        w.warm("B2", Duration::from_millis(1));
        assert!(w.active());
        assert_eq!(w.asins(), ["A1", "B2"]);
        let short = CacheWarmth::default();
        short.warm("A1", Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!short.active());
    }
}
