//! Serializers: how one item becomes bytes and back. The JSON one has a module of its own.

use super::error::{DecodeError, SerializeError};
use bytes::Bytes;
use std::fmt;

/// Turns one item into bytes and back. Implement it to plug your own format into
/// [`Composed`](super::Composed).
///
/// ```
/// use async_kinesis::processor::{DecodeError, SerializeError, Serializer};
/// use bytes::Bytes;
///
/// /// Items are `u64`s written as 8 big-endian bytes.
/// #[derive(Debug, Clone, Copy, Default)]
/// struct U64Be;
///
/// impl Serializer for U64Be {
///     type Item = u64;
///     fn serialize(&self, item: &u64) -> Result<Bytes, SerializeError> {
///         Ok(Bytes::copy_from_slice(&item.to_be_bytes()))
///     }
///     fn deserialize(&self, data: &Bytes) -> Result<u64, DecodeError> {
///         let bytes: [u8; 8] = data[..].try_into().map_err(|_| {
///             DecodeError::Custom(format!("{} bytes, want 8", data.len()).into())
///         })?;
///         Ok(u64::from_be_bytes(bytes))
///     }
/// }
/// ```
pub trait Serializer: Clone + Send + Sync + fmt::Debug + 'static {
    /// The item type.
    type Item: Send + 'static;
    /// Serializes an item. The item is borrowed, so on error the caller still has it.
    fn serialize(&self, item: &Self::Item) -> Result<Bytes, SerializeError>;
    /// Decodes one item from its bytes.
    fn deserialize(&self, data: &Bytes) -> Result<Self::Item, DecodeError>;
}

/// Raw bytes, unchanged in both directions.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerializer;

impl Serializer for BytesSerializer {
    type Item = Bytes;
    fn serialize(&self, item: &Bytes) -> Result<Bytes, SerializeError> {
        Ok(item.clone())
    }
    fn deserialize(&self, data: &Bytes) -> Result<Bytes, DecodeError> {
        Ok(data.clone())
    }
}

/// UTF-8 text (the Python library's `StringSerializer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerializer;

impl Serializer for StringSerializer {
    type Item = String;
    fn serialize(&self, item: &String) -> Result<Bytes, SerializeError> {
        Ok(Bytes::copy_from_slice(item.as_bytes()))
    }
    fn deserialize(&self, data: &Bytes) -> Result<String, DecodeError> {
        std::str::from_utf8(data)
            .map(str::to_owned)
            .map_err(DecodeError::Utf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_round_trip_and_invalid_utf8() {
        let s = StringSerializer;
        let text = "héllo ✓ 😀".to_owned();
        let bytes = s.serialize(&text).expect("serialize");
        assert_eq!(&bytes[..], text.as_bytes());
        assert_eq!(s.deserialize(&bytes).expect("decode"), text);
        let err = s
            .deserialize(&Bytes::from_static(b"\xff\xfe"))
            .expect_err("invalid utf-8");
        assert!(matches!(err, DecodeError::Utf8(_)));
    }

    #[test]
    fn bytes_pass_through() {
        let b = Bytes::from_static(b"\x00\xffraw");
        assert_eq!(BytesSerializer.serialize(&b).expect("ser"), b);
        assert_eq!(BytesSerializer.deserialize(&b).expect("de"), b);
    }
}
