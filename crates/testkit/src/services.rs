//! Where the local services are, and the fail-don't-skip policy when one is missing.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use async_kinesis::StreamClient;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

/// One of the local services of `scripts/local-stack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// kinesis-mock: the functional Kinesis emulator (ARNs, pagination, resharding, fan-out).
    KinesisMock,
    /// kinesalite: the faster Kinesis emulator, for throughput.
    Kinesalite,
    /// moto server, for DynamoDB.
    DynamoDb,
    /// moto server, for CloudWatch (the same server as DynamoDB by default).
    CloudWatch,
    /// redis-server.
    Redis,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::KinesisMock => "kinesis-mock",
            Self::Kinesalite => "kinesalite",
            Self::DynamoDb => "moto (DynamoDB)",
            Self::CloudWatch => "moto (CloudWatch)",
            Self::Redis => "redis",
        }
    }
}

/// Endpoints of the local services, from the environment (`scripts/local-stack env`).
#[derive(Debug, Clone)]
pub struct Services {
    /// kinesis-mock endpoint URL (`ASYNC_KINESIS_KINESIS_MOCK_ENDPOINT`).
    pub kinesis_mock: String,
    /// kinesalite endpoint URL (`ASYNC_KINESIS_KINESALITE_ENDPOINT`).
    pub kinesalite: String,
    /// moto server endpoint URL (`ASYNC_KINESIS_DYNAMODB_ENDPOINT`).
    pub dynamodb: String,
    /// moto server endpoint URL for CloudWatch (`ASYNC_KINESIS_CLOUDWATCH_ENDPOINT`).
    pub cloudwatch: String,
    /// Redis URL (`ASYNC_KINESIS_REDIS_URL`).
    pub redis_url: String,
    /// Python interpreter with the reference packages installed (`ASYNC_KINESIS_PY_INTEROP`).
    pub python: PathBuf,
}

impl Services {
    /// Reads the endpoints from the environment, defaulting to `scripts/local-stack`'s ports.
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let default_python = repo_root().join(".local-stack/py-interop/bin/python");
        Self {
            kinesis_mock: var(
                "ASYNC_KINESIS_KINESIS_MOCK_ENDPOINT",
                "http://127.0.0.1:4568",
            ),
            kinesalite: var("ASYNC_KINESIS_KINESALITE_ENDPOINT", "http://127.0.0.1:4569"),
            dynamodb: var("ASYNC_KINESIS_DYNAMODB_ENDPOINT", "http://127.0.0.1:4570"),
            cloudwatch: var("ASYNC_KINESIS_CLOUDWATCH_ENDPOINT", "http://127.0.0.1:4570"),
            redis_url: var("ASYNC_KINESIS_REDIS_URL", "redis://127.0.0.1:4571"),
            python: std::env::var_os("ASYNC_KINESIS_PY_INTEROP")
                .map_or(default_python, PathBuf::from),
        }
    }

    /// The endpoint of `service`.
    pub fn endpoint(&self, service: Service) -> &str {
        match service {
            Service::KinesisMock => &self.kinesis_mock,
            Service::Kinesalite => &self.kinesalite,
            Service::DynamoDb => &self.dynamodb,
            Service::CloudWatch => &self.cloudwatch,
            Service::Redis => &self.redis_url,
        }
    }

    /// Fails the calling test, saying how to start the service, unless `service` answers.
    ///
    /// # Panics
    /// When the service cannot be reached: tests never skip silently.
    pub fn require(&self, service: Service) {
        let endpoint = self.endpoint(service);
        let reachable = socket_addr(endpoint)
            .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
        assert!(
            reachable,
            "{} is not reachable at {endpoint}. Start the local services with `scripts/local-stack up` \
             (the README's test command does this), or point ASYNC_KINESIS_* variables at running ones.",
            service.name()
        );
    }

    /// AWS configuration for a local service: static test credentials, us-east-1, its endpoint.
    pub fn sdk_config(&self, service: Service) -> SdkConfig {
        self.require(service);
        sdk_config_for(self.endpoint(service))
    }

    /// kinesis-mock (fails the test if it is down).
    pub fn kinesis_mock(&self) -> KinesisEndpoint {
        KinesisEndpoint {
            config: self.sdk_config(Service::KinesisMock),
        }
    }

    /// kinesalite (fails the test if it is down).
    pub fn kinesalite(&self) -> KinesisEndpoint {
        KinesisEndpoint {
            config: self.sdk_config(Service::Kinesalite),
        }
    }
}

/// A reachable Kinesis emulator.
#[derive(Debug, Clone)]
pub struct KinesisEndpoint {
    config: SdkConfig,
}

impl KinesisEndpoint {
    /// The AWS configuration pointing at this emulator.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    /// A client for `stream` (a name or ARN).
    ///
    /// # Panics
    /// When `stream` is not a valid name or ARN.
    pub fn client(&self, stream: &str) -> StreamClient {
        StreamClient::from_sdk_config(&self.config, stream).expect("valid stream name or ARN")
    }
}

/// AWS configuration with static test credentials for an endpoint.
pub fn sdk_config_for(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "testkit",
        )))
        .build()
}

fn socket_addr(endpoint: &str) -> Option<SocketAddr> {
    let host_port = endpoint.split("://").nth(1)?.split('/').next()?;
    host_port.to_socket_addrs().ok()?.next()
}

/// The repository's root directory (two levels above this crate).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_to_socket_addresses() {
        assert_eq!(
            socket_addr("http://127.0.0.1:4568"),
            Some(SocketAddr::from(([127, 0, 0, 1], 4568)))
        );
        assert_eq!(
            socket_addr("redis://127.0.0.1:6379/0"),
            Some(SocketAddr::from(([127, 0, 0, 1], 6379)))
        );
        assert_eq!(socket_addr("not a url"), None);
    }

    #[test]
    #[should_panic(expected = "scripts/local-stack up")]
    fn a_missing_service_fails_with_instructions() {
        let mut services = Services::from_env();
        services.redis_url = "redis://127.0.0.1:1".into();
        services.require(Service::Redis);
    }
}
