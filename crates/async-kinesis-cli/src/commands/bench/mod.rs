//! `bench`: the processors, the producer and the consumer measured on this machine. Every run
//! counts its items end to end (each carries an id), shows its client CPU per item next to the
//! floor (the hashing and encoding every item needs) and says when the endpoint, not the
//! client, set the pace.

mod counters;
mod dry_run;
mod floor;
mod latency;
mod meter;
mod payload;
mod pipeline;
mod plan;
mod report;
mod runs;
mod streams;
mod tally;
mod usage;

use async_kinesis::processor::{Processor, RecordWriter};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::cli::{BenchArgs, BenchMode, Global, Output};
use crate::error::CliError;
use crate::processor_kind::{ProcessorKind, with_processor};
use floor::Floor;
use payload::{BenchItem, item_text, partition_key};
use plan::{Plan, is_kpl, name};
use report::Row;
use runs::Bench;
use streams::Ledger;

/// The printed result.
#[derive(Debug, Serialize)]
struct Results {
    dry_run: bool,
    record_size: usize,
    /// The floor per item (µs) without and with the KPL digest.
    floor: FloorPair,
    runs: Vec<Row>,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct FloorPair {
    plain: Floor,
    kpl: Floor,
}

impl FloorPair {
    fn of(&self, kind: ProcessorKind) -> Floor {
        if is_kpl(kind) { self.kpl } else { self.plain }
    }
}

pub(crate) async fn run(global: &Global, args: BenchArgs) -> Result<(), CliError> {
    let plan = Plan::of(&args).map_err(CliError::Failed)?;
    for kind in &plan.processors {
        with_processor!(*kind, |p| check_fits(*kind, &p, &plan))?;
    }
    let floor = FloorPair {
        plain: floor::measure(plan.record_size, false),
        kpl: floor::measure(plan.record_size, true),
    };
    let bar = progress_bar(global);
    let runs = if args.dry_run {
        dry_run(&plan, floor, &bar)
    } else {
        networked(global, &plan, floor, &bar).await
    };
    bar.finish_and_clear();
    let results = Results {
        dry_run: args.dry_run,
        record_size: plan.record_size,
        floor,
        runs: runs?,
    };
    let output = if args.json {
        Output::Json
    } else {
        global.output
    };
    if args.markdown && output == Output::Table {
        println!("{}", report::markdown(&results.runs));
        println!("\n{}", floor_line(&results));
        return Ok(());
    }
    crate::output::print(output, &results, |r| {
        format!("{}\n{}", report::table(&r.runs), floor_line(r))
    })?;
    let lost: u64 = results
        .runs
        .iter()
        .map(|r| r.accounting.lost + r.failed)
        .sum();
    if lost > 0 {
        eprintln!("bench: {lost} item(s) lost or failed (see the table)");
        return Err(CliError::Reported);
    }
    Ok(())
}

/// An item of the largest id must fit in one record of the processor; said in one line before
/// anything is created.
fn check_fits<P>(kind: ProcessorKind, processor: &P, plan: &Plan) -> Result<(), CliError>
where
    P: Processor,
    P::Item: BenchItem,
{
    let label = name(kind);
    let fail = |reason: String| {
        CliError::Failed(format!(
            "--record-size {}: an item does not fit in a record of {label}: {reason}",
            plan.record_size
        ))
    };
    let item = P::Item::of_text(&item_text(plan.records - 1, plan.record_size)).map_err(fail)?;
    let data = processor
        .serialize(&item)
        .map_err(|e| fail(crate::error::one_line(&e)))?;
    let mut writer = processor.writer::<()>();
    writer
        .push((), data, &partition_key(plan.records - 1), None)
        .map_err(|rejected| fail(rejected.reason.to_string()))?;
    Ok(())
}

fn dry_run(plan: &Plan, floor: FloorPair, bar: &ProgressBar) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::new();
    for kind in &plan.processors {
        for iteration in 1..=plan.iterations {
            let kind = *kind;
            let measured = with_processor!(kind, |p| dry_run::run(
                kind,
                &p,
                plan,
                iteration,
                floor.of(kind),
                bar
            ))?;
            rows.extend(measured.into_iter().filter(|r| plan.wants(r.phase)));
        }
    }
    Ok(rows)
}

/// The networked runs; every bench stream is deleted at the end, also after an error or Ctrl-C.
async fn networked(
    global: &Global,
    plan: &Plan,
    floor: FloorPair,
    bar: &ProgressBar,
) -> Result<Vec<Row>, CliError> {
    let ledger = Ledger::default();
    let bench = Bench {
        global,
        plan,
        counters: counters::Counters::install(),
        ledger: ledger.clone(),
        bar: bar.clone(),
    };
    let ctrl_c = tokio::signal::ctrl_c();
    let outcome = tokio::select! {
        biased;
        _ = ctrl_c => None,
        rows = all_runs(&bench, floor) => Some(rows),
    };
    bar.set_message("deleting the bench streams");
    // A second Ctrl-C while the streams are deleted stops at once.
    let hurry = tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    let leftovers = ledger.delete_all().await;
    hurry.abort();
    for problem in &leftovers {
        bar.suspend(|| eprintln!("bench: {problem}"));
    }
    outcome.unwrap_or(Err(CliError::Interrupted))
}

async fn all_runs(bench: &Bench<'_>, floor: FloorPair) -> Result<Vec<Row>, CliError> {
    let plan = bench.plan;
    let mut rows = Vec::new();
    for kind in &plan.processors {
        let kind = *kind;
        let label = name(kind);
        for iteration in 1..=plan.iterations {
            with_processor!(kind, |p| {
                if plan.sequential() {
                    let measured = bench
                        .sequential(label, p.clone(), iteration, floor.of(kind))
                        .await?;
                    rows.extend(measured);
                }
                if plan.wants(BenchMode::Roundtrip) {
                    rows.push(
                        bench
                            .roundtrip(label, p.clone(), iteration, floor.of(kind), None)
                            .await?,
                    );
                    if let Some(consumer) = plan.fan_out.as_deref() {
                        let label = plan::fan_out_name(kind);
                        rows.push(
                            bench
                                .roundtrip(label, p, iteration, floor.of(kind), Some(consumer))
                                .await?,
                        );
                    }
                }
            });
        }
    }
    Ok(rows)
}

fn floor_line(results: &Results) -> String {
    let (plain, kpl) = (results.floor.plain, results.floor.kpl);
    format!(
        "floor per {}-byte item on this machine: produce {:.2} µs (KPL {:.2} µs), consume {:.2} µs (KPL {:.2} µs)",
        results.record_size, plain.produce_us, kpl.produce_us, plain.consume_us, kpl.consume_us
    )
}

/// A bar over the items of the current phase, on stderr when it is for people.
fn progress_bar(global: &Global) -> ProgressBar {
    if !global.chatty() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} items {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
