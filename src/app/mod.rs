//! The edge of the program: builds sources from settings, runs the event loop of a measuring
//! command (sampler, child process, signals), and drives the outputs.

pub mod child;
pub mod measure;
pub mod replay;
pub mod report;
pub mod screen;

/// A failure that ends the command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input: a flag, a config file, a recording. Exit 2.
    #[error("{0}")]
    Usage(String),
    /// The machine would not do what was asked. Exit 1.
    #[error("{0}")]
    Runtime(String),
    /// The child command could not be started. Exit 127, as shells do.
    #[error("{0}")]
    Spawn(String),
}

impl AppError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Usage(_) => 2,
            AppError::Runtime(_) => 1,
            AppError::Spawn(_) => 127,
        }
    }
}

/// Prints one `carbontop: …` line on stderr.
pub fn say(msg: &str) {
    eprintln!("carbontop: {msg}");
}
