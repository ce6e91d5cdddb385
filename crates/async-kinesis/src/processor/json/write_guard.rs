//! Writing an item: refusing non-finite floats.
//!
//! serde_json writes a NaN or infinite `f64`/`f32` as `null`, which a reader then takes for a
//! null: the value would change without a word. This adapter wraps the serializer and every
//! value handed to it, and refuses such a float instead.

use serde::ser::{
    self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};
use std::cell::Cell;
use std::fmt::Display;

/// Serializes `item` with `serializer`, refusing non-finite floats: on refusal the error is
/// serde's and `refused` holds the float.
pub(super) fn serialize_finite<T: Serialize + ?Sized, S: Serializer>(
    item: &T,
    serializer: S,
    refused: &Cell<Option<f64>>,
) -> Result<S::Ok, S::Error> {
    item.serialize(Finite {
        inner: serializer,
        refused,
    })
}

/// A serializer, or one of its compound parts, that refuses non-finite floats.
struct Finite<'r, S> {
    inner: S,
    refused: &'r Cell<Option<f64>>,
}

/// A value to be serialized by a [`Finite`] serializer.
struct FiniteValue<'a, 'r, T: ?Sized> {
    value: &'a T,
    refused: &'r Cell<Option<f64>>,
}

impl<T: Serialize + ?Sized> Serialize for FiniteValue<'_, '_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_finite(self.value, serializer, self.refused)
    }
}

impl<'r, S> Finite<'r, S> {
    fn value<'a, T: ?Sized>(&self, value: &'a T) -> FiniteValue<'a, 'r, T> {
        FiniteValue {
            value,
            refused: self.refused,
        }
    }

    fn refuse<E: ser::Error>(&self, value: f64) -> E {
        self.refused.set(Some(value));
        E::custom(format_args!("non-finite float {value} has no JSON form"))
    }
}

macro_rules! forward_serialize {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.inner.$method($($arg),*)
        }
    )*};
}

macro_rules! forward_compound {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $compound:ident),* $(,)?) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<Self::$compound, S::Error> {
            let refused = self.refused;
            let inner = self.inner.$method($($arg),*)?;
            Ok(Finite { inner, refused })
        }
    )*};
}

impl<'r, S: Serializer> Serializer for Finite<'r, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Finite<'r, S::SerializeSeq>;
    type SerializeTuple = Finite<'r, S::SerializeTuple>;
    type SerializeTupleStruct = Finite<'r, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Finite<'r, S::SerializeTupleVariant>;
    type SerializeMap = Finite<'r, S::SerializeMap>;
    type SerializeStruct = Finite<'r, S::SerializeStruct>;
    type SerializeStructVariant = Finite<'r, S::SerializeStructVariant>;

    forward_serialize! {
        serialize_bool(v: bool), serialize_i8(v: i8), serialize_i16(v: i16),
        serialize_i32(v: i32), serialize_i64(v: i64), serialize_i128(v: i128),
        serialize_u8(v: u8), serialize_u16(v: u16), serialize_u32(v: u32), serialize_u64(v: u64),
        serialize_u128(v: u128), serialize_char(v: char), serialize_str(v: &str),
        serialize_bytes(v: &[u8]), serialize_none(), serialize_unit(),
        serialize_unit_struct(name: &'static str),
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str),
    }

    forward_compound! {
        serialize_seq(len: Option<usize>) -> SerializeSeq,
        serialize_tuple(len: usize) -> SerializeTuple,
        serialize_tuple_struct(name: &'static str, len: usize) -> SerializeTupleStruct,
        serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> SerializeTupleVariant,
        serialize_map(len: Option<usize>) -> SerializeMap,
        serialize_struct(name: &'static str, len: usize) -> SerializeStruct,
        serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> SerializeStructVariant,
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        if !v.is_finite() {
            return Err(self.refuse(f64::from(v)));
        }
        self.inner.serialize_f32(v)
    }

    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        if !v.is_finite() {
            return Err(self.refuse(v));
        }
        self.inner.serialize_f64(v)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let value = self.value(value);
        self.inner.serialize_some(&value)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.value(value);
        self.inner.serialize_newtype_struct(name, &value)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.value(value);
        self.inner
            .serialize_newtype_variant(name, index, variant, &value)
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! compound {
    ($trait:ident, $($method:ident($($arg:ident: $ty:ty),*)),*) => {
        impl<S: $trait> $trait for Finite<'_, S> {
            type Ok = S::Ok;
            type Error = S::Error;

            $(fn $method<T: Serialize + ?Sized>(
                &mut self,
                $($arg: $ty,)*
                value: &T,
            ) -> Result<(), S::Error> {
                let value = self.value(value);
                self.inner.$method($($arg,)* &value)
            })*

            fn end(self) -> Result<S::Ok, S::Error> {
                self.inner.end()
            }
        }
    };
}

compound!(SerializeSeq, serialize_element());
compound!(SerializeTuple, serialize_element());
compound!(SerializeTupleStruct, serialize_field());
compound!(SerializeTupleVariant, serialize_field());
compound!(SerializeStruct, serialize_field(key: &'static str));
compound!(SerializeStructVariant, serialize_field(key: &'static str));
compound!(SerializeMap, serialize_key(), serialize_value());
