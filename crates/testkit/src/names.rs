//! Random names, so tests never share a stream.

use rand::Rng;

/// A stream name unique to this call: `ak-<prefix>-<16 hex digits>`.
///
/// Characters of `prefix` that a stream name cannot hold become `-`; the prefix is cut so the whole
/// name stays a valid Kinesis stream name.
pub fn random_stream_name(prefix: &str) -> String {
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(80)
        .collect();
    let suffix: u64 = rand::rng().random();
    format!("ak-{clean}-{suffix:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_distinct() {
        let a = random_stream_name("producer test/1");
        let b = random_stream_name("producer test/1");
        assert_ne!(a, b);
        assert!(a.starts_with("ak-producer-test-1-"), "{a}");
        async_kinesis::StreamRef::name_only(&a).expect("valid stream name");
        let long = random_stream_name(&"x".repeat(500));
        async_kinesis::StreamRef::name_only(&long).expect("long prefixes are cut");
    }
}
