//! The number tokens of a JSON text that serde_json would not read as written.
//!
//! serde_json keeps an integer in 64 bits; a wider one (and `-0`) it parses into an `f64`
//! without a word. And Python's `json` writes a non-finite float as a bare `NaN`, `Infinity` or
//! `-Infinity`, which is not JSON. This lexer finds both, so that the first can be checked
//! against the item type and the second explained. It does not validate: on a valid JSON text
//! it sees exactly the tokens serde_json sees; on an invalid one serde_json reports the error.

use memchr::memchr2;
use std::ops::Range;

/// One token of interest outside strings.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A number; `integer` when it has neither a fraction nor an exponent.
    Number { span: Range<usize>, integer: bool },
    /// A run of letters, possibly after a `-` (`true`, `null`, `NaN`, `-Infinity`, ...).
    Word(Range<usize>),
}

/// Walks the tokens of a JSON text, skipping strings.
struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Moves past a string whose opening quote is at `self.pos - 1`.
    fn skip_string(&mut self) {
        while let Some(i) = memchr2(b'"', b'\\', &self.data[self.pos..]) {
            let at = self.pos + i;
            if self.data[at] == b'"' {
                self.pos = at + 1;
                return;
            }
            // A backslash escapes the next byte (`\uXXXX` carries no quote).
            self.pos = (at + 2).min(self.data.len());
        }
        self.pos = self.data.len();
    }

    fn skip_while(&mut self, accept: impl Fn(u8) -> bool) {
        while self.pos < self.data.len() && accept(self.data[self.pos]) {
            self.pos += 1;
        }
    }

    /// A number (or a `-` before a word) starting at `self.pos`.
    fn number(&mut self) -> Token {
        let start = self.pos;
        if self.data[start] == b'-' {
            self.pos += 1;
            if self.data.get(self.pos).is_some_and(u8::is_ascii_alphabetic) {
                self.skip_while(|b| b.is_ascii_alphabetic());
                return Token::Word(start..self.pos);
            }
        }
        self.skip_while(|b| b.is_ascii_digit());
        let integer = !matches!(self.data.get(self.pos), Some(b'.' | b'e' | b'E'));
        if !integer {
            self.skip_while(|b| matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'));
        }
        Token::Number {
            span: start..self.pos,
            integer,
        }
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        while let Some(&byte) = self.data.get(self.pos) {
            match byte {
                b'"' => {
                    self.pos += 1;
                    self.skip_string();
                }
                b'-' | b'0'..=b'9' => return Some(self.number()),
                b'a'..=b'z' | b'A'..=b'Z' => {
                    let start = self.pos;
                    self.skip_while(|b| b.is_ascii_alphabetic());
                    return Some(Token::Word(start..self.pos));
                }
                _ => self.pos += 1,
            }
        }
        None
    }
}

/// Whether serde_json parses this integer token into an `f64`: beyond `u64::MAX`, below
/// `i64::MIN`, or `-0`.
fn read_as_float(token: &[u8]) -> bool {
    let (digits, limit): (&[u8], &[u8]) = match token.strip_prefix(b"-") {
        Some(b"0") => return true,
        Some(digits) => (digits, b"9223372036854775808"),
        None => (token, b"18446744073709551615"),
    };
    // Same length: decimal digits compare like the numbers (JSON has no leading zeros).
    digits.len() > limit.len() || (digits.len() == limit.len() && digits > limit)
}

/// The spans of the integer tokens of `data` that serde_json would read as floats, in order.
/// Empty, without allocating, for almost every item.
pub(super) fn integers_read_as_floats(data: &[u8]) -> Vec<Range<usize>> {
    Lexer::new(data)
        .filter_map(|token| match token {
            Token::Number {
                span,
                integer: true,
            } if read_as_float(&data[span.clone()]) => Some(span),
            _ => None,
        })
        .collect()
}

/// The span of the first bare `NaN`, `Infinity` or `-Infinity` of `data`, outside strings.
pub(super) fn first_non_finite_literal(data: &[u8]) -> Option<Range<usize>> {
    Lexer::new(data).find_map(|token| match token {
        Token::Word(span) if matches!(&data[span.clone()], b"NaN" | b"Infinity" | b"-Infinity") => {
            Some(span)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(text: &str) -> Vec<&str> {
        integers_read_as_floats(text.as_bytes())
            .into_iter()
            .map(|span| &text[span])
            .collect()
    }

    #[test]
    fn integers_at_the_64_bit_limits() {
        assert!(wide("[18446744073709551615, -9223372036854775808, 0, -1, 12]").is_empty());
        assert_eq!(
            wide("[18446744073709551616,-9223372036854775809,-0]"),
            ["18446744073709551616", "-9223372036854775809", "-0"]
        );
        assert_eq!(
            wide("{\"n\": 1180591620717411303424}"),
            ["1180591620717411303424"]
        );
        let hundreds = format!("-{}", "9".repeat(300));
        assert_eq!(wide(&hundreds), [hundreds.as_str()]);
    }

    #[test]
    fn floats_and_strings_are_not_integers() {
        assert!(wide("[1e400, 1.5, -0.0, -0e1, 123456789012345678901234.5, 1E+30]").is_empty());
        assert!(wide(r#"{"123456789012345678901234": "-0 99999999999999999999"}"#).is_empty());
        // Escaped quotes and backslashes inside strings do not end them early.
        assert!(wide(r#"["a\"-0 \\", "\\\"99999999999999999999"]"#).is_empty());
        assert_eq!(
            wide(r#"["\\", 99999999999999999999]"#),
            ["99999999999999999999"]
        );
    }

    #[test]
    fn non_finite_literals_outside_strings() {
        let find = |text: &'static str| first_non_finite_literal(text.as_bytes()).map(|s| &text[s]);
        assert_eq!(find("[1, NaN]"), Some("NaN"));
        assert_eq!(find("{\"a\": -Infinity}"), Some("-Infinity"));
        assert_eq!(find("[true, null, false, Infinity]"), Some("Infinity"));
        assert_eq!(find("[\"NaN\", \"Infinity\", nan, inf]"), None);
        assert_eq!(find("[NaNa]"), None);
    }

    #[test]
    fn never_panics_on_truncated_text() {
        for text in [
            "\"",
            "\"\\",
            "-",
            "[1e",
            "-I",
            "\"abc\\\"",
            "1.",
            "\u{00e9}-0",
        ] {
            let _ = integers_read_as_floats(text.as_bytes());
            let _ = first_non_finite_literal(text.as_bytes());
        }
        assert_eq!(wide("1\"\\"), Vec::<&str>::new());
        assert_eq!(wide("-0"), ["-0"]);
    }
}
