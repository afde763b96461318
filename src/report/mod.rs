//! Outputs that write files: samples.csv (streamed), later emissions.csv and PNG reports.

pub mod samples;
pub mod summary;
