//! JSON numbers as Python writes them, for the exact-number tests: strategies for floats and
//! integers, Python's float `repr`, and comparing what was read with what was written.
#![allow(clippy::unwrap_used)]

use async_kinesis::processor::{DecodeError, ReadError, serde_json_keeps_wide_integers};
use proptest::prelude::*;
use serde_json::{Number, Value};

/// One number as written by Python: a float, or an integer of any size (its digits).
#[derive(Debug, Clone, PartialEq)]
pub enum Num {
    /// A float; Python's `json` writes the non-finite ones as `NaN`, `Infinity`, `-Infinity`.
    Float(f64),
    /// An integer, written as these digits with an optional `-`.
    Int(String),
}

impl Num {
    /// The JSON text Python writes for it.
    pub fn text(&self) -> String {
        match self {
            Num::Float(x) if x.is_nan() => "NaN".to_owned(),
            Num::Float(x) if x.is_infinite() => {
                if *x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
            }
            Num::Float(x) => python_repr(*x),
            Num::Int(digits) => digits.clone(),
        }
    }

    /// An integer outside `i64::MIN ..= u64::MAX`.
    pub fn is_wide(&self) -> bool {
        match self {
            Num::Float(_) => false,
            Num::Int(digits) => digits.parse::<i64>().is_err() && digits.parse::<u64>().is_err(),
        }
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal point falls within 16 digits (`1e16` → `1e+16`, `0.0001` → `0.0001`, `1e-05`), with
/// `.0` on integral values and at least two exponent digits. Where two shortest forms are
/// equally near the float, Python takes the even last digit and Rust's digits may take the other
/// (`2235959512563721.2` / `.3` for `…721.25`): the same float either way.
pub fn python_repr(x: f64) -> String {
    assert!(x.is_finite());
    // Rust's `{:e}` prints the same shortest round-trip digits: `-1.2345e17`, `5e-324`, `0e0`.
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap();
    let exponent: i32 = exponent.parse().unwrap();
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // The decimal point sits after `point` digits.
    let point = exponent + 1;
    let body = if point <= -4 || point > 16 {
        let fraction = if digits.len() > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        let e_sign = if exponent < 0 { '-' } else { '+' };
        format!("{}{fraction}e{e_sign}{:02}", &digits[..1], exponent.abs())
    } else if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    format!("{sign}{body}")
}

/// The extremes every run should see at least sometimes.
pub const EXTREME_FLOATS: [f64; 16] = [
    5e-324,
    -5e-324,
    2.225_073_858_507_201e-308,
    f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    0.0,
    -0.0,
    1e16,
    1e-5,
    1.234_567_890_123_456_8e17,
    966.552_226_836_037_3,
    -2.5e-308,
    0.1,
    1e15,
    9_007_199_254_740_992.0,
];

/// Finite floats of every kind: any bit pattern, subnormals, decimal-looking values, extremes.
pub fn float() -> impl Strategy<Value = f64> {
    use prop::num::f64 as f;
    prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |x| x.is_finite()),
        2 => f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO,
        2 => (-1_000_000_000i64..1_000_000_000, 0i32..12).prop_map(|(m, k)| m as f64 / 10f64.powi(k)),
        1 => prop::sample::select(&EXTREME_FLOATS[..]),
    ]
}

/// Integer digit strings: 64- and 128-bit values, their limits, and up to hundreds of digits.
pub fn integer() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<u64>().prop_map(|u| u.to_string()),
        1 => any::<i128>().prop_map(|i| i.to_string()),
        1 => any::<u128>().prop_map(|u| u.to_string()),
        2 => "-?[1-9][0-9]{19,300}",
        1 => prop::sample::select(&[
            "0",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1180591620717411303424",
            "340282366920938463463374607431768211455",
            "340282366920938463463374607431768211456",
            "-170141183460469231731687303715884105728",
            "-170141183460469231731687303715884105729",
        ][..]).prop_map(str::to_owned),
    ]
}

/// Any number Python writes.
pub fn num() -> impl Strategy<Value = Num> {
    prop_oneof![float().prop_map(Num::Float), integer().prop_map(Num::Int)]
}

/// The two ways Python writes JSON: `json.dumps` (`", "`, `": "`) and compact (`","`, `":"`, as
/// with `ujson` or `separators=(",", ":")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The standard library's default separators.
    Stdlib,
    /// Compact separators.
    Compact,
}

impl Style {
    /// The item separator and the key separator.
    pub fn separators(self) -> (&'static str, &'static str) {
        match self {
            Style::Stdlib => (", ", ": "),
            Style::Compact => (",", ":"),
        }
    }
}

/// Where an item's numbers sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The first number alone.
    Bare,
    /// A list of the numbers.
    List,
    /// An object `{"k0": n0, "k1": n1, ...}`.
    Object,
}

/// One item: numbers in a shape.
#[derive(Debug, Clone)]
pub struct NumItem {
    /// Where the numbers sit.
    pub shape: Shape,
    /// The numbers, in document order (`Bare` holds exactly one).
    pub nums: Vec<Num>,
}

impl NumItem {
    /// The item as Python writes it in `style`.
    pub fn text(&self, style: Style) -> String {
        let (sep, colon) = style.separators();
        let texts: Vec<String> = self.nums.iter().map(Num::text).collect();
        match self.shape {
            Shape::Bare => texts[0].clone(),
            Shape::List => format!("[{}]", texts.join(sep)),
            Shape::Object => {
                let fields: Vec<String> = texts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("\"k{i}\"{colon}{t}"))
                    .collect();
                format!("{{{}}}", fields.join(sep))
            }
        }
    }
}

/// Items of 1–6 numbers in any shape (at most 10 per object, so keys sort in document order).
pub fn num_item() -> impl Strategy<Value = NumItem> {
    prop_oneof![
        num().prop_map(|n| NumItem {
            shape: Shape::Bare,
            nums: vec![n]
        }),
        prop::collection::vec(num(), 0..6).prop_map(|nums| NumItem {
            shape: Shape::List,
            nums
        }),
        prop::collection::vec(num(), 0..6).prop_map(|nums| NumItem {
            shape: Shape::Object,
            nums
        }),
    ]
}

/// The numbers of a value in document order (object keys sort as `k0 < k1 < … < k9`).
pub fn numbers_in(value: &Value) -> Vec<&Number> {
    match value {
        Value::Number(n) => vec![n],
        Value::Array(items) => items.iter().flat_map(numbers_in).collect(),
        Value::Object(fields) => fields.values().flat_map(numbers_in).collect(),
        _ => Vec::new(),
    }
}

/// Whether `got` is the number written: the same `f64` bit for bit (a float, not an integer), or
/// the same integer digits.
pub fn same_number(got: &Number, written: &Num) -> bool {
    match written {
        Num::Float(x) => {
            !got.is_i64() && !got.is_u64() && got.as_f64().map(f64::to_bits) == Some(x.to_bits())
        }
        Num::Int(digits) => got.to_string() == *digits,
    }
}

/// Checks one reader output against the numbers written into it, in document order: each the
/// same number; or, when one is non-finite, an error naming the first such literal; or, when
/// this build's `serde_json::Value` cannot hold an integer, an error naming the first one.
pub fn check_numbers(got: &Result<Value, ReadError>, nums: &[Num]) -> Result<(), String> {
    let non_finite = nums
        .iter()
        .find(|n| matches!(n, Num::Float(x) if !x.is_finite()));
    let refused = nums
        .iter()
        .find(|n| n.is_wide() && !serde_json_keeps_wide_integers());
    match (got, non_finite, refused) {
        (Ok(value), None, None) => {
            let found = numbers_in(value);
            if found.len() != nums.len() {
                return Err(format!(
                    "{} numbers in {value}, {} written",
                    found.len(),
                    nums.len()
                ));
            }
            for (got, written) in found.iter().zip(nums) {
                if !same_number(got, written) {
                    return Err(format!("read {got} where {} was written", written.text()));
                }
            }
            Ok(())
        }
        (
            Err(ReadError::Item {
                source: DecodeError::NonFiniteNumber { literal, .. },
                ..
            }),
            Some(first),
            _,
        ) if *literal == first.text() => Ok(()),
        (
            Err(ReadError::Item {
                source: DecodeError::WideInteger { digits, .. },
                ..
            }),
            None,
            Some(Num::Int(first)),
        ) if digits == first => Ok(()),
        (other, non_finite, refused) => Err(format!(
            "{other:?}, expected {}",
            match (non_finite, refused) {
                (Some(n), _) => format!("a refusal of {}", n.text()),
                (None, Some(n)) => format!("a refusal of {}", n.text()),
                (None, None) => "the numbers".to_owned(),
            }
        )),
    }
}
