//! Property tests of the processors: write → read round-trips for every processor, records
//! never above the size limit, every item accounted for exactly once, readers that never
//! panic on arbitrary bytes, and JSON numbers read exactly as Python writes them.
#![allow(clippy::unwrap_used)]

use crate::json_numbers_support::{
    Num, NumItem, Shape, Style, check_numbers, float, integer, num_item, numbers_in, python_repr,
    same_number,
};
use async_kinesis::processor::*;
use bytes::Bytes;
use md5::{Digest, Md5};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Debug;

/// One user item: the item, its partition key and optional explicit hash key.
type Input<T> = (T, String, Option<String>);

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-c]{1,2}",
        2 => "[a-zA-Z0-9é✓😀]{1,40}",
        1 => "[x✓]{250,256}",
    ]
}

fn ehk() -> impl Strategy<Value = Option<String>> {
    prop_oneof![3 => Just(None), 1 => (0u128..=u128::MAX).prop_map(|v| Some(v.to_string())), 1 => Just(Some("7".to_owned()))]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,60}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z✓]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn msgpack_value() -> impl Strategy<Value = rmpv::Value> {
    let leaf = prop_oneof![
        Just(rmpv::Value::Nil),
        any::<bool>().prop_map(rmpv::Value::from),
        any::<i64>().prop_map(rmpv::Value::from),
        any::<u64>().prop_map(rmpv::Value::from),
        ".{0,40}".prop_map(|s: String| rmpv::Value::from(s.as_str())),
        prop::collection::vec(any::<u8>(), 0..80).prop_map(rmpv::Value::Binary),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(rmpv::Value::Array),
            prop::collection::vec(("[a-z]{0,4}", inner), 0..5).prop_map(|kv| rmpv::Value::Map(
                kv.into_iter()
                    .map(|(k, v)| (rmpv::Value::from(k.as_str()), v))
                    .collect()
            )),
        ]
    })
}

fn inputs<T: Debug>(item: impl Strategy<Value = T>) -> impl Strategy<Value = Vec<Input<T>>> {
    prop::collection::vec((item, key(), ehk()), 0..60)
}

/// Writes all inputs, checks sizes and accounting, reads every record back and checks items and
/// keys. `flatten` turns one reader output into the items it holds; `per_item_keys` is true for
/// formats that carry each item's own keys (KPL).
fn check_round_trip<P>(
    processor: &P,
    inputs: &[Input<P::Item>],
    flatten: impl Fn(P::Output) -> Vec<P::Item>,
    per_item_keys: bool,
) -> Result<(), TestCaseError>
where
    P: Processor,
    P::Item: PartialEq + Debug,
{
    let max = processor.max_record_size();
    let mut writer = processor.writer::<usize>();
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (i, (item, key, ehk)) in inputs.iter().enumerate() {
        let data = processor.serialize(item).unwrap();
        match writer.push(i, data, key, ehk.as_deref()) {
            Ok(Some(record)) => records.push(record),
            Ok(None) => {}
            Err(r) => {
                let too_large = matches!(r.reason, RejectReason::TooLarge { size, max: m } if size > m && m == max);
                prop_assert!(too_large, "unexpected rejection {:?}", r.reason);
                rejected.push(r.tag);
            }
        }
        prop_assert!(writer.buffered_bytes() <= max * (writer.buffered_items().max(1)));
    }
    records.extend(writer.flush());
    prop_assert_eq!(writer.buffered_items(), 0);

    // Every item exactly once, in order per routing key (partition key + explicit hash key).
    let mut seen: Vec<usize> = rejected.clone();
    let mut last_per_key: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for record in &records {
        prop_assert!(
            record.size() <= max,
            "record of {} > {}",
            record.size(),
            max
        );
        prop_assert!(!record.tags.is_empty());
        for &t in &record.tags {
            let key = (inputs[t].1.as_str(), inputs[t].2.as_deref());
            if let Some(&prev) = last_per_key.get(&key) {
                prop_assert!(prev < t, "order of key {key:?} broken");
            }
            last_per_key.insert(key, t);
        }
        seen.extend(record.tags.iter().copied());
    }
    seen.sort_unstable();
    prop_assert_eq!(seen, (0..inputs.len()).collect::<Vec<_>>());

    // Read back.
    for record in &records {
        let mut items = Vec::new();
        for (sub, decoded) in processor
            .read(&record.data, &record.partition_key)
            .enumerate()
        {
            let decoded = decoded.unwrap();
            prop_assert_eq!(decoded.sub_sequence, sub as u64);
            let first = items.len();
            items.extend(flatten(decoded.item));
            for &t in &record.tags[first.min(record.tags.len())..items.len().min(record.tags.len())]
            {
                let (_, key, ehk) = &inputs[t];
                if per_item_keys {
                    prop_assert_eq!(&*decoded.partition_key, key.as_str());
                    prop_assert_eq!(decoded.explicit_hash_key.as_deref(), ehk.as_deref());
                } else {
                    prop_assert_eq!(&*decoded.partition_key, record.partition_key.as_str());
                    prop_assert_eq!(&record.partition_key, key);
                    prop_assert_eq!(&record.explicit_hash_key, ehk);
                }
            }
        }
        let expected: Vec<&P::Item> = record.tags.iter().map(|&t| &inputs[t].0).collect();
        prop_assert_eq!(items.iter().collect::<Vec<_>>(), expected);
    }
    Ok(())
}

fn sized<S: Serializer, A: Aggregator>(p: Composed<S, A>, max: usize) -> Composed<S, A> {
    p.with_max_record_size(max).unwrap()
}

fn max_size() -> impl Strategy<Value = usize> {
    prop_oneof![1 => 1usize..64, 4 => 64usize..2048, 1 => Just(DEFAULT_MAX_RECORD_SIZE)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn string_round_trip(max in max_size(), inputs in inputs(".{0,200}")) {
        let p = sized(StringProcessor::default(), max);
        check_round_trip(&p, &inputs, |s| vec![s], false)?;
    }

    #[test]
    fn json_round_trip(max in max_size(), inputs in inputs(json_value())) {
        let p = sized(JsonProcessor::new(), max);
        check_round_trip(&p, &inputs, |v| vec![v], false)?;
    }

    #[test]
    fn json_line_round_trip(max in max_size(), inputs in inputs(json_value())) {
        let p = sized(JsonLineProcessor::new(), max);
        check_round_trip(&p, &inputs, |v| vec![v], false)?;
    }

    #[test]
    fn json_list_round_trip(max in max_size(), inputs in inputs(json_value())) {
        let p = sized(JsonListProcessor::new(), max);
        check_round_trip(&p, &inputs, |list| list, false)?;
        let each = sized(Composed::from_parts(JsonSerializer::<Value>::new(), ListItemsAggregator), max);
        check_round_trip(&each, &inputs, |v| vec![v], false)?;
    }

    #[test]
    fn msgpack_round_trip(max in max_size(), inputs in inputs(msgpack_value())) {
        let p = sized(MsgpackProcessor::new(), max);
        check_round_trip(&p, &inputs, |v| vec![v], false)?;
    }

    #[test]
    fn kpl_json_round_trip(max in max_size(), inputs in inputs(json_value())) {
        let p = sized(KplJsonProcessor::new(), max);
        check_round_trip(&p, &inputs, |v| vec![v], true)?;
    }

    #[test]
    fn kpl_string_round_trip(max in max_size(), inputs in inputs(".{0,200}")) {
        let p = sized(KplStringProcessor::default(), max);
        check_round_trip(&p, &inputs, |s| vec![s], true)?;
    }

    #[test]
    fn raw_bytes_netstring_round_trip(
        max in max_size(),
        inputs in inputs(prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from)),
    ) {
        let p = sized(Composed::from_parts(BytesSerializer, NetstringAggregator), max);
        check_round_trip(&p, &inputs, |b| vec![b], false)?;
    }

    /// Readers return errors, never panic, on arbitrary data (KPL with a valid digest too,
    /// so the protobuf decoder sees the bytes).
    #[test]
    fn readers_never_panic(data in prop::collection::vec(any::<u8>(), 0..400), kpl_body in any::<bool>()) {
        let data = if kpl_body {
            let mut framed = KPL_MAGIC.to_vec();
            framed.extend_from_slice(&data);
            framed.extend_from_slice(&Md5::digest(&data));
            Bytes::from(framed)
        } else {
            Bytes::from(data)
        };
        let n = StringProcessor::default().read(&data, "k").count()
            + JsonProcessor::new().read(&data, "k").count()
            + JsonLineProcessor::new().read(&data, "k").count()
            + JsonListProcessor::new().read(&data, "k").count()
            + MsgpackProcessor::new().read(&data, "k").count()
            + KplJsonProcessor::new().read(&data, "k").count()
            + KplStringProcessor::default().read(&data, "k").count();
        // Simple and list readers always yield exactly one result (item or error).
        prop_assert!(n >= 3);
    }
}

// ---- JSON numbers exactly as written ----

/// Checks one reader output against the numbers written into it (see [`check_numbers`]).
fn expect_numbers(
    got: Result<Value, ReadError>,
    nums: &[Num],
    what: &str,
) -> Result<(), TestCaseError> {
    let checked = check_numbers(&got, nums);
    prop_assert!(checked.is_ok(), "{}: {}", what, checked.unwrap_err());
    Ok(())
}

/// Our own writing of what was read, read again, gives the same numbers.
fn expect_rewrite_exact(value: &Value, nums: &[Num], what: &str) -> Result<(), TestCaseError> {
    let json = JsonSerializer::<Value>::new();
    let bytes = json.serialize(value).unwrap();
    let again = json.deserialize(&bytes).unwrap();
    let found = numbers_in(&again);
    prop_assert_eq!(found.len(), nums.len());
    for (got, written) in found.iter().zip(nums) {
        prop_assert!(same_number(got, written), "{}: rewritten as {}", what, got);
    }
    Ok(())
}

/// Reads `items` (Python-written texts) through every JSON processor and checks every number.
fn check_python_numbers(items: &[NumItem], style: Style) -> Result<(), TestCaseError> {
    let texts: Vec<String> = items.iter().map(|item| item.text(style)).collect();
    let (sep, _) = style.separators();
    let all_nums: Vec<Num> = items.iter().flat_map(|item| item.nums.clone()).collect();

    // JsonProcessor: one item per record.
    let json = JsonProcessor::new();
    for (item, text) in items.iter().zip(&texts) {
        let mut read: Vec<_> = json
            .read(&Bytes::from(text.clone()), "k")
            .map(|r| r.map(|d| d.item))
            .collect();
        prop_assert_eq!(read.len(), 1);
        let got = read.remove(0);
        if let Ok(value) = &got {
            expect_rewrite_exact(value, &item.nums, "Json")?;
        }
        expect_numbers(got, &item.nums, &format!("Json {text}"))?;
    }

    // JsonLineProcessor: items each followed by a newline.
    let lines: String = texts.iter().map(|t| format!("{t}\n")).collect();
    let read: Vec<_> = JsonLineProcessor::new()
        .read(&Bytes::from(lines), "k")
        .map(|r| r.map(|d| d.item))
        .collect();
    prop_assert_eq!(read.len(), items.len());
    for (got, item) in read.into_iter().zip(items) {
        expect_numbers(got, &item.nums, "JsonLine")?;
    }

    // JsonListProcessor: the whole list is one item; item by item with ListItemsAggregator.
    let list = Bytes::from(format!("[{}]", texts.join(sep)));
    let mut read: Vec<_> = JsonListProcessor::new()
        .read(&list, "k")
        .map(|r| r.map(|d| Value::Array(d.item)))
        .collect();
    prop_assert_eq!(read.len(), 1);
    expect_numbers(read.remove(0), &all_nums, "JsonList")?;
    let each = Composed::from_parts(JsonSerializer::<Value>::new(), ListItemsAggregator);
    let read: Vec<_> = each.read(&list, "k").map(|r| r.map(|d| d.item)).collect();
    prop_assert_eq!(read.len(), items.len());
    for (got, item) in read.into_iter().zip(items) {
        expect_numbers(got, &item.nums, "JsonList item by item")?;
    }

    // KplJsonProcessor: user records as the Python library aggregates them.
    let kpl = Composed::from_parts(
        JsonSerializer::<Value>::new(),
        KplAggregator::python_compatible(),
    );
    let mut writer = kpl.writer::<usize>();
    let mut records = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        records.extend(
            writer
                .push(i, Bytes::from(text.clone()), "k", None)
                .unwrap(),
        );
    }
    records.extend(writer.flush());
    let mut read = Vec::new();
    for record in &records {
        read.extend(
            kpl.read(&record.data, &record.partition_key)
                .map(|r| r.map(|d| d.item)),
        );
    }
    prop_assert_eq!(read.len(), items.len());
    for (got, item) in read.into_iter().zip(items) {
        expect_numbers(got, &item.nums, "KplJson")?;
    }
    Ok(())
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![Just(Style::Stdlib), Just(Style::Compact)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every JSON processor reads every number Python writes, in both of its styles, as that
    /// number (floats bit for bit, integers digit for digit) or, where the item type cannot
    /// hold it, as an error for that item; and what we write of it reads back the same.
    #[test]
    fn json_numbers_read_exactly_as_python_writes_them(
        items in prop::collection::vec(num_item(), 0..8),
        style in style(),
    ) {
        check_python_numbers(&items, style)?;
    }

    /// Typed items: `f64` fields get every float bit for bit, `i128` fields every integer in
    /// their range and an error beyond; our writing reads back the same.
    #[test]
    fn typed_json_numbers_are_exact(
        floats in prop::collection::vec(float(), 0..8),
        ints in prop::collection::vec(integer(), 0..8),
        style in style(),
    ) {
        let (sep, _) = style.separators();
        let text = format!("[{}]", floats.iter().map(|x| python_repr(*x)).collect::<Vec<_>>().join(sep));
        let json = JsonSerializer::<Vec<f64>>::new();
        let read = json.deserialize(&Bytes::from(text.clone())).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&read), bits(&floats), "{}", text);
        let again = json.deserialize(&json.serialize(&read).unwrap()).unwrap();
        prop_assert_eq!(bits(&again), bits(&floats));

        let text = format!("[{}]", ints.join(sep));
        let fits: Option<Vec<i128>> = ints.iter().map(|d| d.parse().ok()).collect();
        let json = JsonSerializer::<Vec<i128>>::new();
        match (json.deserialize(&Bytes::from(text.clone())), fits) {
            (Ok(read), Some(expected)) => {
                prop_assert_eq!(&read, &expected);
                prop_assert_eq!(json.deserialize(&json.serialize(&read).unwrap()).unwrap(), expected);
            }
            (Err(_), None) => {}
            (other, fits) => prop_assert!(false, "{}: {:?} for {:?}", text, other, fits),
        }
    }
}

#[test]
fn the_python_numbers_of_the_report_read_exactly() {
    let items = [NumItem {
        shape: Shape::Object,
        nums: vec![
            Num::Float(966.552_226_836_037_3),
            Num::Float(-2.5e-308),
            Num::Int("1180591620717411303424".into()),
        ],
    }];
    for style in [Style::Stdlib, Style::Compact] {
        check_python_numbers(&items, style).unwrap();
    }
}

#[test]
fn python_repr_matches_known_outputs() {
    for (x, repr) in [
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1.234_567_890_123_456_8e17, "1.2345678901234568e+17"),
        (5e-324, "5e-324"),
        (-0.0, "-0.0"),
        (0.0, "0.0"),
        (1.5, "1.5"),
        (-2.25, "-2.25"),
        (123.0, "123.0"),
        (f64::MAX, "1.7976931348623157e+308"),
        (966.552_226_836_037_3, "966.5522268360373"),
        (1e100, "1e+100"),
    ] {
        assert_eq!(python_repr(x), repr);
    }
}
