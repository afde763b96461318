//! The edge of the program: builds sources from settings, runs the event loop of a measuring
//! command (sampler, child process, signals), and drives the outputs.

pub mod aggregate;
pub mod caps;
pub mod child;
pub mod drive;
pub mod estimate;
pub mod feed;
pub mod life;
pub mod live;
pub mod replay;
pub mod report;
pub mod reprice;
pub mod screen;
pub mod serve;
pub mod session;
pub mod simulate;
pub mod wait;

/// Writes to stdout. A reader that went away (`carbontop report … | head`) is not an error and
/// never a panic (println! panics on EPIPE); any other failure is one line.
pub fn out(text: &str) -> Result<(), AppError> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(AppError::Runtime(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// `println!` through `out`: `outln!(...)?`.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::app::out(&format!("{}\n", format_args!($($t)*)))
    };
}

/// Writes to stderr, ignoring a stderr that went away (`2>&1 | head`): eprintln! would panic
/// there, in the middle of a run whose caps must come back and whose rows must be written.
pub fn err_out(text: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    // Not glued to the end of a progress bar the command is drawing.
    if child::mid_line() {
        let _ = e.write_all(b"\n");
    }
    let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
}

/// `eprintln!` through `err_out`.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::app::err_out(&format!("{}\n", format_args!($($t)*)))
    };
}

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
    err_out(&format!("carbontop: {msg}\n"));
}

/// Turns SIGINT, SIGTERM and SIGHUP into calls of `emit` on a thread of its own (until `emit`
/// returns false); the handle closes it.
pub fn spawn_signal_thread<F>(emit: F) -> Result<signal_hook::iterator::Handle, AppError>
where
    F: Fn(i32) -> bool + Send + 'static,
{
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| AppError::Runtime(format!("cannot install signal handlers: {e}")))?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("carbontop-signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if !emit(s) {
                    break;
                }
            }
        })
        .map_err(|e| AppError::Runtime(e.to_string()))?;
    Ok(handle)
}

/// A file-size limit (`ulimit -f`) reached mid-run must not kill carbontop (SIGXFSZ's default
/// action): with a handler installed the write fails with EFBIG instead, and the rows are held
/// like on a full disk. Handlers are reset at exec, so the command runs with the default.
pub fn survive_file_size_limit() {
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
}

/// Waits for the next event until `deadline` (None: no deadline). Ok(None) when the deadline
/// passed; Err when every sender is gone.
pub fn recv_until<T>(
    rx: &std::sync::mpsc::Receiver<T>,
    deadline: Option<std::time::Instant>,
) -> Result<Option<T>, std::sync::mpsc::RecvError> {
    use std::sync::mpsc::{RecvError, RecvTimeoutError};
    match deadline {
        Some(d) => match rx.recv_timeout(d.saturating_duration_since(std::time::Instant::now())) {
            Ok(ev) => Ok(Some(ev)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(RecvError),
        },
        None => rx.recv().map(Some),
    }
}
