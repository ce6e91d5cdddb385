//! JSON numbers between us and the real Python packages (async-kinesis 3.0.1 with the standard
//! `json` module, in both of its separator styles), both directions, through
//! `tests/interop/processors.py`: floats to the last bit (compared as Python's `repr`),
//! integers of any size (compared digit for digit), and Python's bare `NaN` / `Infinity`.
#![allow(clippy::unwrap_used)]

use crate::json_numbers_support::{
    EXTREME_FLOATS, Num, Style, check_numbers, float, integer, python_repr,
};
use crate::processor_interop::{ask_python, hex, interop_tests, unhex, write_with};
use async_kinesis::processor::*;
use bytes::Bytes;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::OnceLock;

const JSON_PROCESSORS: [&str; 4] = [
    "JsonProcessor",
    "JsonLineProcessor",
    "JsonListProcessor",
    "KPLJsonProcessor",
];

/// `n` values of a strategy, the same in every run.
fn draw<T: std::fmt::Debug>(strategy: impl Strategy<Value = T>, n: usize) -> Vec<T> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// How a number travels to and from Python: as text.
fn spec(n: &Num) -> Value {
    match n {
        Num::Float(x) if x.is_nan() => json!(["f", "nan"]),
        Num::Float(x) if x.is_infinite() => json!(["f", if *x > 0.0 { "inf" } else { "-inf" }]),
        Num::Float(x) => json!(["f", python_repr(*x)]),
        Num::Int(digits) => json!(["i", digits]),
    }
}

fn specs(nums: &[Num]) -> Value {
    Value::Array(nums.iter().map(spec).collect())
}

/// Whether Python's answer for numbers (`[["f", repr] | ["i", digits], ...]`) is exactly these
/// numbers: every float the same `f64` bit for bit, every integer the same digits. (Python's
/// `repr` and ours differ only where two shortest forms are equally near, `…721.2` against
/// `…721.3`: the same float.)
fn held_exactly(answer: &Value, nums: &[Num]) -> bool {
    let answer = answer.as_array().unwrap();
    answer.len() == nums.len()
        && answer.iter().zip(nums).all(|(spec, num)| {
            let text = spec[1].as_str().unwrap();
            match (spec[0].as_str().unwrap(), num) {
                ("f", Num::Float(x)) if x.is_nan() => text == "nan",
                ("f", Num::Float(x)) => text.parse::<f64>().map(f64::to_bits) == Ok(x.to_bits()),
                ("i", Num::Int(digits)) => text == digits,
                _ => false,
            }
        })
}

/// Numbers split into items of five.
fn items_of(nums: Vec<Num>) -> Vec<Vec<Num>> {
    nums.chunks(5).map(<[Num]>::to_vec).collect()
}

/// Floats and 64-bit integers: every build holds them in a `serde_json::Value`.
fn narrow_numbers() -> Vec<Num> {
    let mut nums: Vec<Num> = EXTREME_FLOATS.iter().copied().map(Num::Float).collect();
    nums.extend(draw(float(), 1_500).into_iter().map(Num::Float));
    let ints = draw(integer(), 600).into_iter().filter(|d| {
        let n = Num::Int(d.clone());
        !n.is_wide()
    });
    nums.extend(ints.map(Num::Int));
    // Mix floats and integers inside items.
    let mut mixed = Vec::with_capacity(nums.len());
    let (floats, ints): (Vec<_>, Vec<_>) =
        nums.into_iter().partition(|n| matches!(n, Num::Float(_)));
    let mut ints = ints.into_iter();
    for (i, f) in floats.into_iter().enumerate() {
        mixed.push(f);
        if i % 3 == 0 {
            mixed.extend(ints.next());
        }
    }
    mixed.extend(ints);
    mixed
}

/// Integers beyond 64 bits, each with a float beside it.
fn wide_items() -> Vec<Vec<Num>> {
    let wide = draw(integer(), 1_000)
        .into_iter()
        .map(Num::Int)
        .filter(Num::is_wide)
        .take(150);
    wide.zip(draw(float(), 150))
        .map(|(int, f)| vec![Num::Float(f), int])
        .collect()
}

/// Python's non-finite floats between finite ones.
fn non_finite_items() -> Vec<Vec<Num>> {
    [1.5, f64::NAN, 2.5, f64::INFINITY, f64::NEG_INFINITY, 3.5]
        .into_iter()
        .map(|x| vec![Num::Float(x)])
        .collect()
}

/// Integers beyond 64 bits that an `i128` holds.
fn wide_i128() -> Vec<i128> {
    let mut wide: Vec<i128> = draw(proptest::prelude::any::<i128>(), 400)
        .into_iter()
        .filter(|i| i64::try_from(*i).is_err() && u64::try_from(*i).is_err())
        .take(200)
        .collect();
    wide.extend([
        i128::MIN,
        i128::MAX,
        1 << 70,
        -(1 << 70),
        1 << 64,
        -(1 << 63) - 1,
    ]);
    wide
}

/// A case Python writes.
struct PythonWrites {
    name: String,
    processor: &'static str,
    items: Vec<Vec<Num>>,
}

/// A case Rust writes: the numbers of each item, and the records.
struct RustWrites {
    name: String,
    processor: &'static str,
    items: Vec<Vec<Num>>,
    records: Vec<OutgoingRecord<usize>>,
}

/// Writes `items` with the JSON processor of that Python name, for any item type.
fn rust_write_json<T>(processor: &str, items: Vec<T>) -> Vec<OutgoingRecord<usize>>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let keys = vec!["k".to_owned(); items.len()];
    match processor {
        "JsonProcessor" => write_with(&JsonProcessor::of::<T>(), items, &keys),
        "JsonLineProcessor" => write_with(&JsonLineProcessor::of::<T>(), items, &keys),
        "JsonListProcessor" => write_with(&JsonListProcessor::of::<T>(), items, &keys),
        "KPLJsonProcessor" => write_with(&KplJsonProcessor::of::<T>(), items, &keys),
        other => panic!("not a JSON processor: {other}"),
    }
    .unwrap()
}

/// A `serde_json::Value` list holding the numbers (read by our own reader, so a wide integer
/// is kept only where this build's `Value` holds it).
fn value_of(nums: &[Num]) -> Value {
    let text = format!(
        "[{}]",
        nums.iter().map(Num::text).collect::<Vec<_>>().join(",")
    );
    JsonSerializer::<Value>::new()
        .deserialize(&Bytes::from(text))
        .unwrap()
}

/// One record read by the Rust processor of that Python name: one result per reader output
/// (per item, or per whole list for the JSON-list processor).
fn rust_read_values(processor: &str, data: &Bytes) -> Vec<Result<Value, ReadError>> {
    fn read<P: Processor>(
        p: &P,
        data: &Bytes,
        wire: impl Fn(P::Output) -> Value,
    ) -> Vec<Result<Value, ReadError>> {
        p.read(data, "k").map(|r| r.map(|d| wire(d.item))).collect()
    }
    match processor {
        "JsonProcessor" => read(&JsonProcessor::new(), data, |v| v),
        "JsonLineProcessor" => read(&JsonLineProcessor::new(), data, |v| v),
        "JsonListProcessor" => read(&JsonListProcessor::new(), data, Value::Array),
        "KPLJsonProcessor" => read(&KplJsonProcessor::new(), data, |v| v),
        other => panic!("not a JSON processor: {other}"),
    }
}

struct Outcome {
    python_writes: Vec<PythonWrites>,
    rust_writes: Vec<RustWrites>,
    answer: Value,
}

fn outcome() -> &'static Outcome {
    static OUTCOME: OnceLock<Outcome> = OnceLock::new();
    OUTCOME.get_or_init(|| {
        let mut python_writes = Vec::new();
        let mut rust_writes = Vec::new();
        for processor in JSON_PROCESSORS {
            for style in [Style::Stdlib, Style::Compact] {
                for (kind, items) in [("numbers", items_of(narrow_numbers())), ("wide", wide_items())] {
                    python_writes.push((style, PythonWrites {
                        name: format!("{processor}/{kind}/{style:?}"),
                        processor,
                        items,
                    }));
                }
            }
            python_writes.push((Style::Stdlib, PythonWrites {
                name: format!("{processor}/non-finite"),
                processor,
                items: non_finite_items(),
            }));

            let items = items_of(narrow_numbers());
            let values = items.iter().map(|nums| value_of(nums)).collect();
            let records = rust_write_json::<Value>(processor, values);
            rust_writes.push(RustWrites { name: format!("{processor}/numbers"), processor, items, records });
            let wide: Vec<Vec<i128>> = wide_i128().chunks(4).map(<[i128]>::to_vec).collect();
            let items = wide
                .iter()
                .map(|w| w.iter().map(|i| Num::Int(i.to_string())).collect())
                .collect();
            let records = rust_write_json::<Vec<i128>>(processor, wide);
            rust_writes.push(RustWrites { name: format!("{processor}/wide-i128"), processor, items, records });
            if serde_json_keeps_wide_integers() {
                let items = wide_items();
                let values = items.iter().map(|nums| value_of(nums)).collect();
                let records = rust_write_json::<Value>(processor, values);
                rust_writes.push(RustWrites { name: format!("{processor}/wide-value"), processor, items, records });
            }
        }
        let write: Vec<Value> = python_writes
            .iter()
            .map(|(style, c)| {
                let style = match style {
                    Style::Stdlib => "stdlib",
                    Style::Compact => "compact",
                };
                json!({
                    "case": c.name,
                    "processor": c.processor,
                    "style": style,
                    "items": c.items.iter().map(|nums| specs(nums)).collect::<Vec<_>>(),
                })
            })
            .collect();
        let read: Vec<Value> = rust_writes
            .iter()
            .map(|c| json!({
                "case": c.name,
                "processor": c.processor,
                "records": c.records.iter().map(|r| json!({"data": hex(&r.data), "partition_key": r.partition_key})).collect::<Vec<_>>(),
            }))
            .collect();
        let answer = ask_python(&json!({"numbers": {"write": write, "read": read}}));
        Outcome {
            python_writes: python_writes.into_iter().map(|(_, c)| c).collect(),
            rust_writes,
            answer,
        }
    })
}

/// Python writes, Rust reads: every number as Python holds it, or the documented error.
fn check_python_to_rust(processor: &str) {
    let out = outcome();
    let mut checked = 0;
    for case in out
        .python_writes
        .iter()
        .filter(|c| c.processor == processor)
    {
        let answer = &out.answer["numbers"]["write"][&case.name];
        // Python holds exactly what we asked for: our `repr` is Python's.
        let held = answer["numbers"].as_array().unwrap();
        assert_eq!(held.len(), case.items.len(), "{}", case.name);
        for (held, nums) in held.iter().zip(&case.items) {
            assert!(
                held_exactly(held, nums),
                "{}: Python holds {held} for {nums:?}",
                case.name
            );
        }
        let mut items = case.items.iter();
        for record in answer["records"].as_array().unwrap() {
            let data = Bytes::from(unhex(record["data"].as_str().unwrap()));
            let n = record["n"].as_u64().unwrap() as usize;
            let outputs = rust_read_values(processor, &data);
            if processor == "JsonListProcessor" {
                assert_eq!(outputs.len(), 1);
                let nums: Vec<Num> = items.by_ref().take(n).flatten().cloned().collect();
                check_numbers(&outputs[0], &nums).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            } else {
                assert_eq!(outputs.len(), n, "{}", case.name);
                for (got, nums) in outputs.iter().zip(items.by_ref()) {
                    check_numbers(got, nums).unwrap_or_else(|e| panic!("{}: {e}", case.name));
                }
            }
            checked += n;
        }
        assert!(
            items.next().is_none(),
            "{}: items missing from the records",
            case.name
        );
    }
    assert!(checked > 1_000, "{checked}");
}

/// Rust writes, Python reads: Python's `repr` of every float and `str` of every integer is
/// what we wrote.
fn check_rust_to_python(processor: &str) {
    let out = outcome();
    let mut checked = 0;
    for case in out.rust_writes.iter().filter(|c| c.processor == processor) {
        let per_record = out.answer["numbers"]["read"][&case.name]["items"]
            .as_array()
            .unwrap();
        assert_eq!(per_record.len(), case.records.len(), "{}", case.name);
        for (record, python_items) in case.records.iter().zip(per_record) {
            let written: Vec<&[Num]> = record.tags.iter().map(|&t| &case.items[t][..]).collect();
            let read = python_items.as_array().unwrap();
            if processor == "JsonListProcessor" {
                // Python reads the whole list as one item.
                let all: Vec<Num> = written.concat();
                assert_eq!(read.len(), 1, "{}", case.name);
                assert!(
                    held_exactly(&read[0], &all),
                    "{}: Python read {}",
                    case.name,
                    read[0]
                );
            } else {
                assert_eq!(read.len(), written.len(), "{}", case.name);
                for (read, nums) in read.iter().zip(&written) {
                    assert!(
                        held_exactly(read, nums),
                        "{}: Python read {read} for {nums:?}",
                        case.name
                    );
                }
            }
            checked += record.tags.len();
        }
    }
    assert!(checked > 400, "{checked}");
}

interop_tests! {
    rust_writes_python_reads_numbers, python_writes_rust_reads_numbers:
    json => "JsonProcessor",
    json_line => "JsonLineProcessor",
    json_list => "JsonListProcessor",
    kpl_json => "KPLJsonProcessor",
}
