//! The sync engine: runs syncs batch by batch, pipelined, with offsets committed only after
//! the destination committed, and retryable errors backed off.

mod backoff;
mod last_per_key;
pub mod offsets;
mod runner;
pub mod single;
mod supervisor;

pub use backoff::{first_run_delay, Backoff, MAX_FIRST_RUN_JITTER};
pub use offsets::{FileOffsets, OffsetStore, StoreOffsets};
pub use runner::{RunReport, Runner, SyncJob, FAULT_ENV};
pub use supervisor::Supervisor;
