//! `bench --dry-run`: the processors alone, in this process. Produce is serialize + aggregate
//! into Kinesis records; consume is reading those records back into items. No network.

use async_kinesis::processor::{Processor, RecordWriter};
use bytes::Bytes;
use indicatif::ProgressBar;

use super::floor::Floor;
use super::meter::{Measured, Meter};
use super::payload::{BenchItem, ItemIds, item_text, partition_key};
use super::plan::{Plan, name};
use super::report::Row;
use super::tally::{Accounting, Tally};
use crate::cli::BenchMode;
use crate::error::CliError;
use crate::processor_kind::ProcessorKind;

/// Progress is shown every this many items (a bar update per item would be measured too).
const PROGRESS_EVERY: u64 = 1_024;

/// One produce row and one consume row of `processor`.
pub(crate) fn run<P>(
    kind: ProcessorKind,
    processor: &P,
    plan: &Plan,
    iteration: u32,
    floor: Floor,
    bar: &ProgressBar,
) -> Result<Vec<Row>, CliError>
where
    P: Processor,
    P::Item: BenchItem,
    P::Output: ItemIds,
{
    let label = name(kind);
    let items = (0..plan.records)
        .map(|id| P::Item::of_text(&item_text(id, plan.record_size)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::Failed(format!("{label}: cannot make the bench items: {e}")))?;
    let keys: Vec<String> = (0..plan.records).map(partition_key).collect();

    bar.reset();
    bar.set_length(plan.records * 2);
    bar.set_message(format!("{label}: serialize + aggregate"));
    let meter = Meter::start(None);
    let mut writer = processor.writer::<()>();
    let mut records = Vec::new();
    for (n, (item, key)) in (0u64..).zip(items.iter().zip(&keys)) {
        let data = processor
            .serialize(item)
            .map_err(|e| CliError::Failed(format!("{label}: {}", crate::error::one_line(&e))))?;
        let full = writer
            .push((), data, key, None)
            .map_err(|rejected| CliError::Failed(format!("{label}: {}", rejected.reason)))?;
        records.extend(full);
        if n % PROGRESS_EVERY == 0 {
            bar.set_position(n);
        }
    }
    records.extend(writer.flush());
    let produced = meter.stop();
    let kinesis_bytes: usize = records.iter().map(|r| r.size()).sum();

    bar.set_message(format!("{label}: read"));
    let meter = Meter::start(None);
    let mut tally = Tally::new(plan.records);
    let mut failed = 0u64;
    for (n, record) in (0u64..).zip(&records) {
        let data: &Bytes = &record.data;
        for decoded in processor.read(data, &record.partition_key) {
            match decoded {
                Ok(decoded) => decoded.item.ids(|id| tally.see(id)),
                Err(_) => failed += 1,
            }
        }
        if n % PROGRESS_EVERY == 0 {
            bar.set_position(plan.records + tally.unique());
        }
    }
    let consumed = meter.stop();
    drop(items);

    let user_bytes = plan.records as f64 * plan.record_size as f64;
    let row = |phase, measured: &Measured, floor_us, failed, accounting: Accounting| Row {
        processor: label,
        phase,
        iteration,
        shards: None,
        items: plan.records,
        started_unix_s: measured.started_unix_s,
        seconds: measured.wall.as_secs_f64(),
        items_per_sec: measured.per_sec(plan.records as f64),
        user_mb_per_sec: measured.per_sec(user_bytes) / 1e6,
        kinesis_records: records.len() as u64,
        kinesis_mb_per_sec: measured.per_sec(kinesis_bytes as f64) / 1e6,
        cpu_us_per_item: measured.cpu_us_per(plan.records),
        floor_us_per_item: floor_us,
        client_cores: measured.cores(),
        peak_rss_mib: measured.peak_rss_mib,
        put_latency: None,
        end_to_end_latency: None,
        throttles: 0,
        retries: 0,
        failed,
        accounting,
        note: None,
    };
    let accounting = tally.accounting();
    Ok(vec![
        row(
            BenchMode::Produce,
            &produced,
            floor.produce_us,
            0,
            accounting,
        ),
        row(
            BenchMode::Consume,
            &consumed,
            floor.consume_us,
            failed,
            accounting,
        ),
    ])
}
