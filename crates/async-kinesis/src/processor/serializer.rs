//! Serializers: how one item becomes bytes and back.

use super::error::{DecodeError, SerializeError};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;

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

/// JSON through serde (the Python library's `JsonSerializer`). Writes compact JSON; reads any
/// valid JSON, including the `", "`/`": "` separators of Python's `json` module.
///
/// `T` defaults to [`serde_json::Value`] for untyped items.
pub struct JsonSerializer<T = serde_json::Value> {
    // fn() -> T: the serializer holds no T, so it is Send + Sync whatever T is.
    _item: PhantomData<fn() -> T>,
}

impl<T> JsonSerializer<T> {
    /// A JSON serializer for items of type `T`.
    pub const fn new() -> Self {
        Self { _item: PhantomData }
    }
}

impl<T> Default for JsonSerializer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonSerializer<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for JsonSerializer<T> {}

impl<T> fmt::Debug for JsonSerializer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonSerializer<{}>", std::any::type_name::<T>())
    }
}

impl<T> Serializer for JsonSerializer<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = T;
    fn serialize(&self, item: &T) -> Result<Bytes, SerializeError> {
        super::scratch::write_bytes(|buf| serde_json::to_writer(buf, item))
            .map_err(SerializeError::Json)
    }
    fn deserialize(&self, data: &Bytes) -> Result<T, DecodeError> {
        serde_json::from_slice(data).map_err(DecodeError::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn json_reads_python_separators_and_writes_compact() {
        let s = JsonSerializer::<serde_json::Value>::new();
        let value = s
            .deserialize(&Bytes::from_static(b"{\"a\": [1, 2], \"b\": \"\\u00e9\"}"))
            .expect("python json");
        assert_eq!(value, json!({"a": [1, 2], "b": "é"}));
        let out = s.serialize(&value).expect("serialize");
        assert_eq!(&out[..], "{\"a\":[1,2],\"b\":\"é\"}".as_bytes());
        let err = s
            .deserialize(&Bytes::from_static(b"{\"a\":"))
            .expect_err("truncated");
        assert!(matches!(err, DecodeError::Json(_)));
    }

    #[test]
    fn json_typed_rejects_wrong_shape() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Point {
            x: i32,
            y: i32,
        }
        let s = JsonSerializer::<Point>::new();
        let p = Point { x: 1, y: -2 };
        let bytes = s.serialize(&p).expect("serialize");
        assert_eq!(s.deserialize(&bytes).expect("decode"), p);
        assert!(s.deserialize(&Bytes::from_static(b"[1,2,3]")).is_err());
    }

    #[test]
    fn json_serialize_error_is_typed() {
        use std::collections::HashMap;
        let s = JsonSerializer::<HashMap<Vec<u8>, u8>>::new();
        let mut map = HashMap::new();
        map.insert(vec![1u8], 1u8);
        assert!(matches!(s.serialize(&map), Err(SerializeError::Json(_))));
    }

    #[test]
    fn bytes_pass_through() {
        let b = Bytes::from_static(b"\x00\xffraw");
        assert_eq!(BytesSerializer.serialize(&b).expect("ser"), b);
        assert_eq!(BytesSerializer.deserialize(&b).expect("de"), b);
    }
}
