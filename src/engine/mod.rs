//! The engine: pure accounting. No I/O and no clock of its own — it is driven by the timestamps
//! inside the samples, so a replay and a live run give the same numbers and tests are exact.

pub mod constants;
pub mod estimate;
pub mod forecast;
pub mod ledger;

pub use ledger::{GpuTick, Ledger, LedgerConfig, Tick, Totals};
pub mod series;
