//! `-p/--processor`: the seven processors of the Python library, and raw bytes.

use async_kinesis::processor::{
    BytesSerializer, Composed, JsonLineProcessor, JsonListProcessor, JsonProcessor, KplAggregator,
    KplJsonProcessor, KplStringProcessor, MsgpackProcessor, SimpleAggregator, StringProcessor,
};
use clap::ValueEnum;
use serde_json::value::RawValue;

/// Which processor encodes and decodes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProcessorKind {
    /// Each record's bytes as they are; `tail` unpacks KPL aggregates into their user records.
    Raw,
    /// StringProcessor: UTF-8 text, one item per record.
    String,
    /// JsonProcessor: one JSON value per record.
    Json,
    /// JsonLineProcessor: newline-separated JSON values.
    Jsonline,
    /// JsonListProcessor: one JSON array per record (read as one item).
    Jsonlist,
    /// MsgpackProcessor: msgpack values in netstrings.
    Msgpack,
    /// KPLJsonProcessor: JSON values in KPL aggregated records.
    Kpljson,
    /// KPLStringProcessor: text in KPL aggregated records.
    Kplstring,
}

/// Raw bytes, one item per record.
pub(crate) type RawProcessor = Composed<BytesSerializer, SimpleAggregator>;

/// Raw bytes as read: a KPL aggregate yields its user records, any other record itself (the
/// KPL reader passes records without its magic prefix through).
pub(crate) type RawReader = Composed<BytesSerializer, KplAggregator>;

/// JSON items are kept as their exact text: nothing is re-encoded, so numbers keep every digit.
pub(crate) type Json = Box<RawValue>;

/// The processors, by kind, with the item types the tool reads and writes.
pub(crate) type Raw = RawProcessor;
pub(crate) type Str = StringProcessor;
pub(crate) type JsonP = JsonProcessor<Json>;
pub(crate) type JsonLine = JsonLineProcessor<Json>;
pub(crate) type JsonList = JsonListProcessor<Json>;
pub(crate) type Msgpack = MsgpackProcessor<rmpv::Value>;
pub(crate) type KplJson = KplJsonProcessor<Json>;
pub(crate) type KplStr = KplStringProcessor;

/// Runs `$body` with `$p` bound to the processor of `$kind` (a value of its concrete type).
macro_rules! with_processor {
    ($kind:expr, |$p:ident| $body:expr) => {{
        use $crate::processor_kind as pk;
        match $kind {
            pk::ProcessorKind::Raw => {
                let $p = pk::Raw::default();
                $body
            }
            pk::ProcessorKind::String => {
                let $p = pk::Str::default();
                $body
            }
            pk::ProcessorKind::Json => {
                let $p = pk::JsonP::default();
                $body
            }
            pk::ProcessorKind::Jsonline => {
                let $p = pk::JsonLine::default();
                $body
            }
            pk::ProcessorKind::Jsonlist => {
                let $p = pk::JsonList::default();
                $body
            }
            pk::ProcessorKind::Msgpack => {
                let $p = pk::Msgpack::default();
                $body
            }
            pk::ProcessorKind::Kpljson => {
                let $p = pk::KplJson::default();
                $body
            }
            pk::ProcessorKind::Kplstring => {
                let $p = pk::KplStr::default();
                $body
            }
        }
    }};
}
pub(crate) use with_processor;

/// Like `with_processor!`, with the reading side of `raw`, which unpacks KPL aggregates.
macro_rules! with_reader {
    ($kind:expr, |$p:ident| $body:expr) => {{
        use $crate::processor_kind as pk;
        match $kind {
            pk::ProcessorKind::Raw => {
                let $p = pk::RawReader::default();
                $body
            }
            other => $crate::processor_kind::with_processor!(other, |$p| $body),
        }
    }};
}
pub(crate) use with_reader;
