//! `--rate N/s`: an overall pace for `put`. Pure: times are passed in.

use std::time::Duration;

/// At most this many records per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    per_second: f64,
}

impl Rate {
    /// Parses `100`, `100/s`, `2.5/s` or `600/m`.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (count, unit) = match text.split_once('/') {
            Some((count, unit)) => (count, unit),
            None => (text, "s"),
        };
        let seconds = match unit {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("{text:?}: the unit must be /s, /m or /h")),
        };
        match count.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 => Ok(Self {
                per_second: n / seconds,
            }),
            _ => Err(format!(
                "{text:?}: a rate is a positive number of records per second, e.g. 100/s"
            )),
        }
    }

    /// When record `index` (0-based) may go, counted from the start.
    pub(crate) fn due(self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_schedule() {
        let rate = Rate::parse("100/s").expect("valid");
        assert_eq!(rate.due(0), Duration::ZERO);
        assert_eq!(rate.due(100), Duration::from_secs(1));
        assert_eq!(Rate::parse("100"), Ok(rate));
        let slow = Rate::parse("60/m").expect("valid");
        assert_eq!(slow.due(3), Duration::from_secs(3));
        for bad in ["0/s", "-1/s", "x/s", "10/d", "inf"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }
}
