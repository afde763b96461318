//! Outputs that write files: samples.csv (streamed), later emissions.csv and PNG reports.

pub mod account;
pub mod by_job;
pub mod emissions;
pub mod json;
pub mod life;
pub mod paper;
pub mod png;
pub mod reprice;
pub mod run_file;
pub mod samples;
pub mod simulate;
pub mod summary;
