//! samples.csv: one row per tick, streamed and flushed (DESIGN.md §4).
//!
//! Power columns hold the average over the interval that ends at the row (the first row: the
//! reading itself), so `energy_kwh` grows by `total_power_w × Δt × PUE / 3.6e6` from one row to
//! the next. `energy_kwh` and `co2e_g` are cumulative and include PUE. An empty cell is unknown.

use crate::engine::caplog::{CapChangeError, CapLog};
use crate::engine::{GpuTick, Tick};
use crate::sample::{
    CpuReading, GpuReading, Intensity, IntensitySource, NetReading, OwnRecorded, OwnTraffic,
    PowerReading, ProcessReading, ProcessRecorded, Progress, Sample, SourceKind, Traffic,
};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// One column of samples.csv: its name, how its cell is written from a `Tick`, and how it is
/// read back into the row being rebuilt (None: not read back, the Ledger recomputes it or a
/// `Sample` has no place for it). The header, the writer and the reader all walk the same
/// tables (`BASE`, `GPU`, `TAIL`), so a column cannot be added on one side only.
pub struct Column {
    pub name: &'static str,
    write: fn(&Tick) -> String,
    read: Option<ReadCell>,
}

/// One column of each per-GPU group (`gpu{i}_{suffix}`).
pub struct GpuColumn {
    pub suffix: &'static str,
    write: fn(Option<&GpuTick>) -> String,
    read: Option<ReadGpuCell>,
}

/// Reads the cell at `col` of the reader's current record into the row.
type ReadCell = fn(&mut SamplesReader, &mut Row, usize) -> Result<(), ReadError>;
/// Reads the cell at `col` of the reader's current record into one GPU's reading.
type ReadGpuCell = fn(&SamplesReader, u64, usize, &mut GpuReading) -> Result<(), ReadError>;

/// The fixed leading columns, in order; every recording has them all.
pub const BASE: [Column; 19] = [
    Column {
        name: "timestamp",
        write: |t| t.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
        read: Some(|r, row, col| {
            let ts = r.record.get(col).unwrap_or("").trim();
            let time = DateTime::parse_from_rfc3339(ts)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    r.cell_err(row.line, col, format!("{ts:?} is not an RFC 3339 time"))
                })?;
            row.time = Some(time);
            Ok(())
        }),
    },
    Column {
        name: "elapsed_s",
        write: |t| fin(t.elapsed_s),
        read: Some(SamplesReader::read_elapsed),
    },
    Column {
        name: "gpu_power_w",
        write: |t| opt(t.gpu_power_w),
        read: None, // the sum of the GPU groups', recomputed
    },
    Column {
        name: "cpu_power_w",
        write: |t| opt(t.cpu_power_w),
        read: Some(|r, row, col| {
            row.cpu_w = r.watts_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "mem_power_w",
        write: |t| opt(t.mem_power_w),
        read: Some(|r, row, col| {
            row.mem_w = r.watts_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_rx_bytes",
        write: |t| opt(t.net_rx_bytes),
        read: Some(|r, row, col| {
            row.rx = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_tx_bytes",
        write: |t| opt(t.net_tx_bytes),
        read: Some(|r, row, col| {
            row.tx = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_power_w",
        write: |t| opt(t.net_power_w),
        read: Some(|r, row, col| {
            row.net_w = r.watts_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "total_power_w",
        write: |t| opt(t.total_power_w),
        read: None, // the components' sum, recomputed
    },
    Column {
        name: "energy_kwh",
        write: |t| fin(t.energy_kwh),
        read: Some(|r, row, col| {
            row.energy_kwh = r.ranged_at(row.line, col, 0.0, f64::MAX, "an energy")?;
            Ok(())
        }),
    },
    Column {
        name: "intensity_g_per_kwh",
        write: |t| opt(t.intensity_g_per_kwh),
        read: Some(|r, row, col| {
            row.intensity = r.ranged_at(
                row.line,
                col,
                0.0,
                crate::source::grid::series::MAX_G_PER_KWH,
                "a grid intensity in g/kWh",
            )?;
            Ok(())
        }),
    },
    Column {
        name: "intensity_source",
        write: |t| {
            t.intensity_source
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        },
        read: Some(|r, row, col| {
            let cell = r.record.get(col).unwrap_or("").trim();
            row.source = (!cell.is_empty()).then(|| IntensitySource::from(cell));
            Ok(())
        }),
    },
    Column {
        name: "co2e_g",
        write: |t| fin(t.co2e_g),
        read: None, // energy × intensity, recomputed
    },
    Column {
        name: "embodied_co2e_g",
        write: |t| opt(t.embodied_co2e_g),
        read: Some(|r, row, col| {
            row.embodied_g = r.ranged_at(row.line, col, 0.0, f64::MAX, "a mass of CO2e")?;
            Ok(())
        }),
    },
    Column {
        name: "epoch",
        write: |t| opt(t.progress.epoch),
        read: Some(|r, row, col| {
            row.progress.epoch = r.ranged_at(row.line, col, 0.0, f64::MAX, "an epoch")?;
            Ok(())
        }),
    },
    Column {
        name: "step",
        write: |t| opt(t.progress.step),
        read: Some(|r, row, col| {
            row.progress.step = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "accuracy",
        write: |t| opt(t.progress.accuracy),
        read: Some(|r, row, col| {
            row.progress.accuracy = r.ranged_at(row.line, col, 0.0, 100.0, "a percentage")?;
            Ok(())
        }),
    },
    Column {
        name: "loss",
        write: |t| opt(t.progress.loss),
        read: Some(|r, row, col| {
            row.progress.loss = r.f64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "power_cap_w",
        write: |t| opt(t.power_cap_w),
        read: None, // the GPU groups' caps summed, recomputed
    },
];

/// The per-GPU column group, in order, after the base columns: `gpu{i}_{suffix}`.
pub const GPU: [GpuColumn; 5] = [
    GpuColumn {
        suffix: "power_w",
        write: |g| opt(g.and_then(|g| g.power_w)),
        read: Some(|r, line, col, g| {
            g.power = r
                .watts_at(line, col)?
                .map(|w| PowerReading::Average(crate::units::Watts(w)));
            Ok(())
        }),
    },
    GpuColumn {
        suffix: "energy_j",
        write: |g| opt(g.and_then(|g| g.energy_j)),
        read: None, // integrated again from the powers
    },
    GpuColumn {
        suffix: "util_pct",
        write: |g| opt(g.and_then(|g| g.util_pct)),
        read: Some(|r, line, col, g| {
            g.util_pct = r.ranged_at(line, col, 0.0, 100.0, "a percentage")?;
            Ok(())
        }),
    },
    GpuColumn {
        suffix: "mem_used_mib",
        write: |g| opt(g.and_then(|g| g.mem_used_mib)),
        read: Some(|r, line, col, g| {
            g.mem_used_mib = r.ranged_at(line, col, 0.0, f64::MAX, "an amount of memory")?;
            Ok(())
        }),
    },
    GpuColumn {
        suffix: "cap_w",
        write: |g| opt(g.and_then(|g| g.cap_w)),
        read: Some(|r, line, col, g| {
            g.cap_w = r.watts_at(line, col)?;
            Ok(())
        }),
    },
];

/// After the GPU groups, newer columns in order (recordings made before one existed are read
/// all the same: each is found by its name):
/// - `cap_change`: the power-cap changes made during the interval that ends at the row, who
///   made them, old and new (`user gpu0 300->290 W; …`), empty when none;
/// - `process_cpu_w`, `process_gpu_w`, `process_mem_w`: `run -- CMD`'s own share of the
///   machine, beside the machine's figures (CPU by its CPU-time share, GPU by NVML's
///   per-process SM share, memory by its resident set's share of MemTotal); empty when not
///   known. Read back as recorded, so `report` gives the command's figures as the run did.
/// - `net_cmd_{cluster,internet}_{rx,tx}_bytes`: `run -- CMD`'s own TCP bytes since it
///   started, by where its peers are (beside the machine's `net_rx_bytes`/`net_tx_bytes`);
///   `net_cmd_power_w`: the port power of its traffic over the interval (its share of
///   `net_power_w`'s kind: this machine's NIC and switch ports); `net_internet_kwh` and
///   `net_internet_co2e_g`: the internet path's energy and carbon for its public traffic so far
///   (other people's equipment: not in `energy_kwh` or `co2e_g`). Empty when not a run.
/// - `net_rdma_{rx,tx}_bytes`: the machine's RDMA (InfiniBand, RoCE) port bytes since the
///   start (the ports' counters × 4 octets; traffic the interfaces' counters do not see);
///   `net_rdma_power_w`: those ports' power over the interval by the port model with the RDMA
///   links' power (part of `net_power_w`); `net_cmd_rdma_{rx,tx}_bytes`: the part of them that
///   is `run -- CMD`'s (its tree the only RDMA user; part of its cluster traffic). Empty where
///   the machine has no RDMA port.
pub const TAIL: [Column; 16] = [
    Column {
        name: "cap_change",
        write: |t| t.cap_change.to_string(),
        read: Some(|r, row, col| {
            let cell = r.record.get(col).unwrap_or("").trim();
            row.cap_change = cell
                .parse()
                .map_err(|e: CapChangeError| r.cell_err(row.line, col, e.to_string()))?;
            Ok(())
        }),
    },
    Column {
        name: "process_cpu_w",
        write: |t| opt(t.process_cpu_w),
        read: Some(|r, row, col| {
            row.process.cpu_w = r.watts_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "process_gpu_w",
        write: |t| opt(t.process_gpu_w),
        read: Some(|r, row, col| {
            row.process.gpu_w = r.watts_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "process_mem_w",
        write: |t| opt(t.process_mem_w),
        read: Some(|r, row, col| {
            row.process.mem_w = r.watts_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_cmd_cluster_rx_bytes",
        write: |t| opt(t.cmd_net.map(|c| c.cluster.rx_bytes)),
        read: Some(|r, row, col| {
            row.cmd_bytes[0] = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_cmd_cluster_tx_bytes",
        write: |t| opt(t.cmd_net.map(|c| c.cluster.tx_bytes)),
        read: Some(|r, row, col| {
            row.cmd_bytes[1] = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_cmd_internet_rx_bytes",
        write: |t| opt(t.cmd_net.map(|c| c.internet.rx_bytes)),
        read: Some(|r, row, col| {
            row.cmd_bytes[2] = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_cmd_internet_tx_bytes",
        write: |t| opt(t.cmd_net.map(|c| c.internet.tx_bytes)),
        read: Some(|r, row, col| {
            row.cmd_bytes[3] = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_cmd_power_w",
        write: |t| opt(t.cmd_net.and_then(|c| c.port_w)),
        read: Some(|r, row, col| {
            row.cmd_w = r.watts_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_internet_kwh",
        write: |t| opt(t.cmd_net.map(|c| c.internet_kwh)),
        read: Some(|r, row, col| {
            row.internet_kwh = r.ranged_at(row.line, col, 0.0, f64::MAX, "an energy")?;
            Ok(())
        }),
    },
    Column {
        name: "net_internet_co2e_g",
        write: |t| opt(t.cmd_net.map(|c| c.internet_co2e_g)),
        read: None, // the energy × the intensity, recomputed
    },
    Column {
        name: "net_rdma_rx_bytes",
        write: |t| opt(t.rdma.map(|r| r.machine.rx_bytes)),
        read: Some(|r, row, col| {
            row.rdma_bytes[0] = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_rdma_tx_bytes",
        write: |t| opt(t.rdma.map(|r| r.machine.tx_bytes)),
        read: Some(|r, row, col| {
            row.rdma_bytes[1] = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_rdma_power_w",
        write: |t| opt(t.rdma.and_then(|r| r.power_w)),
        read: Some(|r, row, col| {
            row.rdma_w = r.watts_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_cmd_rdma_rx_bytes",
        write: |t| opt(t.rdma.and_then(|r| r.own).map(|o| o.rx_bytes)),
        read: Some(|r, row, col| {
            row.rdma_bytes[2] = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
    Column {
        name: "net_cmd_rdma_tx_bytes",
        write: |t| opt(t.rdma.and_then(|r| r.own).map(|o| o.tx_bytes)),
        read: Some(|r, row, col| {
            row.rdma_bytes[3] = r.u64_at(row.line, col)?;
            Ok(())
        }),
    },
];

/// Then one column per user metric: `metric_<name>`.
pub const METRIC_PREFIX: &str = "metric_";

const fn names<const N: usize>(cols: &[Column; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = cols[i].name;
        i += 1;
    }
    out
}

/// The fixed leading columns' names, in order.
pub const BASE_COLUMNS: [&str; BASE.len()] = names(&BASE);

/// The name of GPU `i`'s column `suffix`: `i` is the GPU's NVML index, as nvidia-smi, the
/// screen and /metrics number it (recordings made before issue 19 numbered the groups by
/// position, 0, 1, …; they read the same, their numbers being what they recorded).
fn gpu_column(i: u32, suffix: &str) -> String {
    format!("gpu{i}_{suffix}")
}

/// The GPU number of a `gpu{N}_power_w` column, the first of each group.
fn gpu_group_id(h: &str) -> Option<u32> {
    let n = h
        .strip_prefix("gpu")?
        .strip_suffix(GPU[0].suffix)?
        .strip_suffix('_')?;
    // Digits only, no sign or leading zero (so one number has one name).
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0')))
        .then(|| n.parse().ok())
        .flatten()
}

/// The full header for the GPUs numbered `ids` (in their column order) and the user's metrics.
pub fn header(ids: &[u32], metrics: &[String]) -> Vec<String> {
    let mut h: Vec<String> = BASE.iter().map(|c| c.name.to_owned()).collect();
    for &i in ids {
        h.extend(GPU.iter().map(|c| gpu_column(i, c.suffix)));
    }
    h.extend(TAIL.iter().map(|c| c.name.to_owned()));
    h.extend(metrics.iter().map(|m| format!("{METRIC_PREFIX}{m}")));
    h
}

/// A cell: empty for None, and for a number that is not finite (`inf`, `NaN`: the reader
/// refuses them, so a recording must never hold one; unknown is what such a figure is).
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string())
        .filter(|t| !matches!(t.as_str(), "inf" | "-inf" | "NaN"))
        .unwrap_or_default()
}

/// A figure every row has: empty only when it is not finite (see [`opt`]).
fn fin(v: f64) -> String {
    opt(Some(v))
}

/// One CSV record as bytes, newline included (the csv crate's quoting).
fn csv_line(rec: &[String]) -> io::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .buffer_capacity(512)
        .from_writer(Vec::with_capacity(512));
    w.write_record(rec).map_err(io::Error::other)?;
    w.into_inner().map_err(|e| io::Error::other(e.to_string()))
}

/// Above any one machine's draw (10 MW): a recording's power beyond it is corrupt.
const MAX_MACHINE_W: f64 = 1e7;
/// Thirty years, in seconds: longer than any run.
const MAX_ELAPSED_S: f64 = 1e9;

/// How many bytes of rows not yet on disk are held in memory while the disk refuses them
/// (full, over quota, file too large): about two days of 1 s rows for a 4-GPU machine.
pub const MAX_HELD_BYTES: usize = 64 << 20;

/// Streams ticks to a CSV file, each row handed to the kernel as it is made (one write, no
/// user-space buffer), so a crash or `kill -9` loses at most the row in flight.
///
/// When the disk refuses a row (full, quota, file size limit) the row is held in memory, in
/// order, and written with the next ones once the disk takes them again; a row cut short by the
/// refusal is completed, never duplicated. Nothing already written is touched.
pub struct SamplesWriter {
    file: Box<dyn io::Write + Send>,
    /// The GPUs' numbers, one column group each.
    ids: Vec<u32>,
    metrics: Vec<String>,
    path: PathBuf,
    row: Vec<String>,
    /// Rows not yet (wholly) on disk, oldest first; `written` bytes of the first already are.
    held: std::collections::VecDeque<Vec<u8>>,
    written: usize,
    held_bytes: usize,
    /// Rows given up on because the held rows exceeded `MAX_HELD_BYTES` (the newest are kept
    /// out: the rows before them stay contiguous on disk).
    dropped: u64,
}

impl SamplesWriter {
    /// `ids`: the GPUs' numbers (NVML's index), one column group each.
    pub fn create(path: &Path, ids: &[u32], metrics: &[String]) -> io::Result<Self> {
        Self::to_sink(Box::new(File::create(path)?), path, ids, metrics)
    }

    /// Writes to any sink (`path` only names it in messages); the header goes first.
    pub fn to_sink(
        file: Box<dyn io::Write + Send>,
        path: &Path,
        ids: &[u32],
        metrics: &[String],
    ) -> io::Result<Self> {
        let mut w = Self {
            file,
            ids: ids.to_vec(),
            metrics: metrics.to_vec(),
            path: path.to_path_buf(),
            row: Vec::with_capacity(BASE.len() + GPU.len() * ids.len() + TAIL.len()),
            held: std::collections::VecDeque::new(),
            written: 0,
            held_bytes: 0,
            dropped: 0,
        };
        let h = header(ids, metrics);
        w.push_record(&h)?;
        w.drain()?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows held in memory, not yet on disk.
    pub fn held_rows(&self) -> usize {
        self.held.len()
    }

    /// Rows given up on because too many were held.
    pub fn dropped_rows(&self) -> u64 {
        self.dropped
    }

    /// Formats one record and queues it.
    fn push_record(&mut self, rec: &[String]) -> io::Result<()> {
        let bytes = csv_line(rec)?;
        if self.held_bytes + bytes.len() > MAX_HELD_BYTES {
            self.dropped += 1;
            return Ok(());
        }
        self.held_bytes += bytes.len();
        self.held.push_back(bytes);
        Ok(())
    }

    /// Writes the held rows in order, one `write` per row where the kernel takes it whole;
    /// stops at the first refusal, remembering how much of that row is on disk.
    pub fn drain(&mut self) -> io::Result<()> {
        while let Some(front) = self.held.front() {
            match self.file.write(&front[self.written..]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    self.written += n;
                    if self.written == front.len() {
                        self.held_bytes -= front.len();
                        self.held.pop_front();
                        self.written = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Saves the rows still held (header first) to `path`, after the disk refused them to the
    /// end: the last resort, so that nothing recorded is lost.
    pub fn save_held_to(&mut self, path: &Path) -> io::Result<usize> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        f.write_all(&csv_line(&header(&self.ids, &self.metrics))?)?;
        // The first held row may be partly in samples.csv already: saved whole here.
        for r in &self.held {
            f.write_all(r)?;
        }
        f.sync_all()?;
        Ok(self.held.len())
    }

    pub fn write(&mut self, t: &Tick) -> io::Result<()> {
        let r = &mut self.row;
        r.clear();
        r.extend(BASE.iter().map(|c| (c.write)(t)));
        for i in 0..self.ids.len() {
            let g = t.gpus.get(i);
            r.extend(GPU.iter().map(|c| (c.write)(g)));
        }
        r.extend(TAIL.iter().map(|c| (c.write)(t)));
        for m in &self.metrics {
            r.push(opt(t.progress.metric(m)));
        }
        let row = std::mem::take(&mut self.row);
        let queued = self.push_record(&row);
        self.row = row;
        queued?;
        self.drain()
    }
}

/// A bad samples.csv, located to the row and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    #[error("{path}: line {line}, column {column}: {msg}")]
    Cell {
        path: String,
        line: u64,
        column: String,
        msg: String,
    },
    #[error("{path}: line {line}: {msg}")]
    Row {
        path: String,
        line: u64,
        msg: String,
    },
}

/// The longest line a recording may hold: a 16-GPU row with a busy `cap_change` cell is under
/// 4 KiB. A longer one is refused before it is held whole (issue 20: `report /dev/zero`).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A reader that remembers the last byte it handed out, so the end of a recording can be told
/// apart from a row cut off mid-write (no newline at the very end), and that refuses a line
/// longer than [`MAX_LINE_BYTES`], so no input makes the CSV reader hold more.
struct LastByte {
    inner: Box<dyn Read + Send>,
    last: Option<u8>,
    /// Bytes since the last newline, and that line's number.
    line_len: usize,
    line: u64,
}

impl LastByte {
    fn new(inner: Box<dyn Read + Send>) -> Self {
        Self {
            inner,
            last: None,
            line_len: 0,
            line: 1,
        }
    }
}

impl Read for LastByte {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = &buf[..n];
        if let Some(&b) = got.last() {
            self.last = Some(b);
        }
        match got.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                self.line += got.iter().filter(|&&b| b == b'\n').count() as u64;
                self.line_len = n - 1 - i;
            }
            None => self.line_len += n,
        }
        if self.line_len > MAX_LINE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "line {} is longer than {} KiB: not a carbontop samples.csv (read no further)",
                    self.line,
                    MAX_LINE_BYTES >> 10
                ),
            ));
        }
        Ok(n)
    }
}

/// A row's RDMA cells as a reading (None when the row has none): the recorded power rides
/// along, the ports are unknown.
fn recorded_rdma(b: [Option<u64>; 4], power_w: Option<f64>) -> Option<crate::sample::RdmaReading> {
    let v = b.map(|x| x.unwrap_or(0));
    (b[0].is_some() || b[1].is_some() || power_w.is_some()).then(|| crate::sample::RdmaReading {
        machine: Traffic {
            rx_bytes: v[0],
            tx_bytes: v[1],
        },
        own: (b[2].is_some() || b[3].is_some()).then_some(Traffic {
            rx_bytes: v[2],
            tx_bytes: v[3],
        }),
        power_w,
        ..Default::default()
    })
}

/// Reads a samples.csv written by carbontop back into samples (streaming: bounded memory).
///
/// A recording whose writer was killed (`kill -9`, power loss, a full disk) may end with a row
/// cut off mid-write; that last row is left out, `truncated_tail` says where, and every row
/// before it is read. A short or corrupt row anywhere else is an error.
pub struct SamplesReader {
    rdr: csv::Reader<LastByte>,
    /// The record after `record`, read ahead so the last one is known as the last.
    ahead: Option<Result<csv::StringRecord, csv::Error>>,
    truncated_tail: Option<u64>,
    prev_elapsed: Option<f64>,
    path: String,
    /// The GPUs' numbers, one column group each, in column order.
    gpu_ids: Vec<u32>,
    record: csv::StringRecord,
    /// The header, to name a bad cell's column.
    names: Vec<String>,
    start: Option<DateTime<Utc>>,
    recorded_energy_kwh: Option<f64>,
    /// The `TAIL` columns this recording has and the reader reads: (column, how).
    tail_cols: Vec<(usize, ReadCell)>,
    cap_change: CapLog,
    recorded_embodied_g: Option<f64>,
    /// (column, name) of each `metric_<name>` column.
    metric_cols: Vec<(usize, String)>,
}

/// The cells of one record as read, before they become a `Sample`.
#[derive(Default)]
struct Row {
    line: u64,
    time: Option<DateTime<Utc>>,
    elapsed_s: f64,
    cpu_w: Option<f64>,
    mem_w: Option<f64>,
    rx: Option<u64>,
    tx: Option<u64>,
    net_w: Option<f64>,
    energy_kwh: Option<f64>,
    intensity: Option<f64>,
    source: Option<IntensitySource>,
    embodied_g: Option<f64>,
    progress: Progress,
    gpus: Vec<GpuReading>,
    cap_change: CapLog,
    /// `net_cmd_{cluster,internet}_{rx,tx}_bytes`, in that order.
    cmd_bytes: [Option<u64>; 4],
    cmd_w: Option<f64>,
    internet_kwh: Option<f64>,
    /// `process_{cpu,gpu,mem}_w`.
    process: ProcessRecorded,
    /// `net_rdma_{rx,tx}_bytes`, `net_cmd_rdma_{rx,tx}_bytes`, in that order.
    rdma_bytes: [Option<u64>; 4],
    rdma_w: Option<f64>,
}

impl SamplesReader {
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let p = path.display().to_string();
        let file = File::open(path).map_err(|e| ReadError::File {
            path: p.clone(),
            msg: format!("cannot open: {e}"),
        })?;
        Self::from_reader(&p, Box::new(file))
    }

    /// Reads a recording from any byte stream; `name` is what errors call it.
    pub fn from_reader(name: &str, input: Box<dyn Read + Send>) -> Result<Self, ReadError> {
        let p = name.to_owned();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(LastByte::new(input));
        let headers = rdr
            .headers()
            .map_err(|e| ReadError::File {
                path: p.clone(),
                msg: format!("cannot read the header: {e}"),
            })?
            .clone();
        if headers.is_empty() || (headers.len() == 1 && headers.get(0) == Some("")) {
            return Err(ReadError::File {
                path: p,
                msg: "empty file: not a carbontop samples.csv".into(),
            });
        }
        for (i, want) in BASE_COLUMNS.iter().enumerate() {
            match headers.get(i) {
                Some(h) if h == *want => {}
                got => {
                    return Err(ReadError::File {
                        path: p,
                        msg: format!(
                            "header column {} is {:?}, expected {want:?}: not a carbontop samples.csv",
                            i + 1,
                            got.unwrap_or("(missing)")
                        ),
                    });
                }
            }
        }
        let mut gpu_ids: Vec<u32> = Vec::new();
        let group = |g: usize| BASE.len() + GPU.len() * g;
        while let Some(id) = headers.get(group(gpu_ids.len())).and_then(gpu_group_id) {
            if gpu_ids.contains(&id) {
                return Err(ReadError::File {
                    path: p,
                    msg: format!("GPU {id}'s column group appears twice"),
                });
            }
            for (k, c) in GPU.iter().enumerate() {
                let want = gpu_column(id, c.suffix);
                if headers.get(group(gpu_ids.len()) + k) != Some(want.as_str()) {
                    return Err(ReadError::File {
                        path: p,
                        msg: format!("GPU {id}'s column group is incomplete: missing {want}"),
                    });
                }
            }
            gpu_ids.push(id);
        }
        let n_gpus = gpu_ids.len();
        let after_gpus = || headers.iter().enumerate().skip(group(n_gpus));
        let tail_cols = TAIL
            .iter()
            .filter_map(|c| {
                let read = c.read?;
                after_gpus()
                    .find(|(_, h)| *h == c.name)
                    .map(|(i, _)| (i, read))
            })
            .collect();
        let metric_cols = after_gpus()
            .filter_map(|(i, h)| h.strip_prefix(METRIC_PREFIX).map(|n| (i, n.to_owned())))
            .collect();
        Ok(Self {
            rdr,
            ahead: None,
            truncated_tail: None,
            prev_elapsed: None,
            path: p,
            gpu_ids,
            record: csv::StringRecord::new(),
            names: headers.iter().map(str::to_owned).collect(),
            start: None,
            recorded_energy_kwh: None,
            tail_cols,
            cap_change: CapLog::default(),
            recorded_embodied_g: None,
            metric_cols,
        })
    }

    /// The names of the recording's `metric_<name>` columns.
    pub fn metric_names(&self) -> Vec<String> {
        self.metric_cols.iter().map(|(_, n)| n.clone()).collect()
    }

    /// The `embodied_co2e_g` cell of the row last read, as recorded.
    pub fn recorded_embodied_g(&self) -> Option<f64> {
        self.recorded_embodied_g
    }

    /// The `cap_change` cell of the row last read (empty when the cell is, or is absent).
    pub fn cap_change(&self) -> &CapLog {
        &self.cap_change
    }

    /// The `energy_kwh` cell of the row last read, as recorded.
    pub fn recorded_energy_kwh(&self) -> Option<f64> {
        self.recorded_energy_kwh
    }

    pub fn gpu_count(&self) -> usize {
        self.gpu_ids.len()
    }

    /// The GPUs' numbers, in column order (NVML's index; position in older recordings).
    pub fn gpu_ids(&self) -> &[u32] {
        &self.gpu_ids
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The line of the row last read.
    pub fn line(&self) -> u64 {
        self.record.position().map_or(0, |p| p.line())
    }

    fn cell_err(&self, line: u64, col: usize, msg: String) -> ReadError {
        let column = self
            .names
            .get(col)
            .cloned()
            .unwrap_or_else(|| format!("column {}", col + 1));
        ReadError::Cell {
            path: self.path.clone(),
            line,
            column,
            msg,
        }
    }

    fn f64_at(&self, line: u64, col: usize) -> Result<Option<f64>, ReadError> {
        let s = self.record.get(col).unwrap_or("").trim();
        if s.is_empty() {
            return Ok(None);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(self.cell_err(line, col, format!("{s:?} is not a number"))),
        }
    }

    /// A number in `lo..=hi` (what the column can hold: powers are not negative, a percentage
    /// is at most 100), else a located error; no silent wrong number reaches the totals.
    fn ranged_at(
        &self,
        line: u64,
        col: usize,
        lo: f64,
        hi: f64,
        what: &str,
    ) -> Result<Option<f64>, ReadError> {
        match self.f64_at(line, col)? {
            Some(v) if !(lo..=hi).contains(&v) => {
                Err(self.cell_err(line, col, format!("{v} is not {what} ({lo}–{hi})")))
            }
            v => Ok(v),
        }
    }

    /// A power (W): not negative, and below what any one machine draws.
    fn watts_at(&self, line: u64, col: usize) -> Result<Option<f64>, ReadError> {
        self.ranged_at(line, col, 0.0, MAX_MACHINE_W, "a power in W")
    }

    fn u64_at(&self, line: u64, col: usize) -> Result<Option<u64>, ReadError> {
        let s = self.record.get(col).unwrap_or("").trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<u64>()
            .map(Some)
            .map_err(|_| self.cell_err(line, col, format!("{s:?} is not a whole number")))
    }

    /// Where the recording's last row was cut off mid-write and left out (its line), once the
    /// end has been reached.
    pub fn truncated_tail(&self) -> Option<u64> {
        self.truncated_tail
    }

    /// One raw record: `None` at the end.
    fn read_raw(&mut self) -> Option<Result<csv::StringRecord, csv::Error>> {
        let mut r = csv::StringRecord::new();
        match self.rdr.read_record(&mut r) {
            Ok(false) => None,
            Ok(true) => Some(Ok(r)),
            Err(e) => Some(Err(e)),
        }
    }

    /// The next sample, `None` at the end of the file.
    pub fn next_sample(&mut self) -> Option<Result<Sample, ReadError>> {
        let cur = match self.ahead.take() {
            Some(r) => r,
            None => self.read_raw()?,
        };
        self.ahead = self.read_raw();
        // The last record, and the stream did not end with a newline (or the record is short
        // of fields): the writer stopped mid-row. Left out; the rows before it stand.
        let failed = matches!(&cur, Err(e) if e.is_io_error());
        if self.ahead.is_none() && !failed {
            let unfinished = self.rdr.get_ref().last != Some(b'\n');
            let short = matches!(&cur, Err(e) if matches!(e.kind(),
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } if len < expected_len));
            if unfinished || short {
                let line = match &cur {
                    Ok(r) => r.position().map_or(0, |p| p.line()),
                    Err(e) => e.position().map_or(0, |p| p.line()),
                };
                self.truncated_tail = Some(line);
                return None;
            }
        }
        match cur {
            Ok(r) => {
                self.record = r;
                Some(self.parse_record())
            }
            // Reading failed (a line past MAX_LINE_BYTES, a disk error): the message says where.
            Err(e) if e.is_io_error() => Some(Err(ReadError::File {
                path: self.path.clone(),
                msg: e.to_string(),
            })),
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("{len} fields, expected {expected_len} (truncated or corrupt row)")
                    }
                    _ => e.to_string(),
                };
                Some(Err(ReadError::Row {
                    path: self.path.clone(),
                    line,
                    msg,
                }))
            }
        }
    }

    /// `elapsed_s`: as recorded, or from the timestamps in recordings without it; never
    /// before the row above (a corrupt file, which would take energy away).
    fn read_elapsed(&mut self, row: &mut Row, col: usize) -> Result<(), ReadError> {
        let line = row.line;
        let time = row.time.unwrap_or_default();
        let elapsed_s = match self.f64_at(line, col)? {
            Some(e) if (0.0..=MAX_ELAPSED_S).contains(&e) => e,
            Some(e) => {
                return Err(self.cell_err(
                    line,
                    col,
                    format!("{e} is not an elapsed time (0–{MAX_ELAPSED_S} s)"),
                ));
            }
            None => {
                let start = *self.start.get_or_insert(time);
                (time - start).as_seconds_f64().clamp(0.0, MAX_ELAPSED_S)
            }
        };
        if let Some(prev) = self.prev_elapsed
            && elapsed_s < prev
        {
            return Err(self.cell_err(
                line,
                col,
                format!("{elapsed_s} goes back in time (the row before is at {prev})"),
            ));
        }
        self.prev_elapsed = Some(elapsed_s);
        self.start.get_or_insert(time);
        row.elapsed_s = elapsed_s;
        Ok(())
    }

    /// The record's cells, column by column as the tables say, then the `Sample` they make.
    fn parse_record(&mut self) -> Result<Sample, ReadError> {
        let mut row = Row {
            line: self.record.position().map_or(0, |p| p.line()),
            ..Row::default()
        };
        for (col, c) in BASE.iter().enumerate() {
            if let Some(read) = c.read {
                read(self, &mut row, col)?;
            }
        }
        for i in 0..self.gpu_ids.len() {
            let mut g = GpuReading {
                index: self.gpu_ids[i],
                ..GpuReading::default()
            };
            for (k, c) in GPU.iter().enumerate() {
                if let Some(read) = c.read {
                    read(self, row.line, BASE.len() + GPU.len() * i + k, &mut g)?;
                }
            }
            row.gpus.push(g);
        }
        for k in 0..self.tail_cols.len() {
            let (col, read) = self.tail_cols[k];
            read(self, &mut row, col)?;
        }
        for (i, name) in &self.metric_cols {
            if let Some(v) = self.f64_at(row.line, *i)? {
                row.progress.metrics.push((name.clone(), v));
            }
        }
        self.recorded_energy_kwh = row.energy_kwh;
        self.recorded_embodied_g = row.embodied_g;
        self.cap_change = row.cap_change;
        let avg = |v: Option<f64>| v.map(|w| PowerReading::Average(crate::units::Watts(w)));
        let b = row.cmd_bytes.map(|b| b.unwrap_or(0));
        let own = row
            .cmd_bytes
            .iter()
            .any(Option::is_some)
            .then(|| OwnTraffic {
                cluster: Traffic {
                    rx_bytes: b[0],
                    tx_bytes: b[1],
                },
                internet: Traffic {
                    rx_bytes: b[2],
                    tx_bytes: b[3],
                },
            });
        let own_recorded = own.map(|_| OwnRecorded {
            port_w: row.cmd_w,
            internet_kwh: row.internet_kwh,
        });
        let rdma = recorded_rdma(row.rdma_bytes, row.rdma_w);
        let net = (row.rx.is_some()
            || row.tx.is_some()
            || row.net_w.is_some()
            || own.is_some()
            || rdma.is_some())
        .then(|| NetReading {
            rx_bytes: row.rx.unwrap_or(0),
            tx_bytes: row.tx.unwrap_or(0),
            power: avg(row.net_w),
            links: None,
            own,
            own_recorded,
            rdma,
        });
        let intensity = row.intensity.map(|g| Intensity {
            g_per_kwh: crate::units::GPerKwh(g),
            source: row
                .source
                .unwrap_or_else(|| IntensitySource::fresh(SourceKind::Replay)),
        });
        Ok(Sample {
            time: row.time.unwrap_or_default(),
            elapsed_s: row.elapsed_s,
            gpus: row.gpus,
            cpu: match row.cpu_w {
                Some(w) => CpuReading::Power(PowerReading::Average(crate::units::Watts(w))),
                None => CpuReading::Unknown,
            },
            mem: avg(row.mem_w),
            net,
            intensity,
            progress: row.progress,
            // The command's shares as recorded, where the row has any.
            process: (row.process != ProcessRecorded::default()).then_some(ProcessReading {
                recorded: Some(row.process),
                ..ProcessReading::default()
            }),
            // A recording's estimates carry the band run.json records, not a per-row one.
            bands: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Ledger, LedgerConfig};
    use crate::sample::{CpuReading, GpuReading, PowerReading};

    fn read_all(text: String) -> Vec<Sample> {
        let mut r = SamplesReader::from_reader("t.csv", Box::new(io::Cursor::new(text))).unwrap();
        std::iter::from_fn(|| r.next_sample())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A disk that takes `budget` more bytes, then refuses (ENOSPC) until given more; a write
    /// that does not fit is cut short, as a real full disk does.
    #[derive(Clone)]
    struct Disk(std::sync::Arc<std::sync::Mutex<(Vec<u8>, usize)>>);

    impl io::Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut d = self.0.lock().unwrap();
            if d.1 == 0 {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            let n = buf.len().min(d.1);
            d.0.extend_from_slice(&buf[..n]);
            d.1 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rows_refused_by_a_full_disk_are_held_then_written_once_whole_and_in_order() {
        let disk = Disk(std::sync::Arc::new(std::sync::Mutex::new((
            Vec::new(),
            1 << 20,
        ))));
        let mut w =
            SamplesWriter::to_sink(Box::new(disk.clone()), Path::new("s.csv"), &[], &[]).unwrap();
        let mut l = Ledger::new(LedgerConfig::default());
        let mut expected = csv_line(&header(&[], &[])).unwrap();
        let mut tick = |t: f64| {
            l.push(Sample {
                time: chrono::DateTime::UNIX_EPOCH,
                elapsed_s: t,
                gpus: vec![],
                cpu: CpuReading::Power(PowerReading::Average(crate::units::Watts(10.0))),
                mem: None,
                net: None,
                intensity: None,
                progress: Default::default(),
                process: None,
                bands: Default::default(),
            })
        };
        let rows: Vec<Tick> = (0..10).map(|k| tick(f64::from(k))).collect();
        // Three rows fit, then the disk fills 40 bytes into the fourth.
        for t in &rows[..3] {
            w.write(t).unwrap();
        }
        let used = disk.0.lock().unwrap().0.len();
        disk.0.lock().unwrap().1 = 40;
        let refused = w.write(&rows[3]).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(28));
        assert!(w.write(&rows[4]).is_err() && w.write(&rows[5]).is_err());
        assert_eq!(w.held_rows(), 3);
        assert_eq!(disk.0.lock().unwrap().0.len(), used + 40);
        // Space again: the held rows go first, the cut row completed, not repeated.
        disk.0.lock().unwrap().1 = 1 << 20;
        for t in &rows[6..] {
            w.write(t).unwrap();
        }
        assert_eq!(w.held_rows(), 0);
        // The file is exactly the header and the ten rows, each once, in order.
        for t in &rows {
            let mut one =
                SamplesWriter::to_sink(Box::new(io::sink()), Path::new("x"), &[], &[]).unwrap();
            one.write(t).unwrap();
            expected.extend(csv_line(&one.row).unwrap());
        }
        assert_eq!(
            String::from_utf8_lossy(&disk.0.lock().unwrap().0),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(read_all(String::from_utf8(expected).unwrap()).len(), 10);
    }

    /// A tick with every field set, two GPUs and two metrics.
    fn full_tick() -> Tick {
        use chrono::TimeZone;
        let gpu = |k: f64| GpuTick {
            index: k as u32,
            power_w: Some(150.5 + k),
            energy_j: Some(1000.25 + k),
            util_pct: Some(95.0 - k),
            mem_used_mib: Some(14_336.0 + k),
            cap_w: Some(275.0 - k),
            sm_clock_mhz: None,
            mig: None,
            power_vs_counter: None,
        };
        Tick {
            timestamp: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
                + chrono::TimeDelta::milliseconds(678),
            elapsed_s: 12.5,
            dt_s: 0.5,
            gpu_power_w: Some(302.0),
            cpu_power_w: Some(65.25),
            mem_power_w: Some(7.5),
            net_rx_bytes: Some(123_456),
            net_tx_bytes: Some(654_321),
            net_power_w: Some(1.125),
            total_power_w: Some(375.875),
            energy_kwh: 0.0625,
            intensity_g_per_kwh: Some(436.5),
            intensity_source: Some("uk-stale".into()),
            co2e_g: 27.28125,
            embodied_co2e_g: Some(3.5),
            progress: Progress {
                epoch: Some(2.0),
                step: Some(98),
                accuracy: Some(71.5),
                loss: Some(0.875),
                metrics: vec![("f1".into(), 0.5), ("bleu".into(), 22.25)],
            },
            power_cap_w: Some(549.0),
            gpus: vec![gpu(0.0), gpu(1.0)],
            cap_change: "governor gpu0 300->275 W; governor gpu1 300->274 W"
                .parse()
                .unwrap(),
            process_cpu_w: Some(40.5),
            process_gpu_w: Some(75.25),
            process_mem_w: Some(3.25),
            cmd_net: Some(crate::engine::ledger::CmdNet {
                cluster: Traffic {
                    rx_bytes: 11,
                    tx_bytes: 22,
                },
                internet: Traffic {
                    rx_bytes: 33,
                    tx_bytes: 44,
                },
                port_w: Some(0.25),
                internet_kwh: 0.5,
                internet_co2e_g: 218.25,
                rdma: Traffic {
                    rx_bytes: 55,
                    tx_bytes: 66,
                },
            }),
            rdma: Some(crate::engine::ledger::RdmaTick {
                machine: Traffic {
                    rx_bytes: 77,
                    tx_bytes: 88,
                },
                power_w: Some(0.75),
                own: Some(Traffic {
                    rx_bytes: 55,
                    tx_bytes: 66,
                }),
            }),
        }
    }

    #[test]
    fn a_figure_that_is_not_finite_is_written_unknown_and_the_row_reads_back() {
        // Issue 20: a recording carbontop wrote with `inf` in it could not be read back.
        let disk = Disk(std::sync::Arc::new(std::sync::Mutex::new((
            Vec::new(),
            1 << 20,
        ))));
        let metrics = ["f1".to_owned()];
        let mut w = SamplesWriter::to_sink(
            Box::new(disk.clone()),
            Path::new("s.csv"),
            &[0, 1],
            &metrics,
        )
        .unwrap();
        let mut t = full_tick();
        t.energy_kwh = f64::INFINITY;
        t.co2e_g = f64::NAN;
        t.cpu_power_w = Some(f64::INFINITY);
        t.gpus[1].power_w = Some(f64::NEG_INFINITY);
        t.progress.metrics = vec![("f1".into(), f64::NAN)];
        w.write(&t).unwrap();
        let text = String::from_utf8(disk.0.lock().unwrap().0.clone()).unwrap();
        for bad in ["inf", "NaN"] {
            assert!(!text.to_lowercase().contains(&bad.to_lowercase()), "{text}");
        }
        let mut r = SamplesReader::from_reader("s.csv", Box::new(io::Cursor::new(text))).unwrap();
        let s = r.next_sample().unwrap().unwrap();
        assert_eq!(s.cpu, CpuReading::Unknown);
        assert_eq!(s.gpus[1].power, None);
        assert_eq!(r.recorded_energy_kwh(), None);
    }

    #[test]
    fn a_line_longer_than_the_bound_is_refused_before_it_is_held() {
        // Issue 20: `report /dev/zero` read one endless line.
        let endless = io::repeat(b'x');
        let e = SamplesReader::from_reader("zero", Box::new(endless))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("zero: cannot read the header: line 1 is longer than 1024 KiB"),
            "{e}"
        );
        // A good header, then a row that never ends: refused at its line.
        let head = header(&[], &[]).join(",") + "\n";
        let input = io::Cursor::new(head.into_bytes()).chain(io::repeat(b'1'));
        let mut r = SamplesReader::from_reader("s.csv", Box::new(input)).unwrap();
        let e = r.next_sample().unwrap().unwrap_err().to_string();
        assert!(e.contains("line 2 is longer than 1024 KiB"), "{e}");
    }

    #[test]
    fn gpu_columns_carry_nvmls_numbers_and_older_position_numbered_recordings_read() {
        // GPUs 3 and 5 of a machine (a job given two of eight): their columns say so, and the
        // readings come back with those numbers.
        let disk = Disk(std::sync::Arc::new(std::sync::Mutex::new((
            Vec::new(),
            1 << 20,
        ))));
        let mut w =
            SamplesWriter::to_sink(Box::new(disk.clone()), Path::new("s.csv"), &[3, 5], &[])
                .unwrap();
        let mut t = full_tick();
        t.gpus[0].index = 3;
        t.gpus[1].index = 5;
        w.write(&t).unwrap();
        let text = String::from_utf8(disk.0.lock().unwrap().0.clone()).unwrap();
        let head = text.lines().next().unwrap();
        assert!(head.contains(",gpu3_power_w,gpu3_energy_j,"), "{head}");
        assert!(
            head.contains(",gpu5_cap_w,") && !head.contains("gpu0_"),
            "{head}"
        );
        let mut r = SamplesReader::from_reader("s.csv", Box::new(io::Cursor::new(text))).unwrap();
        assert_eq!(r.gpu_ids(), [3, 5]);
        let got = r.next_sample().unwrap().unwrap();
        assert_eq!(got.gpus.iter().map(|g| g.index).collect::<Vec<_>>(), [3, 5]);
        assert_eq!(got.gpus[1].cap_w, Some(274.0));

        // A recording numbered by position (before issue 19) reads as it always did.
        let old = header(&[0, 1], &[]).join(",");
        let r = SamplesReader::from_reader("old.csv", Box::new(io::Cursor::new(old))).unwrap();
        assert_eq!(r.gpu_ids(), [0, 1]);

        // A group twice, or a number written two ways, is not a recording of ours.
        let twice = header(&[2, 2], &[]).join(",");
        let e = SamplesReader::from_reader("t.csv", Box::new(io::Cursor::new(twice)))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("GPU 2's column group appears twice"),
            "{e}"
        );
        assert_eq!(gpu_group_id("gpu03_power_w"), None);
        assert_eq!(gpu_group_id("gpu+3_power_w"), None);
        assert_eq!(gpu_group_id("gpu12_power_w"), Some(12));
    }

    #[test]
    fn the_header_the_writer_and_the_reader_agree() {
        let metrics = ["f1".to_owned(), "bleu".to_owned()];
        let disk = Disk(std::sync::Arc::new(std::sync::Mutex::new((
            Vec::new(),
            1 << 20,
        ))));
        let mut w = SamplesWriter::to_sink(
            Box::new(disk.clone()),
            Path::new("s.csv"),
            &[0, 1],
            &metrics,
        )
        .unwrap();
        let t = full_tick();
        w.write(&t).unwrap();
        let text = String::from_utf8(disk.0.lock().unwrap().0.clone()).unwrap();
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let head: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
        let row: Vec<String> = rdr
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        // One cell per header column, every one of them written (every field is set).
        assert_eq!(head, header(&[0, 1], &metrics));
        assert_eq!(row.len(), head.len());
        assert!(row.iter().all(|c| !c.is_empty()), "{row:?}");

        // Read back: every column the reader reads lands where it came from.
        let mut r =
            SamplesReader::from_reader("s.csv", Box::new(io::Cursor::new(text.clone()))).unwrap();
        let s = r.next_sample().unwrap().unwrap();
        assert!(r.next_sample().is_none());
        assert_eq!(s.time, t.timestamp);
        assert_eq!(s.elapsed_s, t.elapsed_s);
        assert_eq!(
            s.cpu,
            CpuReading::Power(PowerReading::Average(crate::units::Watts(65.25)))
        );
        assert_eq!(s.mem, Some(PowerReading::Average(crate::units::Watts(7.5))));
        assert_eq!(
            s.net,
            Some(NetReading {
                rx_bytes: 123_456,
                tx_bytes: 654_321,
                power: Some(PowerReading::Average(crate::units::Watts(1.125))),
                links: None,
                own: Some(OwnTraffic {
                    cluster: Traffic {
                        rx_bytes: 11,
                        tx_bytes: 22,
                    },
                    internet: Traffic {
                        rx_bytes: 33,
                        tx_bytes: 44,
                    },
                }),
                own_recorded: Some(OwnRecorded {
                    port_w: Some(0.25),
                    internet_kwh: Some(0.5),
                }),
                rdma: Some(crate::sample::RdmaReading {
                    machine: Traffic {
                        rx_bytes: 77,
                        tx_bytes: 88,
                    },
                    own: Some(Traffic {
                        rx_bytes: 55,
                        tx_bytes: 66,
                    }),
                    power_w: Some(0.75),
                    ..Default::default()
                }),
            })
        );
        assert_eq!(
            s.intensity,
            Some(Intensity {
                g_per_kwh: crate::units::GPerKwh(436.5),
                source: "uk-stale".into(),
            })
        );
        assert_eq!(s.progress, t.progress);
        let back: Vec<GpuReading> = t
            .gpus
            .iter()
            .enumerate()
            .map(|(i, g)| GpuReading {
                index: i as u32,
                power: g
                    .power_w
                    .map(|w| PowerReading::Average(crate::units::Watts(w))),
                util_pct: g.util_pct,
                mem_used_mib: g.mem_used_mib,
                cap_w: g.cap_w,
                ..Default::default()
            })
            .collect();
        assert_eq!(s.gpus, back);
        // The command's shares, as recorded.
        assert_eq!(
            s.process,
            Some(ProcessReading {
                recorded: Some(ProcessRecorded {
                    cpu_w: Some(40.5),
                    gpu_w: Some(75.25),
                    mem_w: Some(3.25),
                }),
                ..Default::default()
            })
        );
        assert_eq!(r.cap_change(), &t.cap_change);
        assert_eq!(r.recorded_energy_kwh(), Some(t.energy_kwh));
        assert_eq!(r.recorded_embodied_g(), t.embodied_co2e_g);
        assert_eq!(r.metric_names(), metrics);

        // What is written but not read back, by decision (the Ledger recomputes it, or a
        // Sample has no place for it): a new column must say which it is.
        let mut unread: Vec<String> = BASE
            .iter()
            .chain(&TAIL)
            .filter(|c| c.read.is_none())
            .map(|c| c.name.to_owned())
            .collect();
        unread.extend(
            GPU.iter()
                .filter(|c| c.read.is_none())
                .map(|c| gpu_column(0, c.suffix)),
        );
        assert_eq!(
            unread,
            [
                "gpu_power_w",
                "total_power_w",
                "co2e_g",
                "power_cap_w",
                "net_internet_co2e_g",
                "gpu0_energy_j"
            ]
        );

        // Each column the reader reads is read at the header's position: a bad cell
        // there is reported under that column's name.
        let read_at: Vec<usize> = (0..head.len())
            .filter(|&i| {
                let h = head[i].as_str();
                let base = BASE.iter().find(|c| c.name == h).map(|c| c.read.is_some());
                let tail = TAIL.iter().find(|c| c.name == h).map(|c| c.read.is_some());
                let gpu = GPU
                    .iter()
                    .find(|c| (0..2).any(|g| gpu_column(g, c.suffix) == h))
                    .map(|c| c.read.is_some());
                base.or(tail)
                    .or(gpu)
                    .unwrap_or(h.starts_with(METRIC_PREFIX))
            })
            .collect();
        assert_eq!(read_at.len(), 15 + 2 * 4 + 1 + 3 + 6 + 5 + 2);
        for i in read_at {
            if head[i] == "intensity_source" {
                continue; // text: any label is valid (an unknown one is kept as it is)
            }
            let mut bad = row.clone();
            bad[i] = "x".into();
            let body =
                String::from_utf8([csv_line(&head).unwrap(), csv_line(&bad).unwrap()].concat())
                    .unwrap();
            let mut r =
                SamplesReader::from_reader("s.csv", Box::new(io::Cursor::new(body))).unwrap();
            let e = r.next_sample().unwrap().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("s.csv: line 2, column {}: \"x\" is not", head[i])),
                "{e}"
            );
        }
    }

    #[test]
    fn values_no_machine_records_are_located_errors_not_silent_numbers() {
        let head = BASE_COLUMNS.join(",");
        let row = |elapsed: &str, cpu: &str, acc: &str| {
            format!("2026-01-01T00:00:00Z,{elapsed},,{cpu},,,,,,0,436,table,0,,,,{acc},,\n")
        };
        let first = |text: String| {
            let mut r =
                SamplesReader::from_reader("t.csv", Box::new(io::Cursor::new(text))).unwrap();
            std::iter::from_fn(|| r.next_sample())
                .find_map(Result::err)
                .map(|e| e.to_string())
        };
        let ok = format!("{head}\n{}{}", row("0", "10", "50"), row("1", "10", "51"));
        assert_eq!(first(ok), None);
        let neg = format!("{head}\n{}{}", row("0", "10", ""), row("1", "-5", ""));
        let e = first(neg).unwrap();
        assert!(
            e.contains("line 3, column cpu_power_w: -5 is not a power"),
            "{e}"
        );
        let back = format!("{head}\n{}{}", row("5", "10", ""), row("4", "10", ""));
        assert!(first(back).unwrap().contains("4 goes back in time"));
        let pct = format!("{head}\n{}", row("0", "10", "140"));
        assert!(
            first(pct)
                .unwrap()
                .contains("column accuracy: 140 is not a percentage")
        );
    }

    #[test]
    fn cap_change_cells_read_as_typed_changes_and_a_bad_one_is_located() {
        let head = header(&[], &[]).join(",");
        let row = |k: u32, src: &str, cap: &str| {
            format!(
                "2026-01-01T00:00:0{k}Z,{k},,10,,,,,,0,436,{src},0,,,,,,,\"{cap}\",,,,,,,,,,,,,,,\n"
            )
        };
        let two = "governor gpu0 300->275 W; governor gpu1 300->275 W";
        let text = format!(
            "{head}\n{}{}{}",
            row(0, "fixture", ""),
            row(1, "uk-stale", two),
            row(2, "emaps", "user gpu1 275->290 W")
        );
        let mut r = SamplesReader::from_reader("t.csv", Box::new(io::Cursor::new(text))).unwrap();
        let mut seen = Vec::new();
        while let Some(s) = r.next_sample() {
            let s = s.unwrap();
            seen.push((s.intensity.unwrap().source, r.cap_change().clone()));
        }
        assert_eq!(
            seen[0],
            (
                IntensitySource::fresh(SourceKind::Recorded("fixture".into())),
                CapLog::default()
            )
        );
        assert_eq!(
            seen[1].0,
            IntensitySource::held(SourceKind::GbCarbonIntensity)
        );
        assert_eq!(seen[1].1.changes().len(), 2);
        assert_eq!(seen[1].1.to_string(), two);
        assert_eq!(
            seen[2].1.changes(),
            [crate::engine::caplog::Change {
                who: crate::engine::caplog::Who::User,
                gpu: 1,
                old_w: 275.0,
                new_w: 290.0,
            }]
        );

        let bad = format!(
            "{head}\n{}{}",
            row(0, "table", two),
            row(1, "table", "user gpu0 300->290 W; user gpu0 290 W")
        );
        let mut r = SamplesReader::from_reader("t.csv", Box::new(io::Cursor::new(bad))).unwrap();
        assert!(r.next_sample().unwrap().is_ok());
        assert_eq!(
            r.next_sample().unwrap().unwrap_err().to_string(),
            "t.csv: line 3, column cap_change: \"user gpu0 290 W\" is not a cap change \
             (WHO gpuN OLD->NEW W, WHO one of user, governor, restore)"
        );
    }

    #[test]
    fn a_recording_reads_back_with_or_without_the_newer_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        let mut w = SamplesWriter::create(&path, &[0], &["f1".into()]).unwrap();
        let mut l = Ledger::new(LedgerConfig::default());
        for t in [0.0, 1.0, 2.0] {
            let s = Sample {
                time: chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(t as i64),
                elapsed_s: t,
                gpus: vec![GpuReading {
                    power: Some(PowerReading::Average(crate::units::Watts(100.0 + t))),
                    tree_share: Some(0.5),
                    ..Default::default()
                }],
                cpu: CpuReading::Power(PowerReading::Average(crate::units::Watts(20.0))),
                mem: None,
                net: None,
                intensity: None,
                progress: Default::default(),
                process: None,
                bands: Default::default(),
            };
            w.write(&l.push(s)).unwrap();
        }
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        let head = text.lines().next().unwrap();
        assert!(head.ends_with(
            "gpu0_cap_w,cap_change,process_cpu_w,process_gpu_w,process_mem_w,\
             net_cmd_cluster_rx_bytes,\
             net_cmd_cluster_tx_bytes,net_cmd_internet_rx_bytes,net_cmd_internet_tx_bytes,\
             net_cmd_power_w,net_internet_kwh,net_internet_co2e_g,net_rdma_rx_bytes,\
             net_rdma_tx_bytes,net_rdma_power_w,net_cmd_rdma_rx_bytes,net_cmd_rdma_tx_bytes,\
             metric_f1"
        ));
        // The command's GPU share was written: half of each GPU's power.
        assert!(text.lines().nth(2).unwrap().contains(",,,50.5,,"), "{text}");
        let new = read_all(text.clone());
        // The same recording as an older carbontop wrote it: no cap_change, process, command
        // network or metric columns after the GPU groups.
        let cut = |line: &str| {
            let f: Vec<&str> = line.split(',').collect();
            f[..f.len() - 17].join(",")
        };
        let old: String = text.lines().map(|l| cut(l) + "\n").collect();
        assert!(old.lines().next().unwrap().ends_with("gpu0_cap_w"));
        let old = read_all(old);
        assert_eq!(new.len(), 3);
        for (a, b) in new.iter().zip(&old) {
            assert_eq!(
                (a.elapsed_s, &a.gpus, &a.cpu),
                (b.elapsed_s, &b.gpus, &b.cpu)
            );
            // An older recording has no command's shares to read.
            assert_eq!(b.process, None);
        }
        assert!(new[1].process.is_some_and(|p| p.recorded.is_some()));
    }
}
