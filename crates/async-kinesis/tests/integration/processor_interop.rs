//! Interop of the processors with the real Python packages (async-kinesis 3.0.1 with its kpl and
//! msgpack extras, aws-kinesis-agg 1.2.3), both directions, through `tests/interop/processors.py`.
//!
//! All cases go to Python in one invocation (shared by the tests through a `OnceLock`).
//! The Python comes from `ASYNC_KINESIS_PY_INTEROP`, default `<repo>/.local-stack/py-interop`;
//! `scripts/local-stack up` installs it. Without it the tests fail.
#![allow(clippy::unwrap_used)]

use async_kinesis::processor::*;
use bytes::Bytes;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const PROCESSORS: [&str; 7] = [
    "StringProcessor",
    "JsonProcessor",
    "JsonLineProcessor",
    "JsonListProcessor",
    "MsgpackProcessor",
    "KPLJsonProcessor",
    "KPLStringProcessor",
];

pub fn python() -> PathBuf {
    let path = std::env::var_os("ASYNC_KINESIS_PY_INTEROP")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../.local-stack/py-interop/bin/python")
        });
    assert!(
        path.exists(),
        "interop python {} not found: run `scripts/local-stack up` (or set ASYNC_KINESIS_PY_INTEROP)",
        path.display()
    );
    path
}

// ---- wire form of items: JSON, bytes tagged {"$bin": hex} ----

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn msgpack_to_wire(v: &rmpv::Value) -> Value {
    use rmpv::Value as M;
    match v {
        M::Nil => Value::Null,
        M::Boolean(b) => json!(b),
        M::Integer(i) => i
            .as_i64()
            .map(|i| json!(i))
            .unwrap_or_else(|| json!(i.as_u64().unwrap())),
        M::F32(f) => json!(f),
        M::F64(f) => json!(f),
        M::String(s) => json!(s.as_str().unwrap()),
        M::Binary(b) => json!({ "$bin": hex(b) }),
        M::Array(a) => Value::Array(a.iter().map(msgpack_to_wire).collect()),
        M::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_owned(), msgpack_to_wire(v)))
                .collect(),
        ),
        M::Ext(..) => panic!("ext types are not used"),
    }
}

fn wire_to_msgpack(v: &Value) -> rmpv::Value {
    use rmpv::Value as M;
    match v {
        Value::Null => M::Nil,
        Value::Bool(b) => M::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => M::from(i),
            (_, Some(u)) => M::from(u),
            _ => M::F64(n.as_f64().unwrap()),
        },
        Value::String(s) => M::from(s.as_str()),
        Value::Array(a) => M::Array(a.iter().map(wire_to_msgpack).collect()),
        Value::Object(o) if o.len() == 1 && o.contains_key("$bin") => {
            M::Binary(unhex(o["$bin"].as_str().unwrap()))
        }
        Value::Object(o) => M::Map(
            o.iter()
                .map(|(k, v)| (M::from(k.as_str()), wire_to_msgpack(v)))
                .collect(),
        ),
    }
}

// ---- typed Rust side, by Python processor name ----

pub fn write_with<P: Processor>(
    p: &P,
    items: Vec<P::Item>,
    keys: &[String],
) -> Result<Vec<OutgoingRecord<usize>>, RejectReason> {
    let mut writer = p.writer::<usize>();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let data = p.serialize(item).unwrap();
        match writer.push(i, data, &keys[i], None) {
            Ok(Some(record)) => out.push(record),
            Ok(None) => {}
            Err(rejected) => return Err(rejected.reason),
        }
    }
    out.extend(writer.flush());
    Ok(out)
}

fn strings(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn rust_write(
    processor: &str,
    items: &[Value],
    keys: &[String],
) -> Result<Vec<OutgoingRecord<usize>>, RejectReason> {
    match processor {
        "StringProcessor" => write_with(&StringProcessor::default(), strings(items), keys),
        "JsonProcessor" => write_with(&JsonProcessor::new(), items.to_vec(), keys),
        "JsonLineProcessor" => write_with(&JsonLineProcessor::new(), items.to_vec(), keys),
        "JsonListProcessor" => write_with(&JsonListProcessor::new(), items.to_vec(), keys),
        "MsgpackProcessor" => write_with(
            &MsgpackProcessor::new(),
            items.iter().map(wire_to_msgpack).collect(),
            keys,
        ),
        "KPLJsonProcessor" => write_with(&KplJsonProcessor::new(), items.to_vec(), keys),
        "KPLStringProcessor" => write_with(&KplStringProcessor::default(), strings(items), keys),
        other => panic!("unknown processor {other}"),
    }
}

/// One record read in Rust: (sub-sequence, partition key, wire item) per item.
type ReadOut = Vec<(u64, String, Value)>;

fn read_with<P: Processor>(
    p: &P,
    data: &Bytes,
    key: &str,
    wire: impl Fn(P::Output) -> Value,
) -> ReadOut {
    p.read(data, key)
        .map(|r| {
            let d = r.unwrap_or_else(|e| panic!("record written by Python fails to read: {e:?}"));
            (d.sub_sequence, d.partition_key.to_string(), wire(d.item))
        })
        .collect()
}

fn rust_read(processor: &str, data: &Bytes, key: &str) -> ReadOut {
    match processor {
        "StringProcessor" => read_with(&StringProcessor::default(), data, key, Value::String),
        "JsonProcessor" => read_with(&JsonProcessor::new(), data, key, |v| v),
        "JsonLineProcessor" => read_with(&JsonLineProcessor::new(), data, key, |v| v),
        "JsonListProcessor" => read_with(&JsonListProcessor::new(), data, key, Value::Array),
        "MsgpackProcessor" => {
            read_with(&MsgpackProcessor::new(), data, key, |v| msgpack_to_wire(&v))
        }
        "KPLJsonProcessor" => read_with(&KplJsonProcessor::new(), data, key, |v| v),
        "KPLStringProcessor" => read_with(&KplStringProcessor::default(), data, key, Value::String),
        other => panic!("unknown processor {other}"),
    }
}

// ---- cases ----

struct Case {
    name: String,
    processor: &'static str,
    items: Vec<Value>,
    keys: Vec<String>,
}

fn is_kpl(processor: &str) -> bool {
    processor.starts_with("KPL")
}

fn is_string(processor: &str) -> bool {
    processor.contains("String")
}

fn sample_items(processor: &str) -> Vec<Value> {
    if is_string(processor) {
        return [
            "hello",
            "",
            "héllo ✓ 😀 中文",
            "tab\tand \"quotes\"",
            "line\nbreak",
        ]
        .map(|s| json!(s))
        .to_vec();
    }
    let mut items = vec![
        json!({"a": 1, "nested": {"list": [1, 2, {"deep": [true, false, null]}], "s": "é✓😀"}}),
        json!(""),
        json!("unicode ✓ 😀 中文 \u{0007}"),
        json!([1, -2, 1.5, -2.25, 9_007_199_254_740_993_i64]),
        json!(null),
        json!({}),
    ];
    if processor == "MsgpackProcessor" {
        items.push(json!({"$bin": ""}));
        items.push(
            json!({"bin": {"$bin": "00ff10c4"}, "text": "x", "list": [{"$bin": "01"}, "01"]}),
        );
    }
    items
}

/// A big item: a string of `n` characters, or binary of `n` bytes for msgpack.
fn big_item(processor: &str, n: usize) -> Value {
    if processor == "MsgpackProcessor" {
        json!({ "$bin": "ab".repeat(n) })
    } else {
        json!("x".repeat(n))
    }
}

/// The largest single item the Rust writer accepts at the default 1 MiB limit with key "k".
fn near_limit_item(processor: &str) -> Value {
    let keys = vec!["k".to_owned()];
    let mut n = DEFAULT_MAX_RECORD_SIZE;
    loop {
        let item = big_item(processor, n);
        if let Ok(records) = rust_write(processor, std::slice::from_ref(&item), &keys) {
            let size = records[0].size();
            assert!(
                size <= DEFAULT_MAX_RECORD_SIZE && size + 8 >= DEFAULT_MAX_RECORD_SIZE,
                "{size}"
            );
            return item;
        }
        n -= 1;
    }
}

fn cases() -> (Vec<Case>, Vec<Case>) {
    let mut rust_writes = Vec::new();
    let mut python_writes = Vec::new();
    for processor in PROCESSORS {
        let mut items = sample_items(processor);
        // Many items per aggregate, over two keys.
        for i in 0..500 {
            items.push(if is_string(processor) {
                json!(format!("item {i} ✓"))
            } else {
                json!({"i": i, "s": format!("v{i}")})
            });
        }
        let keys: Vec<String> = (0..items.len()).map(|i| format!("key-{}", i % 2)).collect();
        rust_writes.push(Case {
            name: format!("{processor}/many"),
            processor,
            items: items.clone(),
            keys: keys.clone(),
        });
        let near = near_limit_item(processor);
        rust_writes.push(Case {
            name: format!("{processor}/near-limit"),
            processor,
            items: vec![near.clone(), json!("after"), near],
            keys: vec!["k".into(); 3],
        });
        // Python: one key (KPL refuses custom keys; its other aggregators flush on key change).
        let py_keys = if is_kpl(processor) {
            vec![]
        } else {
            vec!["py".to_owned(); items.len()]
        };
        python_writes.push(Case {
            name: format!("{processor}/many"),
            processor,
            items,
            keys: py_keys,
        });
        // Python's own limit: 1,024,000 bytes; aws-kinesis-agg: 1 MiB.
        let big = big_item(
            processor,
            if processor == "MsgpackProcessor" {
                1_000_000
            } else {
                1_020_000
            },
        );
        let py_keys = if is_kpl(processor) {
            vec![]
        } else {
            vec!["py".to_owned(); 2]
        };
        python_writes.push(Case {
            name: format!("{processor}/near-limit"),
            processor,
            items: vec![big.clone(), big],
            keys: py_keys,
        });
    }
    (rust_writes, python_writes)
}

struct Outcome {
    rust_writes: Vec<(Case, Vec<OutgoingRecord<usize>>)>,
    python_writes: Vec<Case>,
    answer: Value,
}

fn outcome() -> &'static Outcome {
    static OUTCOME: OnceLock<Outcome> = OnceLock::new();
    OUTCOME.get_or_init(|| {
        let (rust_cases, python_writes) = cases();
        let rust_writes: Vec<_> = rust_cases
            .into_iter()
            .map(|c| {
                let records = rust_write(c.processor, &c.items, &c.keys).unwrap();
                (c, records)
            })
            .collect();
        let mut read = Vec::new();
        for (c, records) in &rust_writes {
            read.push(json!({
                "case": c.name,
                "processor": c.processor,
                "records": records.iter().map(|r| json!({"data": hex(&r.data), "partition_key": r.partition_key})).collect::<Vec<_>>(),
            }));
        }
        // aws-kinesis-agg writing with real keys and explicit hash keys.
        let agg_items: Vec<Value> = (0..300).map(|i| json!(format!("agg ✓ {i}"))).collect();
        let agg_keys: Vec<String> = (0..300).map(|i| format!("pk-{}", i % 5)).collect();
        let agg_ehks: Vec<Value> = (0..300)
            .map(|i| if i % 3 == 0 { json!(format!("{}", u128::MAX - i)) } else { Value::Null })
            .collect();
        let mut write: Vec<Value> = python_writes
            .iter()
            .map(|c| json!({"case": c.name, "processor": c.processor, "items": c.items, "keys": c.keys}))
            .collect();
        write.push(json!({"case": "agg", "processor": "aws_kinesis_agg", "items": agg_items, "keys": agg_keys, "ehks": agg_ehks}));
        let answer = ask_python(&json!({"read": read, "write": write}));
        Outcome { rust_writes, python_writes, answer }
    })
}

/// Runs `tests/interop/processors.py` on one request; its answer.
pub fn ask_python(request: &Value) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/processors.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let body = serde_json::to_vec(request).unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&body).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "python helper failed: {:?}",
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Rust writes, Python reads: every record decodes in Python to the items it carries.
fn check_rust_to_python(processor: &str) {
    let out = outcome();
    let mut checked = 0;
    for (case, records) in out
        .rust_writes
        .iter()
        .filter(|(c, _)| c.processor == processor)
    {
        let got = &out.answer["read"][&case.name];
        let per_record = got["items"].as_array().unwrap();
        assert_eq!(per_record.len(), records.len(), "{}", case.name);
        let mut seen = Vec::new();
        let mut kpl_expected = Vec::new();
        for (record, py_items) in records.iter().zip(per_record) {
            assert!(record.size() <= DEFAULT_MAX_RECORD_SIZE);
            let expected: Vec<Value> = record.tags.iter().map(|&t| case.items[t].clone()).collect();
            if processor == "JsonListProcessor" {
                assert_eq!(py_items, &json!([expected]), "{}", case.name);
            } else {
                assert_eq!(py_items, &Value::Array(expected), "{}", case.name);
            }
            for (sub, &t) in record.tags.iter().enumerate() {
                let data = match processor {
                    "KPLStringProcessor" => case.items[t].as_str().unwrap().to_owned(),
                    _ => serde_json::to_string(&case.items[t]).unwrap(),
                };
                kpl_expected.push(json!([case.keys[t], null, sub, data]));
            }
            seen.extend(record.tags.iter().copied());
            checked += record.tags.len();
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..case.items.len()).collect::<Vec<_>>(),
            "every item exactly once"
        );
        if is_kpl(processor) {
            // aws-kinesis-agg deaggregates with each user record's own key intact.
            assert_eq!(got["kpl"], Value::Array(kpl_expected), "{}", case.name);
        }
    }
    assert!(checked > 500);
}

/// Python writes, Rust reads: the same items, in order.
fn check_python_to_rust(processor: &str) {
    let out = outcome();
    let mut checked = 0;
    for case in out
        .python_writes
        .iter()
        .filter(|c| c.processor == processor)
    {
        let records = out.answer["write"][&case.name]["records"]
            .as_array()
            .unwrap();
        let mut items = Vec::new();
        for record in records {
            let data = Bytes::from(unhex(record["data"].as_str().unwrap()));
            let key = record["partition_key"].as_str().unwrap_or("generated");
            let read = rust_read(processor, &data, key);
            let n: usize = if processor == "JsonListProcessor" {
                read.iter()
                    .map(|(_, _, v)| v.as_array().unwrap().len())
                    .sum()
            } else {
                read.len()
            };
            assert_eq!(n as u64, record["n"].as_u64().unwrap(), "{}", case.name);
            for (i, (sub, pk, item)) in read.into_iter().enumerate() {
                if is_kpl(processor) {
                    assert_eq!(
                        (sub, pk.as_str()),
                        (i as u64, "a"),
                        "Python writes inner key \"a\""
                    );
                } else if processor != "JsonListProcessor" {
                    assert_eq!(pk, "py");
                }
                match item {
                    Value::Array(list) if processor == "JsonListProcessor" => items.extend(list),
                    item => items.push(item),
                }
            }
        }
        assert_eq!(items, case.items, "{}", case.name);
        checked += items.len();
    }
    assert!(checked > 500);
}

/// Two test modules, one test per processor in each: `check_rust_to_python` and
/// `check_python_to_rust` of the calling module.
macro_rules! interop_tests {
    ($rust_writes:ident, $python_writes:ident: $($name:ident => $processor:literal),* $(,)?) => {
        mod $rust_writes {
            $(#[test] fn $name() { super::check_rust_to_python($processor) })*
        }
        mod $python_writes {
            $(#[test] fn $name() { super::check_python_to_rust($processor) })*
        }
    };
}
pub(crate) use interop_tests;

interop_tests! {
    rust_writes_python_reads, python_writes_rust_reads:
    string => "StringProcessor",
    json => "JsonProcessor",
    json_line => "JsonLineProcessor",
    json_list => "JsonListProcessor",
    msgpack => "MsgpackProcessor",
    kpl_json => "KPLJsonProcessor",
    kpl_string => "KPLStringProcessor",
}

/// aws-kinesis-agg writes with real keys and explicit hash keys; Rust reads them back intact,
/// and the Rust writer produces the very same bytes for the same user records.
#[test]
fn aws_kinesis_agg_records_match_rust_byte_for_byte() {
    let out = outcome();
    let records = out.answer["write"]["agg"]["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    let data = Bytes::from(unhex(record["data"].as_str().unwrap()));
    let processor = KplStringProcessor::default();
    let read: Vec<_> = processor.read(&data, "outer").map(|r| r.unwrap()).collect();
    assert_eq!(read.len(), 300);
    let mut writer = processor.writer::<usize>();
    for (i, d) in read.iter().enumerate() {
        assert_eq!(d.sub_sequence, i as u64);
        assert_eq!(&*d.partition_key, format!("pk-{}", i % 5));
        assert_eq!(d.item, format!("agg ✓ {i}"));
        let ehk = (i % 3 == 0).then(|| (u128::MAX - i as u128).to_string());
        assert_eq!(d.explicit_hash_key.as_deref(), ehk.as_deref());
        let bytes = processor.serialize(&d.item).unwrap();
        assert!(
            writer
                .push(i, bytes, &d.partition_key, ehk.as_deref())
                .unwrap()
                .is_none()
        );
    }
    let ours = writer.flush().pop().unwrap();
    assert_eq!(ours.data, data, "same aggregate bytes as aws-kinesis-agg");
    assert_eq!(
        ours.partition_key,
        record["partition_key"].as_str().unwrap()
    );
    assert_eq!(
        ours.explicit_hash_key.as_deref(),
        record["explicit_hash_key"].as_str()
    );
}
