//! Msgpack serializer (feature `msgpack`).

use super::error::{DecodeError, SerializeError};
use super::serializer::Serializer;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;

/// Msgpack through serde (the Python library's `MsgpackSerializer`: `use_bin_type=True`,
/// `raw=False`). Byte strings are written with the bin type, text with str; structs are written
/// as maps (field names kept), like Python dicts.
///
/// `T` defaults to [`rmpv::Value`], which keeps binary and text apart for untyped items.
pub struct MsgpackSerializer<T = rmpv::Value> {
    _item: PhantomData<fn() -> T>,
}

impl<T> MsgpackSerializer<T> {
    /// A msgpack serializer for items of type `T`.
    pub const fn new() -> Self {
        Self { _item: PhantomData }
    }
}

impl<T> Default for MsgpackSerializer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for MsgpackSerializer<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for MsgpackSerializer<T> {}

impl<T> fmt::Debug for MsgpackSerializer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsgpackSerializer<{}>", std::any::type_name::<T>())
    }
}

impl<T> Serializer for MsgpackSerializer<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = T;
    fn serialize(&self, item: &T) -> Result<Bytes, SerializeError> {
        super::scratch::write_bytes(|buf| rmp_serde::encode::write_named(buf, item))
            .map_err(SerializeError::Msgpack)
    }
    fn deserialize(&self, data: &Bytes) -> Result<T, DecodeError> {
        rmp_serde::from_slice(data).map_err(DecodeError::Msgpack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    #[test]
    fn binary_and_text_keep_their_types() {
        let s = MsgpackSerializer::<Value>::new();
        let v = Value::Array(vec![Value::Binary(vec![0, 255]), Value::String("é".into())]);
        let bytes = s.serialize(&v).expect("serialize");
        // fixarray(2), bin8 len 2, fixstr len 2
        assert_eq!(&bytes[..], &[0x92, 0xc4, 2, 0, 255, 0xa2, 0xc3, 0xa9]);
        assert_eq!(s.deserialize(&bytes).expect("decode"), v);
    }

    #[test]
    fn structs_are_maps() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct P {
            x: u8,
        }
        let s = MsgpackSerializer::<P>::new();
        let bytes = s.serialize(&P { x: 1 }).expect("serialize");
        assert_eq!(&bytes[..], &[0x81, 0xa1, b'x', 1]);
        assert_eq!(s.deserialize(&bytes).expect("decode"), P { x: 1 });
    }

    #[test]
    fn invalid_msgpack_is_an_error() {
        let s = MsgpackSerializer::<Value>::new();
        let err = s
            .deserialize(&Bytes::from_static(&[0xc4, 10, 1]))
            .expect_err("truncated bin");
        assert!(matches!(err, DecodeError::Msgpack(_)));
    }
}
