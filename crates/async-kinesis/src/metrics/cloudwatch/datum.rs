//! CloudWatch metric data as we build them, and their packing into PutMetricData calls within
//! the service's limits. Pure: no I/O, no clock.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::metrics::catalog::MetricUnit;

/// Most metric data in one PutMetricData call.
pub(crate) const MAX_DATA_PER_CALL: usize = 1_000;
/// Most bytes in one PutMetricData request (1 MB), less room for the request's own envelope.
pub(crate) const MAX_CALL_BYTES: usize = 1_000_000 - 16 * 1024;
/// Most distinct values in one datum's `Values` (and `Counts`).
pub(crate) const MAX_VALUES_PER_DATUM: usize = 150;
/// CloudWatch refuses values of a larger magnitude.
const MAX_MAGNITUDE: f64 = 1.174_271e108;
/// CloudWatch refuses non-zero values of a smaller magnitude; they are sent as 0.
const MIN_MAGNITUDE: f64 = 8.515_920e-109;
/// Significant digits kept of histogram samples: 0.5 % relative error at most, and a bounded
/// number of distinct values per decade (900), so a busy histogram stays a few data per period.
const HISTOGRAM_DIGITS: i32 = 3;

/// One metric datum.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Datum {
    pub(crate) name: String,
    /// Sorted by name.
    pub(crate) dimensions: Vec<(String, String)>,
    pub(crate) unit: Option<MetricUnit>,
    pub(crate) timestamp: SystemTime,
    pub(crate) value: DatumValue,
}

/// A datum's value: one number, or a distribution of values with their counts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DatumValue {
    Single(f64),
    Distribution { values: Vec<f64>, counts: Vec<f64> },
}

impl Datum {
    /// An upper bound of the datum's size in a request body. The client sends CloudWatch's
    /// query protocol: every field is a form parameter `MetricData.member.<i>.<field>=<value>&`,
    /// values percent-encoded (at most 3 bytes per byte), numbers at most 25 characters.
    pub(crate) fn encoded_size_bound(&self) -> usize {
        const PREFIX: usize = "MetricData.member.1000.&".len();
        const NUMBER: usize = 25;
        // MetricName, Timestamp, Unit, StorageResolution, Value: names and values.
        const FIXED: usize = 5 * PREFIX + 60 + 3 * NUMBER + "2024-01-01T00:00:00.000Z".len() + 40;
        let dimensions: usize = self
            .dimensions
            .iter()
            .map(|(name, value)| {
                2 * (PREFIX + "Dimensions.member.30.Value=".len()) + 3 * (name.len() + value.len())
            })
            .sum();
        let values = match &self.value {
            DatumValue::Single(_) => 0,
            DatumValue::Distribution { values, counts } => {
                (values.len() + counts.len()) * (PREFIX + "Values.member.150=".len() + NUMBER)
            }
        };
        FIXED + 3 * self.name.len() + dimensions + values
    }
}

/// A value CloudWatch accepts: finite and within its magnitude range (tiny values become 0).
pub(crate) fn acceptable(value: f64) -> Option<f64> {
    if !value.is_finite() || value.abs() > MAX_MAGNITUDE {
        None
    } else if value.abs() < MIN_MAGNITUDE {
        Some(0.0)
    } else {
        Some(value)
    }
}

/// `value` rounded to [`HISTOGRAM_DIGITS`] significant digits.
pub(crate) fn quantize(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let magnitude = value.abs().log10().floor() as i32;
    let exponent = HISTOGRAM_DIGITS - 1 - magnitude;
    // Multiply or divide by an exact power of ten, never by an inexact 0.1^k.
    let rounded = if exponent >= 0 {
        let scale = 10f64.powi(exponent);
        (value * scale).round() / scale
    } else {
        let scale = 10f64.powi(-exponent);
        (value / scale).round() * scale
    };
    if rounded.is_finite() { rounded } else { value }
}

/// Samples of one histogram series within one period: distinct (quantized) values and counts.
#[derive(Debug, Default, Clone)]
pub(crate) struct Samples {
    counts: HashMap<u64, u64>,
    /// Samples CloudWatch would refuse (not finite, too large).
    pub(crate) refused: u64,
}

impl Samples {
    pub(crate) fn add(&mut self, value: f64) {
        match acceptable(quantize(value)) {
            // +0.0 and -0.0 are one value.
            Some(value) => *self.counts.entry((value + 0.0).to_bits()).or_default() += 1,
            None => self.refused += 1,
        }
    }

    /// Values and counts, ascending by value, in chunks CloudWatch takes in one datum.
    pub(crate) fn distributions(&self) -> Vec<DatumValue> {
        let mut pairs: Vec<(f64, u64)> = self
            .counts
            .iter()
            .map(|(&bits, &count)| (f64::from_bits(bits), count))
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        pairs
            .chunks(MAX_VALUES_PER_DATUM)
            .map(|chunk| DatumValue::Distribution {
                values: chunk.iter().map(|(v, _)| *v).collect(),
                counts: chunk.iter().map(|(_, c)| *c as f64).collect(),
            })
            .collect()
    }
}

/// Splits `data` into PutMetricData calls: each at most [`MAX_DATA_PER_CALL`] data and
/// [`MAX_CALL_BYTES`] bytes (by [`Datum::encoded_size_bound`]), in order.
pub(crate) fn into_calls(data: Vec<Datum>) -> Vec<Vec<Datum>> {
    let mut calls = Vec::new();
    let mut call = Vec::new();
    let mut bytes = 0;
    for datum in data {
        let size = datum.encoded_size_bound();
        if !call.is_empty() && (call.len() == MAX_DATA_PER_CALL || bytes + size > MAX_CALL_BYTES) {
            calls.push(std::mem::take(&mut call));
            bytes = 0;
        }
        bytes += size;
        call.push(datum);
    }
    if !call.is_empty() {
        calls.push(call);
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn datum(name: &str, dims: usize, value: DatumValue) -> Datum {
        Datum {
            name: name.to_owned(),
            dimensions: (0..dims)
                .map(|i| (format!("dim{i}"), "v".repeat(200)))
                .collect(),
            unit: Some(MetricUnit::Count),
            timestamp: SystemTime::UNIX_EPOCH,
            value,
        }
    }

    #[test]
    fn quantizing_keeps_three_significant_digits() {
        assert_eq!(quantize(0.0), 0.0);
        assert_eq!(quantize(500.0), 500.0);
        assert_eq!(quantize(123.0), 123.0);
        assert_eq!(quantize(1234.0), 1230.0);
        assert_eq!(quantize(-0.012_345), -0.0123);
        assert!((quantize(0.000_123_456) - 0.000_123).abs() < 1e-12);
        assert_eq!(quantize(9.996), 10.0);
    }

    #[test]
    fn values_cloudwatch_refuses_are_counted_not_sent() {
        let mut samples = Samples::default();
        for value in [
            f64::NAN,
            f64::INFINITY,
            1e200,
            1e-200,
            0.0,
            -0.0,
            2.0,
            2.0001,
        ] {
            samples.add(value);
        }
        assert_eq!(samples.refused, 3);
        assert_eq!(
            samples.distributions(),
            [DatumValue::Distribution {
                values: vec![0.0, 2.0],
                counts: vec![3.0, 2.0],
            }]
        );
    }

    #[test]
    fn a_distribution_has_at_most_150_values() {
        let mut samples = Samples::default();
        for i in 0..400 {
            for _ in 0..=(i % 3) {
                samples.add(f64::from(i));
            }
        }
        let chunks = samples.distributions();
        assert_eq!(chunks.len(), 3);
        let mut total = 0.0;
        let mut previous = f64::MIN;
        for chunk in &chunks {
            let DatumValue::Distribution { values, counts } = chunk else {
                panic!("{chunk:?}")
            };
            assert!(values.len() <= MAX_VALUES_PER_DATUM);
            assert_eq!(values.len(), counts.len());
            assert!(values.iter().all(|v| *v > previous), "ascending, distinct");
            previous = *values.last().expect("not empty");
            total += counts.iter().sum::<f64>();
        }
        assert_eq!(total, (0..400).map(|i| f64::from(i % 3 + 1)).sum::<f64>());
    }

    #[test]
    fn calls_hold_at_most_1000_data() {
        let data: Vec<Datum> = (0..2_500)
            .map(|i| datum(&format!("m{i}"), 0, DatumValue::Single(1.0)))
            .collect();
        let calls = into_calls(data);
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            [1_000, 1_000, 500]
        );
        assert_eq!(calls[1][0].name, "m1000", "order kept");
    }

    #[test]
    fn calls_stay_under_one_megabyte() {
        let big = DatumValue::Distribution {
            values: vec![1.0; 150],
            counts: vec![1.0; 150],
        };
        let data: Vec<Datum> = (0..1_000).map(|_| datum("m", 10, big.clone())).collect();
        let per_datum = data[0].encoded_size_bound();
        let calls = into_calls(data);
        assert!(calls.len() > 1);
        assert!(
            per_datum > 150 * 2 * 60,
            "a distribution's form parameters are counted"
        );
        for (i, call) in calls.iter().enumerate() {
            let bytes: usize = call.iter().map(Datum::encoded_size_bound).sum();
            assert!(bytes <= MAX_CALL_BYTES);
            if i + 1 < calls.len() {
                assert!(
                    bytes + per_datum > MAX_CALL_BYTES,
                    "full before the next call"
                );
            }
        }
        assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 1_000);
    }

    proptest! {
        #[test]
        fn quantized_values_are_within_half_a_percent(value in -1e100f64..1e100) {
            let rounded = quantize(value);
            prop_assert!((rounded - value).abs() <= value.abs() * 0.005 + f64::MIN_POSITIVE);
        }

        #[test]
        fn splitting_keeps_every_datum_in_order(sizes in prop::collection::vec(0usize..150, 0..3000)) {
            let data: Vec<Datum> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| datum(&i.to_string(), 1, DatumValue::Distribution {
                    values: vec![1.0; *n],
                    counts: vec![1.0; *n],
                }))
                .collect();
            let calls = into_calls(data.clone());
            for call in &calls {
                prop_assert!(!call.is_empty() && call.len() <= MAX_DATA_PER_CALL);
                prop_assert!(call.iter().map(Datum::encoded_size_bound).sum::<usize>() <= MAX_CALL_BYTES);
            }
            prop_assert_eq!(calls.concat(), data);
        }
    }
}
