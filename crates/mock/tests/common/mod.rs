//! What every integration test needs: a system model, a server on 127.0.0.1:0, SDK
//! configuration pointing at it.
#![allow(dead_code)]

use std::net::SocketAddr;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use surge_mock::{Config, Server};
use surge_profile::{Profile, SystemModel};

/// The system model of the shipped `local` profile.
pub fn system() -> SystemModel {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/local.toml");
    Profile::load(path)
        .expect("profiles/local.toml loads")
        .system
}

pub async fn start(system: SystemModel) -> Server {
    start_with(Config::new(system)).await
}

pub async fn start_with(config: Config) -> Server {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Server::start(addr, config).await.expect("binds loopback")
}

/// SDK configuration for the server at `addr`: static test credentials, us-east-1, one
/// attempt (so a throttle surfaces instead of being retried).
pub async fn sdk_config(addr: SocketAddr) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .endpoint_url(format!("http://{addr}"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

pub async fn dynamodb(addr: SocketAddr) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(addr).await)
}

pub async fn bedrock(addr: SocketAddr) -> aws_sdk_bedrockruntime::Client {
    aws_sdk_bedrockruntime::Client::new(&sdk_config(addr).await)
}
