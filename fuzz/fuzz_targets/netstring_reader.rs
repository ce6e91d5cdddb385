//! Netstring reader (MsgpackProcessor and raw bytes) on arbitrary bytes.
#![no_main]

use async_kinesis::processor::{
    BytesSerializer, Composed, MsgpackProcessor, NetstringAggregator, Processor,
};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let data = Bytes::copy_from_slice(input);
    let msgpack: MsgpackProcessor = MsgpackProcessor::default();
    for item in msgpack.read(&data, "k") {
        let _ = item;
    }
    let raw = Composed::from_parts(BytesSerializer, NetstringAggregator);
    let mut consumed = 0;
    for item in raw.read(&data, "k") {
        if let Ok(item) = item {
            consumed += item.item.len();
        }
    }
    assert!(consumed <= data.len());
});
