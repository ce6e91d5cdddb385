//! `shard-for STREAM KEY…`: where Kinesis puts a key.

use async_kinesis::stream::shard_map::{ShardMap, hash_key_for_partition_key, parse_hash_key};
use serde::Serialize;

use crate::cli::{Global, ShardForArgs};
use crate::error::CliError;
use crate::output;

#[derive(Debug, Serialize)]
struct Routed {
    key: Option<String>,
    md5: Option<String>,
    hash_key: String,
    shard_id: Option<String>,
}

/// The key's MD5 digest in hex: the hash key (a big-endian 128-bit number) written in hex.
fn md5_hex(hash_key: u128) -> String {
    format!("{hash_key:032x}")
}

pub(crate) async fn run(global: &Global, args: ShardForArgs) -> Result<(), CliError> {
    let client = global.stream_client(&args.stream).await?;
    let shards = client.list_shards().await?;
    let map = ShardMap::from_open_shards(&shards).map_err(|e| {
        CliError::Failed(format!("the open shards of {} overlap: {e}", args.stream))
    })?;
    let mut rows = Vec::new();
    match &args.explicit_hash_key {
        Some(text) => {
            // Checked by the argument parser already.
            let hash_key = parse_hash_key(text).map_err(|e| CliError::Usage(e.to_string()))?;
            let shard = map
                .shard_for_hash_key(hash_key)
                .map(|s| s.shard_id().to_owned());
            for key in args
                .keys
                .iter()
                .map(Some)
                .chain(args.keys.is_empty().then_some(None))
            {
                rows.push(Routed {
                    key: key.cloned(),
                    md5: None,
                    hash_key: hash_key.to_string(),
                    shard_id: shard.clone(),
                });
            }
        }
        None => {
            for key in &args.keys {
                let hash_key = hash_key_for_partition_key(key);
                rows.push(Routed {
                    key: Some(key.clone()),
                    md5: Some(md5_hex(hash_key)),
                    hash_key: hash_key.to_string(),
                    shard_id: map
                        .shard_for_hash_key(hash_key)
                        .map(|s| s.shard_id().to_owned()),
                });
            }
        }
    }
    output::print(global.output, &rows, |rows| {
        let mut table = output::table(["key", "md5", "hash key", "shard"]);
        for row in rows {
            table.add_row([
                row.key.clone().unwrap_or_default(),
                output::or_dash(row.md5.as_deref()),
                row.hash_key.clone(),
                // A key in a gap between shards (only while resharding) has none.
                output::or_dash(row.shard_id.as_deref()),
            ]);
        }
        table.to_string()
    })
}
