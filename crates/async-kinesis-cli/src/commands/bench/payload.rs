//! The bench items: JSON text of an exact size that carries a numeric id, made into each
//! processor's item type, and the ids read back out of what the consumer yields.

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::item::FromLine;

/// The item text before the id.
const HEAD: &str = "{\"id\":";
/// The smallest item: `{"id":N,"pad":""}` with an id of up to 20 digits.
pub(crate) const MIN_ITEM_BYTES: usize = HEAD.len() + 20 + ",\"pad\":\"\"}".len();

/// The text of item `id`: `{"id":<id>,"pad":"xxx…"}`, exactly `size` bytes (`size` is at least
/// [`MIN_ITEM_BYTES`]; smaller sizes give the shortest item).
pub(crate) fn item_text(id: u64, size: usize) -> String {
    let mut text = String::with_capacity(size.max(MIN_ITEM_BYTES));
    text.push_str(HEAD);
    text.push_str(&id.to_string());
    text.push_str(",\"pad\":\"");
    let pad = size.saturating_sub(text.len() + 2);
    text.extend(std::iter::repeat_n('x', pad));
    text.push_str("\"}");
    text
}

/// The partition key of item `id`: 1,024 keys, so that items spread over the shards.
pub(crate) fn partition_key(id: u64) -> String {
    format!("k{:04}", id % 1_024)
}

/// The id of an item's text, when it is one of ours.
pub(crate) fn id_of_text(text: &[u8]) -> Option<u64> {
    let rest = text.strip_prefix(HEAD.as_bytes())?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b',') {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// A processor's item type, made from an item text.
pub(crate) trait BenchItem: Sized {
    /// The item of `text`.
    ///
    /// # Errors
    /// Why the text is no item of this type (not expected for our texts).
    fn of_text(text: &str) -> Result<Self, String>;
}

impl<T: FromLine> BenchItem for T {
    fn of_text(text: &str) -> Result<Self, String> {
        T::from_line(text.as_bytes())
    }
}

/// What a reader yields: one item, or a list of them.
pub(crate) trait ItemIds {
    /// Calls `seen` with the id of each item inside (`None` for an item that is not ours).
    fn ids(&self, seen: impl FnMut(Option<u64>));
}

impl ItemIds for Bytes {
    fn ids(&self, mut seen: impl FnMut(Option<u64>)) {
        seen(id_of_text(self));
    }
}

impl ItemIds for String {
    fn ids(&self, mut seen: impl FnMut(Option<u64>)) {
        seen(id_of_text(self.as_bytes()));
    }
}

impl ItemIds for Box<RawValue> {
    fn ids(&self, mut seen: impl FnMut(Option<u64>)) {
        seen(id_of_text(self.get().as_bytes()));
    }
}

impl ItemIds for Vec<Box<RawValue>> {
    fn ids(&self, mut seen: impl FnMut(Option<u64>)) {
        for item in self {
            seen(id_of_text(item.get().as_bytes()));
        }
    }
}

impl ItemIds for rmpv::Value {
    fn ids(&self, mut seen: impl FnMut(Option<u64>)) {
        // The map's "id" entry, read in place: no conversion to JSON on the measured path.
        let id = self.as_map().and_then(|entries| {
            entries
                .iter()
                .find(|(key, _)| key.as_str() == Some("id"))
                .and_then(|(_, value)| value.as_u64())
        });
        seen(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_of(item: &impl ItemIds) -> Vec<Option<u64>> {
        let mut ids = Vec::new();
        item.ids(|id| ids.push(id));
        ids
    }

    #[test]
    fn texts_have_the_exact_size_and_carry_their_id() {
        for size in [MIN_ITEM_BYTES, 100, 1_000, 4_096] {
            for id in [0, 7, 49_999, u64::MAX] {
                let text = item_text(id, size);
                assert_eq!(text.len(), size, "id {id} size {size}");
                assert_eq!(id_of_text(text.as_bytes()), Some(id));
                serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");
            }
        }
        assert_eq!(item_text(1, 3).len(), HEAD.len() + 1 + 10);
    }

    #[test]
    fn foreign_texts_have_no_id() {
        assert_eq!(id_of_text(b"hello"), None);
        assert_eq!(id_of_text(b"{\"id\":}"), None);
        assert_eq!(id_of_text(b"{\"id\":12"), None);
        assert_eq!(id_of_text(b"{\"id\":99999999999999999999999,"), None);
    }

    #[test]
    fn every_item_type_gives_its_id_back() {
        let text = item_text(42, 200);
        assert_eq!(ids_of(&Bytes::of_text(&text).expect("bytes")), [Some(42)]);
        assert_eq!(ids_of(&String::of_text(&text).expect("string")), [Some(42)]);
        let json = Box::<RawValue>::of_text(&text).expect("json");
        assert_eq!(ids_of(&json), [Some(42)]);
        let list = vec![
            json,
            Box::<RawValue>::of_text(&item_text(43, 50)).expect("json"),
        ];
        assert_eq!(ids_of(&list), [Some(42), Some(43)]);
        let msgpack = rmpv::Value::of_text(&text).expect("msgpack");
        assert_eq!(ids_of(&msgpack), [Some(42)]);
        assert_eq!(ids_of(&rmpv::Value::from(3)), [None]);
    }

    #[test]
    fn keys_spread_and_are_valid() {
        assert_eq!(partition_key(0), "k0000");
        assert_eq!(partition_key(1_025), "k0001");
        assert_ne!(partition_key(1), partition_key(2));
    }
}
