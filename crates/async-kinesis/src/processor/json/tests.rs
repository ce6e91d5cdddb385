use super::*;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

const TWO_POW_70: &str = "1180591620717411303424";

fn read<T: Serialize + DeserializeOwned + Send + 'static>(text: &str) -> Result<T, DecodeError> {
    JsonSerializer::<T>::new().deserialize(&Bytes::copy_from_slice(text.as_bytes()))
}

fn write<T: Serialize + DeserializeOwned + Send + 'static>(
    item: &T,
) -> Result<Bytes, SerializeError> {
    JsonSerializer::<T>::new().serialize(item)
}

/// The integer and offset of a `WideInteger` error, or a panic.
fn wide_error<T: fmt::Debug>(result: Result<T, DecodeError>) -> (String, usize) {
    match result {
        Err(DecodeError::WideInteger { digits, offset }) => (digits, offset),
        other => panic!("expected a wide-integer error, got {other:?}"),
    }
}

/// In this workspace only the crate's own feature turns serde_json's `arbitrary_precision` on:
/// the tests of each build know which behaviour they see.
#[test]
fn wide_integers_are_kept_exactly_when_the_feature_is_on() {
    assert_eq!(
        serde_json_keeps_wide_integers(),
        cfg!(feature = "json-arbitrary-precision")
    );
}

/// What the feature costs other serde users (documented): with it, serde_json hands floats to
/// buffered (untagged, internally tagged, flattened) types as a private map they refuse.
#[test]
fn arbitrary_precision_breaks_only_floats_in_buffered_types() {
    #[derive(Deserialize, Debug)]
    #[serde(tag = "t")]
    enum Tagged {
        A { n: u64 },
        B { f: f64 },
    }
    let int = serde_json::from_str::<Tagged>(r#"{"t": "A", "n": 18446744073709551615}"#);
    let Ok(Tagged::A { n }) = int else {
        panic!("64-bit integers are unaffected: {int:?}")
    };
    assert_eq!(n, u64::MAX);
    match serde_json::from_str::<Tagged>(r#"{"t": "B", "f": 1.5}"#) {
        Ok(Tagged::B { f }) => {
            assert!(!serde_json_keeps_wide_integers());
            assert_eq!(f, 1.5);
        }
        other => assert!(serde_json_keeps_wide_integers(), "{other:?}"),
    }
}

#[test]
fn reads_python_separators_and_writes_compact() {
    let value: Value = read("{\"a\": [1, 2], \"b\": \"\\u00e9\"}").expect("python json");
    assert_eq!(value, json!({"a": [1, 2], "b": "é"}));
    let out = write(&value).expect("serialize");
    assert_eq!(&out[..], "{\"a\":[1,2],\"b\":\"é\"}".as_bytes());
    assert!(matches!(
        read::<Value>("{\"a\":"),
        Err(DecodeError::Json(_))
    ));
}

#[test]
fn typed_items_reject_a_wrong_shape() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Point {
        x: i32,
        y: i32,
    }
    let p = Point { x: 1, y: -2 };
    let bytes = write(&p).expect("serialize");
    assert_eq!(
        read::<Point>(std::str::from_utf8(&bytes).expect("utf-8")).expect("decode"),
        p
    );
    assert!(read::<Point>("[1,2,3]").is_err());
}

#[test]
fn serde_json_refusals_are_typed() {
    let mut map = HashMap::new();
    map.insert(vec![1u8], 1u8);
    assert!(matches!(write(&map), Err(SerializeError::Json(_))));
}

/// The floats of the report: serde_json without `float_roundtrip` was one ULP off.
#[test]
fn floats_are_read_to_the_last_bit() {
    for text in [
        "966.5522268360373",
        "-2.5e-308",
        "5e-324",
        "-5e-324",
        "2.2250738585072014e-308",
        "2.225073858507201e-308",
        "1.7976931348623157e+308",
        "-0.0",
        "0.1",
        "1e+16",
        "1e-05",
        "1.2345678901234568e+17",
    ] {
        let expected: f64 = text.parse().expect("rust parses exactly");
        let value: Value = read(&format!("{{\"f\": {text}}}")).expect("valid");
        let got = value["f"].as_f64().expect("a float");
        assert_eq!(got.to_bits(), expected.to_bits(), "{text}");
        let typed: Vec<f64> = read(&format!("[{text}]")).expect("valid");
        assert_eq!(typed[0].to_bits(), expected.to_bits(), "{text}");
        // And back: our text reads as the same float.
        let again: Vec<f64> =
            read(std::str::from_utf8(&write(&typed).expect("finite")).expect("utf-8"))
                .expect("valid");
        assert_eq!(again[0].to_bits(), expected.to_bits(), "{text}");
    }
}

#[test]
fn integers_at_the_64_bit_limits_stay_integers() {
    let value: Value = read("[18446744073709551615, -9223372036854775808, 0]").expect("fits");
    assert_eq!(value[0].as_u64(), Some(u64::MAX));
    assert_eq!(value[1].as_i64(), Some(i64::MIN));
    assert_eq!(
        value.to_string(),
        "[18446744073709551615,-9223372036854775808,0]"
    );
}

#[test]
fn a_wide_integer_in_a_value_is_kept_or_an_error() {
    let text = format!("{{\"n\": {TWO_POW_70}, \"f\": 966.5522268360373}}");
    let result = read::<Value>(&text);
    if serde_json_keeps_wide_integers() {
        let value = result.expect("arbitrary precision keeps it");
        assert_eq!(value["n"].to_string(), TWO_POW_70);
        assert_eq!(value["f"].as_f64(), Some(966.5522268360373));
        assert_eq!(
            &write(&value).expect("serialize")[..],
            format!("{{\"f\":966.5522268360373,\"n\":{TWO_POW_70}}}").as_bytes()
        );
    } else {
        assert_eq!(wide_error(result), (TWO_POW_70.to_owned(), 6));
    }
    // Inside nested values, maps and options the same holds.
    let nested = format!("{{\"a\": [1, {{\"b\": [-{TWO_POW_70}]}}]}}");
    let keeps = serde_json_keeps_wide_integers();
    match read::<HashMap<String, Option<Vec<Value>>>>(&nested) {
        Ok(map) if keeps => assert_eq!(
            map["a"].as_ref().expect("some")[1]["b"][0].to_string(),
            format!("-{TWO_POW_70}")
        ),
        other => assert_eq!(wide_error(other), (format!("-{TWO_POW_70}"), 17)),
    }
}

#[test]
fn item_types_that_hold_wide_integers_get_them_exactly() {
    #[derive(Serialize, Deserialize, Debug)]
    struct Wide {
        n: i128,
        u: u128,
        #[serde(default)]
        raw: Option<Box<RawValue>>,
    }
    let text = format!(
        "{{\"n\": -{TWO_POW_70}, \"u\": 340282366920938463463374607431768211455, \"raw\": [{TWO_POW_70}, -0, 1e+16], \"ignored\": {}}}",
        "9".repeat(300)
    );
    let wide: Wide = read(&text).expect("i128, u128, raw text and an ignored field");
    assert_eq!(wide.n, -(1i128 << 70));
    assert_eq!(wide.u, u128::MAX);
    assert_eq!(
        wide.raw.as_ref().expect("raw").get(),
        format!("[{TWO_POW_70}, -0, 1e+16]")
    );
    let out = write(&wide).expect("serialize");
    assert_eq!(
        std::str::from_utf8(&out).expect("utf-8"),
        format!(
            "{{\"n\":-{TWO_POW_70},\"u\":340282366920938463463374607431768211455,\"raw\":[{TWO_POW_70}, -0, 1e+16]}}"
        )
    );
    // A whole raw item keeps everything as written.
    let raw: Box<RawValue> = read(&text).expect("raw");
    assert_eq!(raw.get(), text);
}

#[test]
fn item_types_that_cannot_hold_a_wide_integer_make_the_item_an_error() {
    // A float field would get it rounded: refused, in every build.
    let (digits, offset) = wide_error(read::<HashMap<String, f64>>(&format!(
        "{{\"x\": 1.5, \"n\":{TWO_POW_70}}}"
    )));
    assert_eq!((digits.as_str(), offset), (TWO_POW_70, 15));
    let (digits, _) = wide_error(read::<Vec<f32>>("[1, 18446744073709551616]"));
    assert_eq!(digits, "18446744073709551616");
    // A 64-bit field: the same error (serde_json hands it over as a float).
    let (digits, _) = wide_error(read::<Vec<u64>>("[18446744073709551616]"));
    assert_eq!(digits, "18446744073709551616");
    // Beyond 128 bits an i128 field gets serde_json's range error.
    assert!(matches!(
        read::<i128>(&"9".repeat(40)),
        Err(DecodeError::Json(_))
    ));
    // Enums and untagged values see the same.
    #[derive(Serialize, Deserialize, Debug)]
    enum Reading {
        Float(f64),
        Pair { a: f64, b: f64 },
    }
    let (digits, offset) = wide_error(read::<Reading>(&format!("{{\"Float\": {TWO_POW_70}}}")));
    assert_eq!((digits.as_str(), offset), (TWO_POW_70, 10));
    assert!(
        wide_error(read::<Reading>(&format!(
            "{{\"Pair\": {{\"a\": 1, \"b\": -{TWO_POW_70}}}}}"
        )))
        .1 > 0
    );
    #[derive(Serialize, Deserialize, Debug)]
    #[serde(untagged)]
    enum Loose {
        Float(f64),
        Text(String),
    }
    assert!(read::<Loose>(TWO_POW_70).is_err());
}

#[test]
fn the_wide_integer_is_found_at_the_end_of_the_text_and_after_floats() {
    for (text, offset) in [
        ("[18446744073709551616]", 1),
        ("[18446744073709551616.5, 18446744073709551616]", 25),
        ("[1e30,-9223372036854775809]", 6),
        ("[1,\n18446744073709551616 ]", 4),
    ] {
        assert_eq!(wide_error(read::<Vec<f64>>(text)).1, offset, "{text}");
    }
    assert_eq!(wide_error(read::<f64>("18446744073709551616")).1, 0);
    assert_eq!(wide_error(read::<f64>(" 18446744073709551616\n")).1, 1);
}

#[test]
fn minus_zero_is_the_integer_zero_as_python_reads_it() {
    let value: Value = read("[-0, -0.0, 0]").expect("valid");
    if serde_json_keeps_wide_integers() {
        assert_eq!(value.to_string(), "[-0,-0.0,0]");
    } else {
        assert_eq!(value.to_string(), "[0,-0.0,0]");
    }
    assert_eq!(value[0].as_i64(), Some(0));
    let floats: Vec<f64> = read("[-0, -0.0]").expect("valid");
    assert_eq!(
        (floats[0].to_bits(), floats[1].to_bits()),
        (0f64.to_bits(), (-0f64).to_bits())
    );
}

#[test]
fn the_wide_integer_message_says_what_and_where() {
    let err = read::<Vec<f64>>(&format!("[{TWO_POW_70}]")).expect_err("float field");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "integer {TWO_POW_70} at byte 1 does not fit a 64-bit number; "
        )),
        "{message}"
    );
    assert!(message.contains("i128/u128"), "{message}");
    if !serde_json_keeps_wide_integers() {
        assert!(
            message.contains("enable feature `json-arbitrary-precision`"),
            "{message}"
        );
    }
    let huge = format!("-{}", "12345".repeat(60));
    let message = read::<f64>(&huge).expect_err("too wide").to_string();
    assert!(message.starts_with("integer -1234512345"), "{message}");
    assert!(
        message.contains("…34512345 (301 characters) at byte 0"),
        "{message}"
    );
    assert!(message.len() < 260, "{message}");
}

#[test]
fn non_finite_literals_are_a_clear_item_error() {
    for (text, literal, offset) in [
        ("{\"f\": NaN}", "NaN", 6),
        ("[1.5, Infinity]", "Infinity", 6),
        ("[-Infinity]", "-Infinity", 1),
        ("NaN", "NaN", 0),
        ("{\"a\": \"NaN\",\n \"b\": -Infinity}", "-Infinity", 19),
    ] {
        for result in [
            read::<Value>(text).map(drop),
            read::<Vec<f64>>(text).map(drop),
        ] {
            match result {
                Err(DecodeError::NonFiniteNumber {
                    literal: l,
                    offset: o,
                }) => {
                    assert_eq!((l.as_str(), o), (literal, offset), "{text}")
                }
                Err(DecodeError::Json(_)) if text.starts_with('{') => {} // Vec<f64> of an object
                other => panic!("{text}: {other:?}"),
            }
        }
        let message = read::<Value>(text).expect_err("not json").to_string();
        assert!(
            message.contains(&format!(
                "`{literal}` at byte {offset} is not a JSON number"
            )),
            "{message}"
        );
    }
    // A different syntax error before it stays serde_json's.
    assert!(matches!(
        read::<Value>("[1,, NaN]"),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(read::<Value>("[nan]"), Err(DecodeError::Json(_))));
}

#[test]
fn non_finite_floats_are_refused_when_writing() {
    #[derive(Serialize, Deserialize, Debug)]
    enum Shape {
        Circle { r: f64 },
        Point(f32),
    }
    let refused = |result: Result<Bytes, SerializeError>| match result {
        Err(SerializeError::NonFiniteFloat { value }) => value,
        other => panic!("expected a non-finite refusal, got {other:?}"),
    };
    assert!(refused(write(&f64::NAN)).is_nan());
    assert_eq!(refused(write(&vec![1.0, f64::INFINITY])), f64::INFINITY);
    assert_eq!(refused(write(&Some(f64::NEG_INFINITY))), f64::NEG_INFINITY);
    let map: BTreeMap<String, (u8, f64)> = [("a".to_owned(), (1, f64::NAN))].into();
    assert!(refused(write(&map)).is_nan());
    assert!(refused(write(&Shape::Circle { r: f64::NAN })).is_nan());
    assert_eq!(refused(write(&Shape::Point(f32::INFINITY))), f64::INFINITY);
    // Finite values are written exactly as serde_json writes them.
    let fine = (
        Shape::Circle { r: -0.0 },
        vec![Some(5e-324), None],
        Shape::Point(0.1),
    );
    assert_eq!(
        write(&fine).expect("finite")[..],
        serde_json::to_vec(&fine).expect("json")[..]
    );
    let message = write(&f64::NAN).expect_err("nan").to_string();
    assert_eq!(
        message,
        "item holds the non-finite float NaN, which JSON cannot hold"
    );
}

#[test]
fn the_guarded_path_reads_what_the_plain_one_does() {
    // The same item with and without a wide integer in an ignored field.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Item {
        s: String,
        f: Vec<f64>,
        n: Option<u64>,
        t: (bool, char),
        v: Value,
    }
    let body = r#""s": "é\"\\ 99999999999999999999", "f": [1e-05, -0.0, 5e-324], "n": null, "t": [true, "x"], "v": {"k": [1, "two", 3.5, null]}"#;
    let plain: Item = read(&format!("{{{body}}}")).expect("plain");
    let guarded: Item =
        read(&format!("{{\"skip\": -0, \"big\": {TWO_POW_70}, {body}}}")).expect("guarded");
    assert_eq!(plain, guarded);
    assert_eq!(plain.s, "é\"\\ 99999999999999999999");
}
