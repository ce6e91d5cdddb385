//! Which shared store a group uses, as command-line arguments and as an opened store.

use std::sync::Arc;

use async_kinesis::checkpoint::{CheckpointStore, DynamoDbStore, LeaseTiming, RedisStore};

use crate::sdk_config_for;

/// A shared checkpoint store, as a worker process opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// Redis at a URL.
    Redis {
        /// `redis://…`
        url: String,
    },
    /// A Redis Cluster, found through one seed node.
    RedisCluster {
        /// `redis://…` of any node.
        seed: String,
    },
    /// DynamoDB (moto) at an endpoint, in a table (created when missing).
    DynamoDb {
        /// `http://…`
        endpoint: String,
        /// The table.
        table: String,
    },
}

impl StoreSpec {
    /// The worker's command-line arguments for this store.
    pub fn to_args(&self) -> Vec<String> {
        match self {
            Self::Redis { url } => vec![
                "--store".into(),
                "redis".into(),
                "--store-url".into(),
                url.clone(),
            ],
            Self::RedisCluster { seed } => vec![
                "--store".into(),
                "redis-cluster".into(),
                "--store-url".into(),
                seed.clone(),
            ],
            Self::DynamoDb { endpoint, table } => vec![
                "--store".into(),
                "dynamodb".into(),
                "--store-url".into(),
                endpoint.clone(),
                "--table".into(),
                table.clone(),
            ],
        }
    }

    /// Reads the arguments [`StoreSpec::to_args`] wrote.
    ///
    /// # Errors
    /// A message naming the missing or unknown argument.
    pub fn from_args(
        kind: &str,
        url: Option<String>,
        table: Option<String>,
    ) -> Result<Self, String> {
        let url = url.ok_or("--store-url is required")?;
        match kind {
            "redis" => Ok(Self::Redis { url }),
            "redis-cluster" => Ok(Self::RedisCluster { seed: url }),
            "dynamodb" => Ok(Self::DynamoDb {
                endpoint: url,
                table: table.ok_or("--table is required for dynamodb")?,
            }),
            other => Err(format!(
                "unknown store {other:?} (redis | redis-cluster | dynamodb)"
            )),
        }
    }

    /// Opens the store for the application `app`.
    ///
    /// # Errors
    /// The store's error, displayed.
    pub async fn open(
        &self,
        app: &str,
        timing: LeaseTiming,
    ) -> Result<Arc<dyn CheckpointStore>, String> {
        match self {
            Self::Redis { url } | Self::RedisCluster { seed: url } => RedisStore::builder(app)
                .url(url.clone())
                .is_cluster(matches!(self, Self::RedisCluster { .. }))
                .timing(timing)
                .connect()
                .await
                .map(|store| Arc::new(store) as Arc<dyn CheckpointStore>),
            Self::DynamoDb { endpoint, table } => DynamoDbStore::builder(app)
                .table_name(table.clone())
                .timing(timing)
                .create_table(true)
                .sdk_config(&sdk_config_for(endpoint))
                .build()
                .await
                .map(|store| Arc::new(store) as Arc<dyn CheckpointStore>),
        }
        .map_err(|err| super::error_chain(&err))
    }
}
