//! Stalls and latency spikes delay requests by what the flags say (lower bounds only: a
//! busy machine may add time, never take it away).

mod common;

use std::time::{Duration, Instant};

use surge_mock::Config;

async fn list_tables_took(addr: std::net::SocketAddr) -> Duration {
    let started = Instant::now();
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/"))
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    started.elapsed()
}

#[tokio::test]
async fn a_stall_holds_requests_until_its_window_ends() {
    let mut config = Config::new(common::system());
    config.faults.stall = Some("2s@every=3s".parse().unwrap());
    let t0 = Instant::now(); // the stall clock started when the config was made, just before
    let server = common::start_with(config).await;
    assert!(
        list_tables_took(server.addr).await < Duration::from_secs(2),
        "no stall in the first period"
    );
    tokio::time::sleep_until((t0 + Duration::from_millis(3200)).into()).await;
    let waited = list_tables_took(server.addr).await;
    assert!(
        waited >= Duration::from_millis(1000),
        "in the 3–5 s window: waited {waited:?}"
    );
}

#[tokio::test]
async fn a_latency_spike_adds_its_time() {
    let mut config = Config::new(common::system());
    config.faults.latency = vec!["dynamodb=300ms@1".parse().unwrap()];
    let server = common::start_with(config).await;
    let took = list_tables_took(server.addr).await;
    assert!(took >= Duration::from_millis(300), "{took:?}");
}
