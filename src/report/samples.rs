//! samples.csv: one row per tick, streamed and flushed (DESIGN.md §4).
//!
//! Power columns hold the average over the interval that ends at the row (the first row: the
//! reading itself), so `energy_kwh` grows by `total_power_w × Δt × PUE / 3.6e6` from one row to
//! the next. `energy_kwh` and `co2e_g` are cumulative and include PUE. An empty cell is unknown.

use crate::engine::Tick;
use crate::sample::{
    CpuReading, GpuReading, Intensity, NetReading, PowerReading, Progress, Sample,
};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

/// The fixed leading columns, in order.
pub const BASE_COLUMNS: [&str; 19] = [
    "timestamp",
    "elapsed_s",
    "gpu_power_w",
    "cpu_power_w",
    "mem_power_w",
    "net_rx_bytes",
    "net_tx_bytes",
    "net_power_w",
    "total_power_w",
    "energy_kwh",
    "intensity_g_per_kwh",
    "intensity_source",
    "co2e_g",
    "embodied_co2e_g",
    "epoch",
    "step",
    "accuracy",
    "loss",
    "power_cap_w",
];

/// The per-GPU column group suffixes.
pub const GPU_COLUMNS: [&str; 5] = ["power_w", "energy_j", "util_pct", "mem_used_mib", "cap_w"];

/// After the GPU groups: the power-cap changes made during the interval that ends at the row,
/// who made them, old and new (`user gpu0 300->290 W; …`), empty when none.
pub const CAP_CHANGE_COLUMN: &str = "cap_change";

/// After `cap_change`: `run -- CMD`'s own share of the machine, beside the machine's figures
/// (CPU by its CPU-time share, GPU by NVML's per-process SM share); empty when not known.
/// Recordings made before these columns existed are read all the same.
pub const PROCESS_COLUMNS: [&str; 2] = ["process_cpu_w", "process_gpu_w"];

/// The full header for `n_gpus` GPUs and the user's metrics.
pub fn header(n_gpus: usize, metrics: &[String]) -> Vec<String> {
    let mut h: Vec<String> = BASE_COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    for i in 0..n_gpus {
        for c in GPU_COLUMNS {
            h.push(format!("gpu{i}_{c}"));
        }
    }
    h.push(CAP_CHANGE_COLUMN.to_owned());
    h.extend(PROCESS_COLUMNS.iter().map(|c| (*c).to_owned()));
    h.extend(metrics.iter().map(|m| format!("metric_{m}")));
    h
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Streams ticks to a CSV file, flushing each row so a crash loses at most the row in flight.
pub struct SamplesWriter {
    w: csv::Writer<BufWriter<File>>,
    n_gpus: usize,
    metrics: Vec<String>,
    path: PathBuf,
    row: Vec<String>,
}

impl SamplesWriter {
    pub fn create(path: &Path, n_gpus: usize, metrics: &[String]) -> io::Result<Self> {
        let file = File::create(path)?;
        let mut w = csv::Writer::from_writer(BufWriter::new(file));
        w.write_record(header(n_gpus, metrics))
            .map_err(io::Error::other)?;
        w.flush()?;
        Ok(Self {
            w,
            n_gpus,
            metrics: metrics.to_vec(),
            path: path.to_path_buf(),
            row: Vec::with_capacity(BASE_COLUMNS.len() + 5 * n_gpus),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, t: &Tick) -> io::Result<()> {
        let r = &mut self.row;
        r.clear();
        r.push(t.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true));
        r.push(t.elapsed_s.to_string());
        r.push(opt(t.gpu_power_w));
        r.push(opt(t.cpu_power_w));
        r.push(opt(t.mem_power_w));
        r.push(opt(t.net_rx_bytes));
        r.push(opt(t.net_tx_bytes));
        r.push(opt(t.net_power_w));
        r.push(opt(t.total_power_w));
        r.push(t.energy_kwh.to_string());
        r.push(opt(t.intensity_g_per_kwh));
        r.push(t.intensity_source.clone());
        r.push(t.co2e_g.to_string());
        r.push(opt(t.embodied_co2e_g));
        r.push(opt(t.progress.epoch));
        r.push(opt(t.progress.step));
        r.push(opt(t.progress.accuracy));
        r.push(opt(t.progress.loss));
        r.push(opt(t.power_cap_w));
        for i in 0..self.n_gpus {
            let g = t.gpus.get(i);
            r.push(opt(g.and_then(|g| g.power_w)));
            r.push(opt(g.and_then(|g| g.energy_j)));
            r.push(opt(g.and_then(|g| g.util_pct)));
            r.push(opt(g.and_then(|g| g.mem_used_mib)));
            r.push(opt(g.and_then(|g| g.cap_w)));
        }
        r.push(t.cap_change.clone().unwrap_or_default());
        r.push(opt(t.process_cpu_w));
        r.push(opt(t.process_gpu_w));
        for m in &self.metrics {
            r.push(opt(t.progress.metric(m)));
        }
        self.w.write_record(&*r).map_err(io::Error::other)?;
        self.w.flush()
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

/// Reads a samples.csv written by carbontop back into samples (streaming: bounded memory).
pub struct SamplesReader {
    rdr: csv::Reader<Box<dyn Read + Send>>,
    path: String,
    n_gpus: usize,
    record: csv::StringRecord,
    start: Option<DateTime<Utc>>,
    recorded_energy_kwh: Option<f64>,
    /// Where the `cap_change` column is, in recordings that have it.
    cap_change_col: Option<usize>,
    cap_change: Option<String>,
    recorded_embodied_g: Option<f64>,
    /// (column, name) of each `metric_<name>` column.
    metric_cols: Vec<(usize, String)>,
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
            .from_reader(input);
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
        let mut n_gpus = 0;
        while headers.get(BASE_COLUMNS.len() + 5 * n_gpus) == Some(&format!("gpu{n_gpus}_power_w"))
        {
            for (k, c) in GPU_COLUMNS.iter().enumerate() {
                let want = format!("gpu{n_gpus}_{c}");
                if headers.get(BASE_COLUMNS.len() + 5 * n_gpus + k) != Some(want.as_str()) {
                    return Err(ReadError::File {
                        path: p,
                        msg: format!("GPU column group {n_gpus} is incomplete: missing {want}"),
                    });
                }
            }
            n_gpus += 1;
        }
        let cap_change_col = Some(BASE_COLUMNS.len() + 5 * n_gpus)
            .filter(|&i| headers.get(i) == Some(CAP_CHANGE_COLUMN));
        let metric_cols = headers
            .iter()
            .enumerate()
            .skip(BASE_COLUMNS.len() + 5 * n_gpus)
            .filter_map(|(i, h)| h.strip_prefix("metric_").map(|n| (i, n.to_owned())))
            .collect();
        Ok(Self {
            rdr,
            path: p,
            n_gpus,
            record: csv::StringRecord::new(),
            start: None,
            recorded_energy_kwh: None,
            cap_change_col,
            cap_change: None,
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

    /// The `cap_change` cell of the row last read (None when empty or absent).
    pub fn cap_change(&self) -> Option<&str> {
        self.cap_change.as_deref()
    }

    /// The `energy_kwh` cell of the row last read, as recorded.
    pub fn recorded_energy_kwh(&self) -> Option<f64> {
        self.recorded_energy_kwh
    }

    pub fn gpu_count(&self) -> usize {
        self.n_gpus
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn cell_err(&self, line: u64, col: usize, msg: String) -> ReadError {
        let column = if col < BASE_COLUMNS.len() {
            BASE_COLUMNS[col].to_owned()
        } else if col < BASE_COLUMNS.len() + 5 * self.n_gpus {
            let g = (col - BASE_COLUMNS.len()) / 5;
            format!("gpu{g}_{}", GPU_COLUMNS[(col - BASE_COLUMNS.len()) % 5])
        } else {
            self.metric_cols
                .iter()
                .find(|(i, _)| *i == col)
                .map_or_else(
                    || format!("column {}", col + 1),
                    |(_, n)| format!("metric_{n}"),
                )
        };
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

    fn u64_at(&self, line: u64, col: usize) -> Result<Option<u64>, ReadError> {
        let s = self.record.get(col).unwrap_or("").trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<u64>()
            .map(Some)
            .map_err(|_| self.cell_err(line, col, format!("{s:?} is not a whole number")))
    }

    /// The next sample, `None` at the end of the file.
    pub fn next_sample(&mut self) -> Option<Result<Sample, ReadError>> {
        match self.rdr.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => Some(self.parse_record()),
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

    fn parse_record(&mut self) -> Result<Sample, ReadError> {
        let line = self.record.position().map_or(0, |p| p.line());
        let ts = self.record.get(0).unwrap_or("").trim();
        let time = DateTime::parse_from_rfc3339(ts)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| self.cell_err(line, 0, format!("{ts:?} is not an RFC 3339 time")))?;
        let elapsed_s = match self.f64_at(line, 1)? {
            Some(e) if e >= 0.0 => e,
            Some(_) => return Err(self.cell_err(line, 1, "negative elapsed time".into())),
            None => {
                let start = *self.start.get_or_insert(time);
                (time - start).as_seconds_f64().max(0.0)
            }
        };
        self.start.get_or_insert(time);
        let avg = |v: Option<f64>| v.map(PowerReading::Average);
        let cpu = match self.f64_at(line, 3)? {
            Some(w) => CpuReading::Power(PowerReading::Average(w)),
            None => CpuReading::Unknown,
        };
        let mem = avg(self.f64_at(line, 4)?);
        let rx = self.u64_at(line, 5)?;
        let tx = self.u64_at(line, 6)?;
        let net_w = self.f64_at(line, 7)?;
        let net = (rx.is_some() || tx.is_some() || net_w.is_some()).then(|| NetReading {
            rx_bytes: rx.unwrap_or(0),
            tx_bytes: tx.unwrap_or(0),
            power: avg(net_w),
        });
        let source = self.record.get(11).unwrap_or("").trim().to_owned();
        let intensity = self.f64_at(line, 10)?.map(|g| Intensity {
            g_per_kwh: g,
            source: if source.is_empty() {
                "replay".into()
            } else {
                source
            },
        });
        self.recorded_energy_kwh = self.f64_at(line, 9)?;
        self.recorded_embodied_g = self.f64_at(line, 13)?;
        self.cap_change = self
            .cap_change_col
            .and_then(|i| self.record.get(i))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let mut metrics = Vec::new();
        for (i, name) in &self.metric_cols {
            if let Some(v) = self.f64_at(line, *i)? {
                metrics.push((name.clone(), v));
            }
        }
        let progress = Progress {
            epoch: self.f64_at(line, 14)?,
            step: self.u64_at(line, 15)?,
            accuracy: self.f64_at(line, 16)?,
            loss: self.f64_at(line, 17)?,
            metrics,
        };
        let mut gpus = Vec::with_capacity(self.n_gpus);
        for i in 0..self.n_gpus {
            let b = BASE_COLUMNS.len() + 5 * i;
            gpus.push(GpuReading {
                index: i as u32,
                power: avg(self.f64_at(line, b)?),
                energy_mj: None,
                util_pct: self.f64_at(line, b + 2)?,
                mem_used_mib: self.f64_at(line, b + 3)?,
                cap_w: self.f64_at(line, b + 4)?,
                tree_share: None,
            });
        }
        Ok(Sample {
            time,
            elapsed_s,
            gpus,
            cpu,
            mem,
            net,
            intensity,
            progress,
            process: None,
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

    #[test]
    fn a_recording_reads_back_with_or_without_the_newer_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        let mut w = SamplesWriter::create(&path, 1, &["f1".into()]).unwrap();
        let mut l = Ledger::new(LedgerConfig::default());
        for t in [0.0, 1.0, 2.0] {
            let s = Sample {
                time: chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(t as i64),
                elapsed_s: t,
                gpus: vec![GpuReading {
                    power: Some(PowerReading::Average(100.0 + t)),
                    tree_share: Some(0.5),
                    ..Default::default()
                }],
                cpu: CpuReading::Power(PowerReading::Average(20.0)),
                mem: None,
                net: None,
                intensity: None,
                progress: Default::default(),
                process: None,
            };
            w.write(&l.push(s)).unwrap();
        }
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        let head = text.lines().next().unwrap();
        assert!(head.ends_with("gpu0_cap_w,cap_change,process_cpu_w,process_gpu_w,metric_f1"));
        // The command's GPU share was written: half of each GPU's power.
        assert!(text.lines().nth(2).unwrap().contains(",,,50.5,"), "{text}");
        let new = read_all(text.clone());
        // The same recording as an older carbontop wrote it: no cap_change, process or metric
        // columns after the GPU groups.
        let cut = |line: &str| {
            let f: Vec<&str> = line.split(',').collect();
            f[..f.len() - 4].join(",")
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
        }
    }
}
