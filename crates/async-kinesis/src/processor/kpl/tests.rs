use super::*;
use crate::processor::RecordWriter;
use crate::processor::error::{ReadError, RejectReason};
use crate::processor::record::Frame;
use md5::{Digest, Md5};
use prost::Message;
use proto::{AggregatedRecordPb, RecordPb};

fn frames(data: &Bytes) -> Vec<Result<Frame, ReadError>> {
    KplAggregator::new().frames(data, "outer").collect()
}

fn wrap(body: &[u8]) -> Bytes {
    let mut data = KPL_MAGIC.to_vec();
    data.extend_from_slice(body);
    data.extend_from_slice(&Md5::digest(body));
    Bytes::from(data)
}

#[test]
fn round_trip_keeps_keys_and_order() {
    let mut w = KplAggregator::new().writer::<u8>(1024);
    let items: [(&[u8], &str, Option<&str>); 4] = [
        (b"one", "k1", None),
        (b"", "k2", Some("42")),
        (b"three", "k1", Some("42")),
        (b"four", "k3", Some("7")),
    ];
    for (i, (data, key, ehk)) in (0u8..).zip(items) {
        assert!(
            w.push(i, Bytes::from_static(data), key, ehk)
                .expect("fits")
                .is_none()
        );
    }
    let size = w.buffered_bytes();
    let record = w.flush().pop().expect("one record");
    assert_eq!(record.size(), size);
    assert_eq!(record.partition_key, "k1");
    assert_eq!(record.explicit_hash_key, None);
    assert_eq!(record.tags, vec![0, 1, 2, 3]);
    assert!(record.data.starts_with(&KPL_MAGIC));
    let read: Vec<_> = frames(&record.data)
        .into_iter()
        .map(|f| f.expect("valid"))
        .collect();
    assert_eq!(read.len(), 4);
    for ((i, frame), (data, key, ehk)) in (0u64..).zip(&read).zip(items) {
        assert_eq!(frame.sub_sequence, i);
        assert_eq!(&frame.data[..], data);
        assert_eq!(&*frame.partition_key, key);
        assert_eq!(frame.explicit_hash_key.as_deref(), ehk);
    }
    // Same bytes as prost encodes for the same message.
    let message = AggregatedRecordPb {
        partition_key_table: vec!["k1".into(), "k2".into(), "k3".into()],
        explicit_hash_key_table: vec!["42".into(), "7".into()],
        records: read
            .iter()
            .zip([(0, None), (1, Some(0)), (0, Some(0)), (2, Some(1))])
            .map(|(f, (pk, ehk))| RecordPb {
                partition_key_index: pk,
                explicit_hash_key_index: ehk,
                data: f.data.clone(),
                tags: vec![],
            })
            .collect(),
    };
    assert_eq!(record.data, wrap(&message.encode_to_vec()));
}

#[test]
fn python_compatible_writes_inner_key_a() {
    let mut w = KplAggregator::python_compatible().writer::<u8>(1024);
    for (i, key) in (0u8..).zip(["x", "y"]) {
        assert!(
            w.push(i, Bytes::from_static(b"d"), key, None)
                .expect("fits")
                .is_none()
        );
    }
    let record = w.flush().pop().expect("record");
    assert_eq!(record.partition_key, "x");
    let keys: Vec<_> = frames(&record.data)
        .into_iter()
        .map(|f| f.expect("valid").partition_key.to_string())
        .collect();
    assert_eq!(keys, ["a", "a"]);
}

#[test]
fn emits_when_full_and_never_exceeds_the_limit() {
    let max = 200;
    let mut w = KplAggregator::new().writer::<usize>(max);
    let mut records = Vec::new();
    for i in 0..100 {
        let key = format!("key-{}", i % 7);
        if let Some(r) = w
            .push(i, Bytes::from(vec![b'x'; i % 40]), &key, None)
            .expect("fits")
        {
            records.push(r);
        }
        assert!(w.buffered_bytes() <= max);
    }
    records.extend(w.flush());
    let mut tags = Vec::new();
    for r in &records {
        assert!(r.size() <= max, "{} > {max}", r.size());
        let read = frames(&r.data);
        assert!(read.iter().all(Result::is_ok));
        let n = read.len();
        assert_eq!(n, r.tags.len());
        tags.extend(r.tags.iter().copied());
    }
    assert_eq!(tags, (0..100).collect::<Vec<_>>());
}

#[test]
fn exact_fit_is_accepted_one_more_byte_is_not() {
    // Alone: 4 + 16 magic/digest, key table 1+1+1, record 1+1+(2+2+data), outer key 1.
    let fixed = 4 + 16 + 3 + 2 + 2 + 2 + 1;
    let mut w = KplAggregator::new().writer::<u8>(fixed + 10);
    let ok = w
        .push(1, Bytes::from(vec![0; 10]), "k", None)
        .expect("exact fit");
    assert!(ok.is_none());
    assert_eq!(w.buffered_bytes(), fixed + 10);
    let mut w = KplAggregator::new().writer::<u8>(fixed + 9);
    let err = w
        .push(2, Bytes::from(vec![0; 10]), "k", None)
        .expect_err("too large");
    assert_eq!(err.tag, 2);
    assert_eq!(
        err.reason,
        RejectReason::TooLarge {
            size: fixed + 10,
            max: fixed + 9
        }
    );
    assert_eq!(w.buffered_items(), 0);
}

#[test]
fn plain_records_pass_through() {
    let data = Bytes::from_static(b"plain");
    let read = frames(&data);
    assert_eq!(read.len(), 1);
    let frame = read[0].as_ref().expect("plain");
    assert_eq!((frame.sub_sequence, &*frame.partition_key), (0, "outer"));
    assert_eq!(frame.data, data);
}

#[test]
fn corrupt_aggregates_are_typed_errors() {
    let short = Bytes::from(KPL_MAGIC.to_vec());
    assert!(matches!(
        frames(&short)[..],
        [Err(ReadError::KplTooShort { len: 4 })]
    ));

    let mut w = KplAggregator::new().writer::<u8>(1024);
    assert!(
        w.push(0, Bytes::from_static(b"abc"), "k", None)
            .expect("fits")
            .is_none()
    );
    let good = w.flush().pop().expect("record").data;
    let mut flipped = good.to_vec();
    flipped[8] ^= 1;
    assert!(matches!(
        frames(&Bytes::from(flipped))[..],
        [Err(ReadError::KplDigestMismatch)]
    ));

    // A truncated message with a valid digest.
    let body = &good[4..good.len() - 16];
    let truncated = wrap(&body[..body.len() - 1]);
    assert!(matches!(
        frames(&truncated)[..],
        [Err(ReadError::KplProtobuf(_))]
    ));
}

#[test]
fn malformed_user_record_fails_only_itself() {
    let good = RecordPb {
        partition_key_index: 0,
        explicit_hash_key_index: None,
        data: Bytes::from_static(b"ok"),
        tags: vec![],
    }
    .encode_to_vec();
    let mut body = Vec::new();
    // Key table ["k"], then: good record, a record whose data field claims 9 bytes but has 1,
    // and another good record.
    body.extend_from_slice(&[0x0A, 1, b'k']);
    for record in [&good[..], &[0x08, 0, 0x1A, 9, b'x'][..], &good[..]] {
        body.push(0x1A);
        body.push(u8::try_from(record.len()).expect("short"));
        body.extend_from_slice(record);
    }
    let read = frames(&wrap(&body));
    assert_eq!(read.len(), 3);
    assert!(matches!(&read[0], Ok(f) if &f.data[..] == b"ok"));
    assert!(matches!(
        read[1],
        Err(ReadError::KplUserRecord {
            sub_sequence: 1,
            ..
        })
    ));
    assert!(matches!(&read[2], Ok(f) if f.sub_sequence == 2 && &f.data[..] == b"ok"));
}

#[test]
fn bad_index_fails_only_that_user_record() {
    let message = AggregatedRecordPb {
        partition_key_table: vec!["k".into()],
        explicit_hash_key_table: vec![],
        records: vec![
            RecordPb {
                partition_key_index: 0,
                explicit_hash_key_index: None,
                data: Bytes::from_static(b"a"),
                tags: vec![],
            },
            RecordPb {
                partition_key_index: 5,
                explicit_hash_key_index: None,
                data: Bytes::from_static(b"b"),
                tags: vec![],
            },
            RecordPb {
                partition_key_index: 0,
                explicit_hash_key_index: Some(1),
                data: Bytes::from_static(b"c"),
                tags: vec![],
            },
            RecordPb {
                partition_key_index: 0,
                explicit_hash_key_index: None,
                data: Bytes::from_static(b"d"),
                tags: vec![],
            },
        ],
    };
    let read = frames(&wrap(&message.encode_to_vec()));
    assert_eq!(read.len(), 4);
    assert!(matches!(&read[0], Ok(f) if &f.data[..] == b"a"));
    assert!(matches!(
        read[1],
        Err(ReadError::KplPartitionKeyIndex {
            sub_sequence: 1,
            index: 5,
            table_len: 1
        })
    ));
    assert!(matches!(
        read[2],
        Err(ReadError::KplExplicitHashKeyIndex {
            sub_sequence: 2,
            index: 1,
            table_len: 0
        })
    ));
    assert!(matches!(&read[3], Ok(f) if f.sub_sequence == 3 && &f.data[..] == b"d"));
}

#[test]
fn bad_item_inside_valid_aggregate_yields_an_error_for_that_item_only() {
    use crate::processor::error::DecodeError;
    use crate::processor::{KplStringProcessor, Processor};
    let p = KplStringProcessor::default();
    let mut w = p.writer::<u8>();
    for (i, data) in [&b"good"[..], b"\xff\xfe", b"also good"]
        .into_iter()
        .enumerate()
    {
        let tag = u8::try_from(i).expect("small");
        assert!(
            w.push(tag, Bytes::copy_from_slice(data), "k", None)
                .expect("fits")
                .is_none()
        );
    }
    let record = w.flush().pop().expect("record");
    let read: Vec<_> = p.read(&record.data, &record.partition_key).collect();
    assert_eq!(read.len(), 3);
    assert_eq!(read[0].as_ref().expect("ok").item, "good");
    assert!(matches!(
        read[1],
        Err(ReadError::Item {
            sub_sequence: 1,
            source: DecodeError::Utf8(_)
        })
    ));
    let last = read[2].as_ref().expect("ok");
    assert_eq!((last.sub_sequence, last.item.as_str()), (2, "also good"));
}

#[test]
fn aggregates_are_sealed_at_the_shape_size_and_a_larger_item_still_goes_alone() {
    use crate::processor::WriterShape;
    let mut w =
        KplAggregator::new().shaped_writer::<u32>(100_000, WriterShape::aggregates_of(4_096));
    let mut records = Vec::new();
    for tag in 0..40 {
        records.extend(
            w.push(tag, Bytes::from(vec![b'x'; 500]), "k", None)
                .expect("fits"),
        );
    }
    // An item larger than an aggregate, within the record limit, gets a record of its own.
    records.extend(
        w.push(99, Bytes::from(vec![b'y'; 10_000]), "k", None)
            .expect("fits"),
    );
    records.extend(
        w.push(100, Bytes::from(vec![b'z'; 10]), "k", None)
            .expect("fits"),
    );
    records.extend(w.flush());
    assert!(records.len() >= 6, "{}", records.len());
    for record in &records {
        let big = record.tags.contains(&99);
        assert!(big || record.size() <= 4_096, "{}", record.size());
        if big {
            assert_eq!(record.tags, [99], "alone");
        }
    }
    let tags: Vec<u32> = records.iter().flat_map(|r| r.tags.clone()).collect();
    assert_eq!(
        tags,
        (0..40).chain([99, 100]).collect::<Vec<_>>(),
        "in order, none lost"
    );
    assert!(
        w.push(1, Bytes::from(vec![b'x'; 100_001]), "k", None)
            .is_err(),
        "the record limit stays"
    );
}

#[test]
fn a_stream_that_ignores_keys_gets_plain_records_every_reader_accepts() {
    use crate::processor::WriterShape;
    let shape = WriterShape::aggregates_of(4_096).service_distributing(true);
    let mut w = KplAggregator::new().shaped_writer::<u32>(1_000, shape);
    let record = w
        .push(7, Bytes::from_static(b"{\"a\":1}"), "k", Some("42"))
        .expect("fits")
        .expect("one record per item, at once");
    assert_eq!(&record.data[..], b"{\"a\":1}", "no KPL envelope");
    assert_eq!(
        (
            record.partition_key.as_str(),
            record.explicit_hash_key.as_deref()
        ),
        ("k", Some("42"))
    );
    assert_eq!(record.tags, [7]);
    assert_eq!(w.buffered_items(), 0);
    // The KPL reader passes it through as one item.
    let items = frames(&record.data);
    assert_eq!(items.len(), 1);
    assert_eq!(&items[0].as_ref().expect("frame").data[..], b"{\"a\":1}");
    let too_large = w
        .push(8, Bytes::from(vec![b'x'; 1_000]), "k", None)
        .expect_err("1,001 bytes with the key");
    assert!(matches!(too_large.reason, RejectReason::TooLarge { .. }));
    assert!(
        w.push(9, Bytes::new(), "", None).is_err(),
        "keys are still checked"
    );
}
