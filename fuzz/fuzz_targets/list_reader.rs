//! JSON-list readers (whole list and item by item) on arbitrary bytes.
#![no_main]

use async_kinesis::processor::{
    Composed, JsonListProcessor, JsonSerializer, ListItemsAggregator, Processor,
};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let data = Bytes::copy_from_slice(input);
    let whole: JsonListProcessor = JsonListProcessor::default();
    let whole: Vec<_> = whole.read(&data, "k").collect();
    assert_eq!(whole.len(), 1);
    let each = Composed::from_parts(JsonSerializer::<serde_json::Value>::new(), ListItemsAggregator);
    let each: Vec<_> = each.read(&data, "k").collect();
    // Both readers agree on whether the record is a valid list of values.
    if let Ok(list) = &whole[0] {
        assert_eq!(list.item.len(), each.len());
        assert!(each.iter().all(Result::is_ok));
    }
});
