//! The engine: pure accounting. No I/O and no clock of its own — it is driven by the timestamps
//! inside the samples, so a replay and a live run give the same numbers and tests are exact.
//! The Ledger accounts each tick; the Meter folds ticks into the Snapshot every output formats.

pub mod caplog;
pub mod constants;
pub mod embodied;
pub mod estimate;
pub mod forecast;
pub mod gpu_check;
pub mod job;
pub mod ledger;
pub mod life;
pub mod meter;
pub mod mig;
pub mod reprice;
pub mod savings;
pub mod schedule;
pub mod series;
pub mod tally;

pub use caplog::CapLog;
pub use ledger::{GpuTick, Ledger, LedgerConfig, Tick, Totals};
pub use meter::{Bands, Basis, Meter, Snapshot};
