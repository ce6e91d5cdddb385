//! Newline reader (JsonLineProcessor) on arbitrary bytes.
#![no_main]

use async_kinesis::processor::{JsonLineProcessor, Processor};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let data = Bytes::copy_from_slice(input);
    let p: JsonLineProcessor = JsonLineProcessor::default();
    let mut last = None;
    for item in p.read(&data, "k") {
        let sub_sequence = match item {
            Ok(d) => d.sub_sequence,
            Err(async_kinesis::processor::ReadError::Item { sub_sequence, .. }) => sub_sequence,
            Err(e) => panic!("newline framing cannot fail: {e}"),
        };
        assert!(last.is_none_or(|l| sub_sequence == l + 1));
        last = Some(sub_sequence);
    }
});
