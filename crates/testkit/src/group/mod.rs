//! Consumer groups across processes: worker processes that share a stream through a real
//! checkpoint store, and the analysis of what they reported.
//!
//! Each worker is the `kinesis-group-worker` binary: one [`Consumer`](async_kinesis::consumer::Consumer)
//! with a Redis or DynamoDB store, printing one JSON [`Event`] per line — every record it
//! handed out and every checkpoint the store accepted, with wall-clock times (all processes of a
//! test share the machine's clock). A [`GroupLog`] collects the events of all workers and answers
//! the questions the tests ask: was every item delivered, how many twice, did each key stay in
//! order across processes, and did a stale lease holder ever checkpoint after a newer one.

mod event;
mod log;
mod process;
mod spec;

pub use event::Event;
pub use log::{Accounting, GroupLog, error_chain};
pub use process::{WorkerConfig, WorkerProcess};
pub use spec::StoreSpec;
