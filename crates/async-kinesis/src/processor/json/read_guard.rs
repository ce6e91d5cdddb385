//! Reading an item that holds integers serde_json would turn into floats.
//!
//! serde_json hands an integer beyond 64 bits (or `-0`) to the item's visitor as an `f64`.
//! Only the item type knows whether it can hold the integer: an `i128`/`u128` field asks for it
//! with `deserialize_i128`/`deserialize_u128` and gets it exactly, an ignored field never sees
//! it, and with serde_json's `arbitrary_precision` a `serde_json::Value` receives it as text. So
//! this adapter wraps every visitor of the item and refuses exactly the `visit_f64` calls that
//! carry one of those integers; `-0` is handed over as the integer `0`, as Python reads it.
//!
//! Which token a `visit_f64` belongs to is told by the position: serde_json reads the item
//! through a counting reader and calls the visitor right after the number, having peeked one
//! byte past it. This slower path runs only for items that hold such integers.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use std::cell::Cell;
use std::fmt;
use std::io;
use std::ops::Range;

/// What the reader and the visitors share.
struct Watch<'a> {
    data: &'a [u8],
    /// Bytes serde_json has taken from the reader.
    consumed: Cell<usize>,
    /// The integer tokens serde_json reads as floats, in order.
    wide: &'a [Range<usize>],
    /// The integer refused, as an index into `wide`.
    refused: Cell<Option<usize>>,
}

impl Watch<'_> {
    /// The integer token that serde_json has just parsed, if it is one of `wide`.
    fn integer_just_read(&self) -> Option<usize> {
        let consumed = self.consumed.get();
        // One byte peeked past the number, or none at the end of the text.
        let ends = [consumed.checked_sub(1), Some(consumed)];
        ends.into_iter()
            .flatten()
            .find_map(|end| self.wide.binary_search_by_key(&end, |span| span.end).ok())
    }
}

/// The item's bytes, counted as serde_json takes them.
struct CountingReader<'a>(&'a Watch<'a>);

impl io::Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.0.consumed.get();
        let rest = &self.0.data[at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.0.consumed.set(at + n);
        Ok(n)
    }
}

/// How reading an item with integer tokens read as floats (`wide`, from the lexer) failed.
pub(super) enum GuardedError {
    /// The item type would have received this integer token as a float.
    Refused(Range<usize>),
    /// serde_json's own error.
    Json(serde_json::Error),
}

/// Reads `T` from `data` like `serde_json::from_slice`, refusing the integers of `wide` where
/// `T` would receive them as floats.
pub(super) fn from_slice_guarded<T: de::DeserializeOwned>(
    data: &[u8],
    wide: &[Range<usize>],
) -> Result<T, GuardedError> {
    let watch = Watch {
        data,
        consumed: Cell::new(0),
        wide,
        refused: Cell::new(None),
    };
    let mut json = serde_json::Deserializer::from_reader(CountingReader(&watch));
    let read = T::deserialize(Guard {
        inner: &mut json,
        watch: &watch,
    })
    .and_then(|item| json.end().map(|()| item));
    read.map_err(|e| match watch.refused.get() {
        Some(index) => GuardedError::Refused(wide[index].clone()),
        None => GuardedError::Json(e),
    })
}

/// A deserializer whose visitors are watched.
struct Guard<'w, D> {
    inner: D,
    watch: &'w Watch<'w>,
}

/// A visitor, seed or access wrapped to watch what it is handed.
struct Watched<'w, X> {
    inner: X,
    watch: &'w Watch<'w>,
}

impl<'w, X> Watched<'w, X> {
    fn wrap<Y>(&self, inner: Y) -> Watched<'w, Y> {
        Watched {
            inner,
            watch: self.watch,
        }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = Watched { inner: visitor, watch: self.watch };
            self.inner.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(),
        deserialize_i32(), deserialize_i64(), deserialize_i128(), deserialize_u8(),
        deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_u128(),
        deserialize_f32(), deserialize_f64(), deserialize_char(), deserialize_str(),
        deserialize_string(), deserialize_bytes(), deserialize_byte_buf(), deserialize_option(),
        deserialize_unit(), deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str), deserialize_seq(),
        deserialize_tuple(len: usize), deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_map(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(), deserialize_ignored_any(),
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($($ty:ty)?)),* $(,)?) => {$(
        fn $method<E: de::Error>(self $(, v: $ty)?) -> Result<V::Value, E> {
            self.inner.$method($(v as $ty)?)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Watched<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i64(i64),
        visit_i128(i128), visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u64(u64),
        visit_u128(u128), visit_f32(f32), visit_char(char), visit_str(&str),
        visit_borrowed_str(&'de str), visit_string(String), visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]), visit_byte_buf(Vec<u8>), visit_none(), visit_unit(),
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        let Some(index) = self.watch.integer_just_read() else {
            return self.inner.visit_f64(v);
        };
        let span = &self.watch.wide[index];
        if &self.watch.data[span.clone()] == b"-0" {
            return self.inner.visit_i64(0);
        }
        self.watch.refused.set(Some(index));
        Err(E::custom(
            "an integer beyond 64 bits would be read as a float",
        ))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let d = Guard {
            inner: d,
            watch: self.watch,
        };
        self.inner.visit_some(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let d = Guard {
            inner: d,
            watch: self.watch,
        };
        self.inner.visit_newtype_struct(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let seq = self.wrap(seq);
        self.inner.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let map = self.wrap(map);
        self.inner.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let data = self.wrap(data);
        self.inner.visit_enum(data)
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Watched<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Guard {
            inner: d,
            watch: self.watch,
        })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Watched<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Watched<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'w, A: EnumAccess<'de>> EnumAccess<'de> for Watched<'w, A> {
    type Error = A::Error;
    type Variant = Watched<'w, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let seed = self.wrap(seed);
        let watch = self.watch;
        let (value, inner) = self.inner.variant_seed(seed)?;
        Ok((value, Watched { inner, watch }))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Watched<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}
