//! Each framework's log as it reaches carbontop through a pipe (fixtures/logs/*.log, written
//! by scripts/gen_progress_logs.py: timm 1.x, Lightning 2.x and transformers 5.x progress bars
//! drawn by tqdm itself, Keras 3's progress bar with its backspaces and colours) gives the
//! accuracy the framework reported at the end of each epoch (fixtures/logs/epochs.csv), read
//! the way `carbontop run` reads a command's output: through the terminal model, redraw by
//! redraw.
#![allow(clippy::unwrap_used)]

mod common;

use carbontop::source::progress::{LogReader, Parser};
use carbontop::source::term::Term;
use common::{fixture, num, quick, stderr};
use std::collections::BTreeMap;

struct Case {
    file: String,
    epochs: Vec<f64>,
    accuracy: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let table = std::fs::read_to_string(fixture("logs/epochs.csv")).unwrap();
    let cases: Vec<Case> = table
        .lines()
        .skip(1)
        .map(|row| {
            let f: Vec<&str> = row.split(',').collect();
            let nums = |s: &str| s.split(' ').map(num).collect::<Vec<f64>>();
            Case {
                file: f[0].to_owned(),
                epochs: nums(f[1]),
                accuracy: nums(f[2]),
            }
        })
        .collect();
    assert_eq!(cases.len(), 4);
    cases
}

/// What a replay reports: the last accuracy within each epoch, and every accuracy in order.
struct Replay {
    per_epoch: BTreeMap<i64, f64>,
    all: Vec<f64>,
}

/// The log's bytes in `chunks` (each read as a pipe read would deliver it), through the
/// terminal model and the progress reader.
fn replay<'a>(chunks: impl Iterator<Item = &'a [u8]>, paused: bool) -> Replay {
    let mut term = Term::new(false);
    let reader = LogReader::new(Parser::default());
    let mut segments = Vec::new();
    for c in chunks {
        segments.extend(term.feed(c, paused).segments);
    }
    segments.extend(term.finish().segments);
    let mut r = Replay {
        per_epoch: BTreeMap::new(),
        all: Vec::new(),
    };
    let mut epoch = None;
    for s in &segments {
        let p = reader.line(s);
        epoch = p.epoch.or(epoch);
        if let Some(a) = p.accuracy {
            r.all.push(a);
            let Some(e) = epoch else {
                panic!("an accuracy ({a}) before any epoch");
            };
            let e = e as i64;
            r.per_epoch.insert(e, a);
        }
    }
    r
}

/// The bytes split where a framework's writes end: before each `\r` or run of `\b` (a bar's
/// redraw starts there) and after each `\n`.
fn writes(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..bytes.len() {
        let redraw = (bytes[i] == b'\r' || bytes[i] == 8) && i > 0 && bytes[i - 1] != 8;
        if redraw && i > start {
            out.push(&bytes[start..i]);
            start = i;
        }
        if bytes[i] == b'\n' {
            out.push(&bytes[start..=i]);
            start = i + 1;
        }
    }
    out.push(&bytes[start..]);
    out
}

fn check(case: &Case, r: &Replay, how: &str) {
    let name = format!("{} ({how})", case.file);
    let want: BTreeMap<i64, f64> = case
        .epochs
        .iter()
        .map(|e| *e as i64)
        .zip(case.accuracy.iter().copied())
        .collect();
    assert_eq!(
        r.per_epoch.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{name}: epochs {:?}",
        r.per_epoch
    );
    for (e, a) in &want {
        let got = r.per_epoch[e];
        assert!((got - a).abs() < 1e-9, "{name}: epoch {e}: {got} vs {a}");
    }
    // Once the first epoch's accuracy is out, every accuracy reported is an epoch's: never a
    // batch's value, a bar's percentage, a loss or a training accuracy.
    let first = r
        .all
        .iter()
        .position(|a| (a - case.accuracy[0]).abs() < 1e-9)
        .unwrap();
    for a in &r.all[first..] {
        assert!(
            case.accuracy.iter().any(|w| (w - a).abs() < 1e-9),
            "{name}: {a} reported: {:?}",
            r.all
        );
    }
    // Only Keras shows a training accuracy before its first validation (the best the run
    // says until then); the others report nothing but their epochs' accuracy.
    if !case.file.starts_with("keras") {
        assert_eq!(first, 0, "{name}: {:?}", r.all);
    }
}

#[test]
fn each_frameworks_log_gives_the_accuracy_it_reported_for_each_epoch() {
    for case in cases() {
        let bytes = std::fs::read(fixture(&format!("logs/{}", case.file))).unwrap();
        // All at once (a log file), and write by write with the command pausing after each
        // (a live run: each redraw is read as it is drawn).
        check(&case, &replay(std::iter::once(&bytes[..]), false), "whole");
        let w = writes(&bytes);
        assert!(w.len() > 20, "{}: {} writes", case.file, w.len());
        check(&case, &replay(w.into_iter(), true), "write by write");
        // The real progress bars redraw with \r, not only at newlines.
        if !case.file.starts_with("timm") {
            assert!(bytes.contains(&b'\r'), "{}", case.file);
        }
    }
}

#[test]
fn the_bars_are_the_frameworks_own() {
    // Keras 3 on Linux always draws its dynamic bar: backspaces, \r, bold and green escapes.
    let keras = std::fs::read(fixture("logs/keras3_bar.log")).unwrap();
    for needle in [
        &b"\x08\r\x1b[1m"[..],
        b"\x1b[32m\xe2\x94\x81",
        b"val_accuracy: 0.9456",
    ] {
        assert!(keras.windows(needle.len()).any(|w| w == needle));
    }
    // Lightning's validation bar sits one row down and steps back up (tqdm position 1).
    let lightning = std::fs::read(fixture("logs/lightning2.log")).unwrap();
    assert!(lightning.windows(4).any(|w| w == b"\x1b[A\r"));
}

#[test]
fn run_reads_each_log_as_cat_prints_it() {
    // `carbontop run -- cat LOG`: the output forwarded byte for byte, and the last epoch and
    // its accuracy in the summary (cat is done before a second tick: the summary has what the
    // run read after its last row).
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let path = fixture(&format!("logs/{}", case.file));
        let o = quick("run", &dir.path().join(&case.file))
            .arg("--")
            .arg("cat")
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", case.file);
        assert!(
            o.stdout == std::fs::read(&path).unwrap(),
            "{}: not forwarded byte for byte",
            case.file
        );
        let want = format!(
            "progress   epoch {}, accuracy {:.2}%",
            case.epochs.last().unwrap(),
            case.accuracy.last().unwrap()
        );
        let err = stderr(&o);
        assert!(err.contains(&want), "{}: no {want:?} in\n{err}", case.file);
    }
}

#[test]
fn the_fixtures_match_their_generator() {
    // scripts/gen_progress_logs.py --check regenerates them with tqdm and compares; without
    // python3 and tqdm there is nothing to compare with.
    let ok = std::process::Command::new("python3")
        .args(["-c", "import tqdm"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 with tqdm is not installed (pip install tqdm)");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gen_progress_logs.py");
    let o = std::process::Command::new("python3")
        .args([script, "--check"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
