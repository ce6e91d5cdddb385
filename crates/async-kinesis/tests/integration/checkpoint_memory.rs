//! The store contract, run against `MemoryStore`: clients of one application share one map, as
//! processes share a server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_kinesis::checkpoint::{BoxFuture, CheckpointStore, MemoryStore};
use testkit::store_contract::CONTRACT_TIMING;

fn open(app: &str) -> BoxFuture<'static, Arc<dyn CheckpointStore>> {
    static APPS: OnceLock<Mutex<HashMap<String, MemoryStore>>> = OnceLock::new();
    let store = APPS
        .get_or_init(Mutex::default)
        .lock()
        .expect("apps")
        .entry(app.to_owned())
        .or_insert_with(|| MemoryStore::with_timing(CONTRACT_TIMING))
        .clone();
    Box::pin(async move { Arc::new(store) as Arc<dyn CheckpointStore> })
}

testkit::store_contract_tests!(open);
