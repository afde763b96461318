//! A recording accounted: samples.csv → the Ledger's ticks → a Meter, read once. `report`
//! (text, JSON, emissions.csv, PNG, comparison) and `replay` step through the same
//! [`Recorded`] fold, so a file gives the same figures wherever it is shown.

use crate::engine::constants::{EmbodiedKg, machine_embodied};
use crate::engine::{Basis, Ledger, LedgerConfig, Meter, Snapshot, Tick};
use crate::report::run_file::{self, RunFile};
use crate::report::samples::ReadError;
use crate::sample::Sample;
use crate::source::replay::Replay;
use crate::units::Pue;
use std::path::Path;

/// The TE a recording is charged with: it names no GPU models, so its GPUs are unnamed
/// data-centre GPUs and one server from the embodied table, with the table's published range.
/// A recording that holds `embodied_co2e_g` keeps its own figure (its TE was its machine's).
pub fn recording_te(gpu_count: usize) -> EmbodiedKg {
    let unnamed = vec![""; gpu_count];
    machine_embodied(&unnamed, 1)
}

/// A recording being replayed through the Ledger, tick by tick.
pub struct Recorded {
    pub rp: Replay,
    pub ledger: Ledger,
    pue: Option<f64>,
    te: EmbodiedKg,
    /// The next sample, read but not yet accounted.
    pending: Option<Sample>,
    pub error: Option<ReadError>,
    pub ended: bool,
    /// run.json beside the recording: None when there is none; Err(one line) when it is bad
    /// (the recording is still read, with what it holds alone).
    pub run: Result<Option<RunFile>, String>,
}

/// run.json beside a recording given as a file (not for standard input).
fn run_file_of(path: &Path) -> Result<Option<RunFile>, String> {
    if path.as_os_str() == "-" || !path.is_file() {
        return Ok(None);
    }
    run_file::read_beside(path)
}

impl Recorded {
    /// `pue`: the user's, else what the recording implies.
    pub fn open(path: &Path, pue: Option<f64>) -> Result<Self, ReadError> {
        let mut rp = Replay::open(path)?;
        rp.pue_given(pue.is_some());
        let run = run_file_of(path);
        // The TE the run was charged with (its GPUs and its share of the server), where
        // run.json says; else the table's figures for the recording's GPUs and one server.
        let te = run
            .as_ref()
            .ok()
            .and_then(|r| r.as_ref()?.embodied.as_ref()?.te())
            .unwrap_or_else(|| recording_te(rp.gpu_count()));
        Ok(Self {
            ledger: Ledger::new(LedgerConfig {
                pue: Pue::saturating(pue.unwrap_or(1.0)),
                embodied_kg: te.kg,
                ..Default::default()
            }),
            rp,
            pue,
            te,
            pending: None,
            error: None,
            ended: false,
            run,
        })
    }

    /// What the figures rest on: the recording's PUE (as learnt so far), its GPUs and TE.
    pub fn basis(&self) -> Basis {
        Basis {
            pue: self.ledger.config().pue,
            embodied: Some(self.te),
            gpu_count: self.rp.gpu_count(),
            ..Default::default()
        }
    }

    /// The next sample (read ahead, not yet accounted).
    pub fn peek(&mut self) -> Option<&Sample> {
        if self.pending.is_none() && !self.ended {
            match self.rp.next_sample() {
                Some(Ok((s, _gap))) => self.pending = Some(s),
                Some(Err(e)) => {
                    self.error = Some(e);
                    self.ended = true;
                }
                None => self.ended = true,
            }
        }
        self.pending.as_ref()
    }

    /// Accounts the next sample into the recorded tick.
    pub fn step(&mut self) -> Option<Tick> {
        self.peek()?;
        let s = self.pending.take()?;
        self.rp.apply_pue(&mut self.ledger, self.pue);
        let mut tick = self.ledger.push(s);
        tick.cap_change = self.rp.cap_change().clone();
        // Embodied carbon is what the recording says where it says it.
        if let Some(g) = self.rp.embodied_g() {
            tick.embodied_co2e_g = Some(g);
        }
        Some(tick)
    }

    /// Steps a tick into `meter` (its PUE following what the recording implies).
    pub fn step_into(&mut self, meter: &mut Meter) -> Option<Tick> {
        let tick = self.step()?;
        meter.basis.pue = self.ledger.config().pue;
        meter.push(&tick, self.ledger.totals());
        Some(tick)
    }
}

/// A recording, accounted once: its Meter (with the history charts need, if asked) and the
/// Snapshot every report formats.
#[derive(Debug, Clone)]
pub struct Recording {
    pub file: String,
    pub meter: Meter,
    pub snapshot: Snapshot,
    /// The line of a last row cut off mid-write (the recorder killed or out of disk), left out.
    pub truncated_tail: Option<u64>,
    /// run.json beside it (see [`Recorded::run`]).
    pub run: Result<Option<RunFile>, String>,
}

/// Streams `path` through the Ledger and a Meter (bounded memory, whatever the file's length).
pub fn account_file(path: &Path, pue: Option<f64>, history: bool) -> Result<Recording, ReadError> {
    let mut r = Recorded::open(path, pue)?;
    let mut meter = Meter::new(r.basis(), history);
    while r.step_into(&mut meter).is_some() {}
    if let Some(e) = r.error.take() {
        return Err(e);
    }
    Ok(Recording {
        file: r.rp.path().to_owned(),
        snapshot: meter.snapshot(),
        meter,
        truncated_tail: r.rp.truncated_tail(),
        run: r.run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::samples::{SamplesWriter, header};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_replayed_recording_writes_its_sources_and_cap_changes_back_unchanged() {
        // Labels this carbontop makes, and ones it does not know (an older or other tool's).
        let cells = [
            ("fixture", ""),
            ("co2signal-stale", "user gpu0 300->290 W"),
            (
                "uk-stale",
                "governor gpu0 290->275 W; governor gpu1 300->275 W",
            ),
            ("table", ""),
            ("watttime-moer", "restore gpu0 275->300 W"),
        ];
        let mut text = header(&[], &[]).join(",") + "\n";
        for (k, (src, cap)) in cells.iter().enumerate() {
            text += &format!(
                "2026-01-01T00:00:0{k}Z,{k},,10,,,,,,0,436,{src},0,,,,,,,{cap},,,,,,,,,,,,,,,\n"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        std::fs::write(&path, text).unwrap();

        let mut rec = Recorded::open(&path, None).unwrap();
        let sink = Sink::default();
        let mut w =
            SamplesWriter::to_sink(Box::new(sink.clone()), Path::new("out.csv"), &[], &[]).unwrap();
        while let Some(t) = rec.step() {
            w.write(&t).unwrap();
        }
        assert!(rec.error.is_none(), "{:?}", rec.error);

        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let mut rdr = csv::Reader::from_reader(out.as_bytes());
        let head = rdr.headers().unwrap().clone();
        let col = |name: &str| head.iter().position(|h| h == name).unwrap();
        let (src, cap) = (col("intensity_source"), col("cap_change"));
        let back: Vec<(String, String)> = rdr
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[src].to_owned(), r[cap].to_owned())
            })
            .collect();
        let want: Vec<(String, String)> = cells
            .iter()
            .map(|(s, c)| ((*s).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(back, want);
    }
}
