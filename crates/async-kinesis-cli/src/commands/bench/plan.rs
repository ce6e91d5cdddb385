//! What a `bench` command line asks for, checked before anything is created. Pure.

use async_kinesis::stream::limits::DEFAULT_MAX_RECORD_BYTES;
use clap::ValueEnum;

use super::payload::{MIN_ITEM_BYTES, partition_key};
use crate::cli::{BenchArgs, BenchMode};
use crate::processor_kind::ProcessorKind;

/// Every processor, in the order `all` runs them.
const ALL: [ProcessorKind; 8] = [
    ProcessorKind::Raw,
    ProcessorKind::String,
    ProcessorKind::Json,
    ProcessorKind::Jsonline,
    ProcessorKind::Jsonlist,
    ProcessorKind::Msgpack,
    ProcessorKind::Kpljson,
    ProcessorKind::Kplstring,
];

/// The checked plan of a `bench` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) processors: Vec<ProcessorKind>,
    pub(crate) modes: Vec<BenchMode>,
    pub(crate) records: u64,
    pub(crate) record_size: usize,
    pub(crate) shards: u32,
    pub(crate) iterations: u32,
    /// Roundtrip over enhanced fan-out too, as this stream consumer.
    pub(crate) fan_out: Option<String>,
    /// Items put per second at most.
    pub(crate) put_rate: Option<u32>,
}

/// The name a processor is given on the command line and in the results.
pub(crate) fn name(kind: ProcessorKind) -> &'static str {
    match kind {
        ProcessorKind::Raw => "raw",
        ProcessorKind::String => "string",
        ProcessorKind::Json => "json",
        ProcessorKind::Jsonline => "jsonline",
        ProcessorKind::Jsonlist => "jsonlist",
        ProcessorKind::Msgpack => "msgpack",
        ProcessorKind::Kpljson => "kpljson",
        ProcessorKind::Kplstring => "kplstring",
    }
}

/// The name of a processor's roundtrip over enhanced fan-out in the results.
pub(crate) fn fan_out_name(kind: ProcessorKind) -> &'static str {
    match kind {
        ProcessorKind::Raw => "raw-fan-out",
        ProcessorKind::String => "string-fan-out",
        ProcessorKind::Json => "json-fan-out",
        ProcessorKind::Jsonline => "jsonline-fan-out",
        ProcessorKind::Jsonlist => "jsonlist-fan-out",
        ProcessorKind::Msgpack => "msgpack-fan-out",
        ProcessorKind::Kpljson => "kpljson-fan-out",
        ProcessorKind::Kplstring => "kplstring-fan-out",
    }
}

/// Whether a processor writes KPL aggregates (an MD5 digest per record).
pub(crate) fn is_kpl(kind: ProcessorKind) -> bool {
    matches!(kind, ProcessorKind::Kpljson | ProcessorKind::Kplstring)
}

impl Plan {
    /// The plan of `args`, or the one-line reason it is impossible.
    pub(crate) fn of(args: &BenchArgs) -> Result<Self, String> {
        let processors = processors(&args.processors)?;
        if args.records == 0 {
            return Err("--records must be at least 1".into());
        }
        if args.shards == 0 {
            return Err("--shards must be at least 1".into());
        }
        if args.iterations == 0 {
            return Err("--iterations must be at least 1".into());
        }
        if args.put_rate == Some(0) {
            return Err("--put-rate must be at least 1 item per second".into());
        }
        if args.efo.is_some() && !args.modes.contains(&BenchMode::Roundtrip) {
            return Err("--efo compares roundtrip latency: name the roundtrip mode too".into());
        }
        if args.record_size < MIN_ITEM_BYTES {
            return Err(format!(
                "--record-size {} is too small: each item carries its id and needs at least {MIN_ITEM_BYTES} bytes",
                args.record_size
            ));
        }
        let key_bytes = partition_key(0).len();
        if args.record_size + key_bytes > DEFAULT_MAX_RECORD_BYTES {
            return Err(format!(
                "--record-size {} is above the maximum: a record holds at most {DEFAULT_MAX_RECORD_BYTES} bytes of data and partition key (here at most {})",
                args.record_size,
                DEFAULT_MAX_RECORD_BYTES - key_bytes
            ));
        }
        let mut modes = args.modes.clone();
        modes.sort_unstable();
        modes.dedup();
        Ok(Self {
            processors,
            modes,
            records: args.records,
            record_size: args.record_size,
            shards: args.shards,
            iterations: args.iterations,
            fan_out: args.efo.clone(),
            put_rate: args.put_rate,
        })
    }

    /// Whether the produce-then-consume run is wanted (for either of its rows).
    pub(crate) fn sequential(&self) -> bool {
        self.wants(BenchMode::Produce) || self.wants(BenchMode::Consume)
    }

    pub(crate) fn wants(&self, mode: BenchMode) -> bool {
        self.modes.contains(&mode)
    }
}

/// The processors of `--processors`: names (any case) or `all`, each once, in the order given.
fn processors(names: &[String]) -> Result<Vec<ProcessorKind>, String> {
    let mut kinds = Vec::new();
    for raw in names {
        let wanted = raw.trim();
        let found: Vec<ProcessorKind> = if wanted.eq_ignore_ascii_case("all") {
            ALL.to_vec()
        } else {
            match ProcessorKind::from_str(wanted, true) {
                Ok(kind) => vec![kind],
                Err(_) => {
                    let known: Vec<&str> = ALL.iter().map(|k| name(*k)).collect();
                    return Err(format!(
                        "unknown processor '{wanted}' (processors: {}, or all)",
                        known.join(", ")
                    ));
                }
            }
        };
        for kind in found {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    if kinds.is_empty() {
        return Err("--processors names no processor".into());
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(processors: &[&str], record_size: usize) -> BenchArgs {
        BenchArgs {
            modes: vec![BenchMode::Consume, BenchMode::Produce, BenchMode::Consume],
            processors: processors.iter().map(|s| (*s).to_owned()).collect(),
            records: 10,
            record_size,
            shards: 1,
            iterations: 1,
            dry_run: false,
            markdown: false,
            json: false,
            efo: None,
            put_rate: None,
        }
    }

    #[test]
    fn fan_out_needs_the_roundtrip_mode() {
        let mut bench = args(&["json"], 1_000);
        bench.efo = Some("bench-app".into());
        let problem = Plan::of(&bench).expect_err("no roundtrip");
        assert!(problem.contains("roundtrip"), "{problem}");
        bench.modes = vec![BenchMode::Roundtrip];
        let plan = Plan::of(&bench).expect("valid");
        assert_eq!(plan.fan_out.as_deref(), Some("bench-app"));
        assert_eq!(fan_out_name(ProcessorKind::Json), "json-fan-out");
    }

    #[test]
    fn names_and_all_each_once_in_order() {
        let plan = Plan::of(&args(&["Msgpack", "json", "all"], 1_000)).expect("valid");
        assert_eq!(plan.processors.len(), 8);
        assert_eq!(
            &plan.processors[..3],
            &[
                ProcessorKind::Msgpack,
                ProcessorKind::Json,
                ProcessorKind::Raw
            ]
        );
        assert_eq!(plan.modes, [BenchMode::Produce, BenchMode::Consume]);
        assert!(plan.sequential() && !plan.wants(BenchMode::Roundtrip));
        for kind in ALL {
            assert_eq!(ProcessorKind::from_str(name(kind), false), Ok(kind));
        }
    }

    #[test]
    fn bad_input_is_one_line_naming_the_problem() {
        let unknown = Plan::of(&args(&["json", "yaml"], 1_000)).expect_err("unknown");
        assert!(unknown.starts_with("unknown processor 'yaml' (processors: raw, string,"));
        let big = Plan::of(&args(&["json"], 2_000_000)).expect_err("too big");
        assert!(big.contains("above the maximum"), "{big}");
        assert!(!big.contains('\n'));
        let edge = DEFAULT_MAX_RECORD_BYTES - partition_key(0).len();
        assert!(Plan::of(&args(&["json"], edge)).is_ok());
        assert!(Plan::of(&args(&["json"], edge + 1)).is_err());
        assert!(
            Plan::of(&args(&["json"], 10))
                .expect_err("small")
                .contains("too small")
        );
        let mut none = args(&["json"], 1_000);
        none.records = 0;
        assert!(Plan::of(&none).is_err());
    }
}
