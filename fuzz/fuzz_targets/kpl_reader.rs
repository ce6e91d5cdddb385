//! KPL reader on arbitrary bytes. Half the inputs get a valid magic and digest so the protobuf
//! decoder and the key tables are exercised, not only the digest check.
#![no_main]

use async_kinesis::processor::{KPL_MAGIC, KplJsonProcessor, KplStringProcessor, Processor};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};

fuzz_target!(|input: &[u8]| {
    let Some((&mode, body)) = input.split_first() else {
        return;
    };
    let data = if mode % 2 == 0 {
        let mut framed = KPL_MAGIC.to_vec();
        framed.extend_from_slice(body);
        framed.extend_from_slice(&Md5::digest(body));
        Bytes::from(framed)
    } else {
        Bytes::copy_from_slice(body)
    };
    for item in KplStringProcessor::default().read(&data, "k") {
        let _ = item;
    }
    let json: KplJsonProcessor = KplJsonProcessor::default();
    for item in json.read(&data, "k") {
        let _ = item;
    }
});
