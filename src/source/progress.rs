//! Progress from a training run's log lines: epoch, step, accuracy (percent) and loss.
//!
//! A tolerant scanner for `key=value`, `key: value`, `'key': value` (Python dicts, JSON) and a few
//! space-separated forms (`Epoch 3/10`, `Acc@1 75.2`). It covers Keras epoch lines and progress
//! bars, Hugging Face Trainer dicts, Lightning progress bars, the PyTorch examples' `Accuracy:
//! 9848/10000 (98%)`, timm and JSON lines. A line that does not parse yields nothing, never an
//! error.
//!
//! Which accuracy counts: a held-out one (validation, evaluation, test) beats any other, in a
//! line and across the run: once the run has reported a held-out accuracy, a training accuracy
//! (Keras's `accuracy:` while an epoch trains, Lightning's `train_acc`) no longer counts
//! ([`LogReader`]). `key: value (average)`, the running-average convention of timm and the
//! PyTorch ImageNet example, reads the average; a timm validation line reports its accuracy
//! only at its last batch, so a batch's value is never the run's accuracy.

use crate::sample::Progress;
use std::sync::{Arc, Mutex};

/// Accuracy keys of a held-out set (validation, evaluation, test), most preferred first.
const HELD_OUT_ACCURACY_KEYS: &[&str] = &[
    "val_accuracy",
    "val_acc",
    "val/acc",
    "val/accuracy",
    "val_acc_epoch",
    "val_accuracy_epoch",
    "eval_accuracy",
    "eval_acc",
    // timm's summary.csv (`--metrics-file`): epoch,train_loss,eval_loss,eval_top1,eval_top5,lr
    "eval_top1",
    "test_accuracy",
    "test_acc",
];
/// Other accuracy keys, most preferred first: which set they measure the line does not say
/// (`accuracy` is training accuracy in a Keras bar, the test set's in the PyTorch examples), or
/// it is the training set.
const OTHER_ACCURACY_KEYS: &[&str] = &[
    "accuracy",
    "acc",
    "acc@1",
    "top1",
    "train_accuracy",
    "train_acc",
];
const LOSS_KEYS: &[&str] = &["loss", "train_loss", "eval_loss", "val_loss"];
const STEP_KEYS: &[&str] = &["step", "global_step", "iter", "iteration"];
/// Keys that may be followed by a bare space before their number.
const SPACED_KEYS: &[&str] = &["epoch", "acc@1", "step", "iter", "iteration"];

/// One `key value` pair found in a line.
#[derive(Debug, Clone, PartialEq)]
struct Pair {
    key: String,
    value: f64,
    percent: bool,
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'@' | b'/' | b'-')
}

/// Parses a number at `s[i..]`: returns (value, bytes consumed).
fn number_at(s: &[u8], i: usize) -> Option<(f64, usize)> {
    let mut j = i;
    if j < s.len() && (s[j] == b'-' || s[j] == b'+') {
        j += 1;
    }
    let digits_start = j;
    while j < s.len() && (s[j].is_ascii_digit() || s[j] == b'.') {
        j += 1;
    }
    if j == digits_start {
        return None;
    }
    if j < s.len() && (s[j] == b'e' || s[j] == b'E') {
        let mut k = j + 1;
        if k < s.len() && (s[k] == b'-' || s[k] == b'+') {
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            while k < s.len() && s[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[i..j]).ok()?.trim_end_matches('.');
    let v: f64 = text.parse().ok()?;
    v.is_finite().then_some((v, j - i))
}

/// `( 45.120)` at `s[i..]` (spaces allowed inside and before): the number and the bytes up to
/// and with the closing parenthesis.
fn paren_number_at(s: &[u8], i: usize) -> Option<(f64, usize)> {
    let skip = |mut j: usize| {
        while j < s.len() && s[j] == b' ' {
            j += 1;
        }
        j
    };
    let open = skip(i);
    if s.get(open) != Some(&b'(') {
        return None;
    }
    let start = skip(open + 1);
    let (v, used) = number_at(s, start)?;
    let close = skip(start + used);
    (s.get(close) == Some(&b')')).then_some((v, close + 1 - i))
}

/// The `key value` pairs of a line. `summary`: the line is a summary (`* Acc@1 75.2 (24.8)`,
/// timm's validate.py), where a spaced key's parenthesised number is not an average.
fn pairs(line: &str, summary: bool) -> Vec<Pair> {
    let s = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if !is_key_char(s[i]) || (i > 0 && is_key_char(s[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && is_key_char(s[i]) {
            i += 1;
        }
        let key = line[start..i].to_ascii_lowercase();
        let mut j = i;
        if j < s.len() && (s[j] == b'\'' || s[j] == b'"') {
            j += 1;
        }
        while j < s.len() && s[j] == b' ' {
            j += 1;
        }
        let colon = j < s.len() && s[j] == b':';
        let sep = colon || (j < s.len() && s[j] == b'=');
        if sep {
            j += 1;
            while j < s.len() && (s[j] == b' ' || s[j] == b'\'' || s[j] == b'"') {
                j += 1;
            }
            // `Epoch: [3]` (the PyTorch ImageNet example, DeiT).
            if key == "epoch" && s.get(j) == Some(&b'[') {
                j += 1;
            }
        } else if !(j > i && SPACED_KEYS.contains(&key.as_str())) {
            continue;
        }
        let Some((mut value, used)) = number_at(s, j) else {
            continue;
        };
        let mut k = j + used;
        let mut percent = false;
        let mut fraction = false;
        // `9848/10000` is a count of correct answers over the total.
        if s.get(k) == Some(&b'/')
            && let Some((den, used2)) = number_at(s, k + 1)
        {
            if key != "epoch" && den > 0.0 {
                value = value / den * 100.0;
                percent = true;
            }
            fraction = true;
            k += 1 + used2;
        }
        if s.get(k) == Some(&b'%') {
            percent = true;
        } else if !fraction
            && (colon || (!sep && !summary))
            && let Some((avg, used3)) = paren_number_at(s, k)
        {
            // `Acc@1: 46.000 ( 45.120)`: this batch's value, then the running average.
            value = avg;
            k += used3;
        }
        out.push(Pair {
            key,
            value,
            percent,
        });
        i = k.max(i);
    }
    out
}

fn first_of<'a>(pairs: &'a [Pair], keys: &[&str]) -> Option<&'a Pair> {
    keys.iter().find_map(|k| pairs.iter().find(|p| p.key == *k))
}

/// Accuracy normalised to percent: a value ≤ 1 without a `%` is a fraction.
fn as_percent(value: f64, percent: bool) -> f64 {
    if percent || value > 1.0 {
        value
    } else {
        value * 100.0
    }
}

/// `[  78/78]` in `line`: the first bracketed count, as (done, of).
fn bracket_count(line: &str) -> Option<(f64, f64)> {
    let s = line.as_bytes();
    let open = line.find('[')?;
    let mut j = open + 1;
    while s.get(j) == Some(&b' ') {
        j += 1;
    }
    let (done, used) = number_at(s, j)?;
    j += used;
    if s.get(j) != Some(&b'/') {
        return None;
    }
    let (of, _) = number_at(s, j + 1)?;
    Some((done, of))
}

/// What the shape of a line says beyond its pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// Nothing special.
    Plain,
    /// A validation line (`Test: [  78/78]  … Acc@1: …`, timm, the PyTorch ImageNet example;
    /// `Test set: …`, the PyTorch MNIST example) or the summary after one (` * Acc@1 75.2`):
    /// its accuracy is a held-out one. `last`: false for a running average part-way through
    /// the validation set, which is no accuracy of the run yet.
    Validation { last: bool },
    /// `Train: 3 [  50/1251 (  4%)]` (timm): the number after `Train:` is the epoch.
    TimmTrain(f64),
    /// Says nothing about the run now (`*** Best metric: 81.2 (epoch 7)`, timm's last line).
    Ignore,
}

fn shape(line: &str) -> Shape {
    let t = line.trim_start();
    if t.starts_with("*** Best metric") {
        return Shape::Ignore;
    }
    if t.starts_with('*') {
        return Shape::Validation { last: true };
    }
    if t.starts_with("Test") {
        let last = bracket_count(t).is_none_or(|(done, of)| done >= of);
        return Shape::Validation { last };
    }
    if let Some(rest) = t.strip_prefix("Train: ")
        && let Some((n, used)) = number_at(rest.as_bytes(), 0)
        && rest[used..].starts_with(" [")
        && n >= 0.0
    {
        return Shape::TimmTrain(n);
    }
    Shape::Plain
}

/// What a line reports, and what it says about the run's accuracy names.
#[derive(Debug, Default)]
struct Reading {
    progress: Progress,
    /// Its accuracy is a held-out set's (by its key, or by the line's shape).
    held_out: bool,
    /// The key its accuracy came from.
    key: Option<String>,
    /// Names this line shows to be the training set's: other accuracy keys beside a held-out
    /// one (`accuracy` beside `val_accuracy`), or the key a validation line used (`acc@1` in
    /// `Test: […]`: the same name on other lines is the training set's).
    training: Vec<String>,
}

fn read_line(line: &str) -> Reading {
    let shape = shape(line);
    if shape == Shape::Ignore {
        return Reading::default();
    }
    let ps = pairs(line, line.trim_start().starts_with('*'));
    if ps.is_empty() {
        return Reading::default();
    }
    let validation = matches!(shape, Shape::Validation { .. });
    let (chosen, held_out) = match first_of(&ps, HELD_OUT_ACCURACY_KEYS) {
        Some(p) => (Some(p), true),
        None => (first_of(&ps, OTHER_ACCURACY_KEYS), validation),
    };
    let training = if held_out {
        ps.iter()
            .filter(|p| OTHER_ACCURACY_KEYS.contains(&p.key.as_str()))
            .filter(|p| validation || chosen.is_none_or(|c| c.key != p.key))
            .map(|p| p.key.clone())
            .collect()
    } else {
        Vec::new()
    };
    let accuracy = chosen
        .filter(|_| shape != Shape::Validation { last: false })
        .map(|p| as_percent(p.value, p.percent))
        .filter(|v| (0.0..=100.0).contains(v));
    let epoch = match shape {
        Shape::TimmTrain(n) => Some(n),
        _ => first_of(&ps, &["epoch"]).map(|p| p.value),
    };
    let progress = Progress {
        epoch: epoch.filter(|v| *v >= 0.0),
        step: first_of(&ps, STEP_KEYS)
            .map(|p| p.value)
            .filter(|v| *v >= 0.0 && v.fract() == 0.0 && *v < 1e15)
            .map(|v| v as u64),
        accuracy,
        loss: first_of(&ps, LOSS_KEYS).map(|p| p.value),
        metrics: Vec::new(),
    };
    Reading {
        held_out: held_out && progress.accuracy.is_some(),
        key: chosen
            .filter(|_| progress.accuracy.is_some())
            .map(|p| p.key.clone()),
        progress,
        training,
    }
}

/// Extracts whatever progress a line reports (a held-out accuracy preferred to any other).
pub fn parse_line(line: &str) -> Progress {
    read_line(line).progress
}

/// Where a `--metric NAME=REGEX` value goes.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Accuracy,
    Loss,
    Epoch,
    Step,
    Named(String),
}

/// The built-in formats plus the user's `--metric NAME=REGEX` patterns: the first capture group
/// (or the whole match) is the value. NAME `accuracy`, `loss`, `epoch` or `step` overrides the
/// built-in reading; any other name is a metric of its own (`metric_<name>` in samples.csv).
#[derive(Debug, Clone, Default)]
pub struct Parser {
    custom: Vec<(Field, regex::Regex)>,
}

/// The NAME a `--metric` gave for a field.
fn field_name(f: &Field) -> &str {
    match f {
        Field::Accuracy => "accuracy",
        Field::Loss => "loss",
        Field::Epoch => "epoch",
        Field::Step => "step",
        Field::Named(n) => n,
    }
}

impl Parser {
    /// From `NAME=REGEX` specs; errors name the flag and the spec.
    pub fn new(specs: &[String]) -> Result<Self, String> {
        let mut custom = Vec::new();
        for spec in specs {
            let (name, pat) = spec
                .split_once('=')
                .filter(|(n, p)| !n.trim().is_empty() && !p.is_empty())
                .ok_or_else(|| {
                    format!("--metric {spec:?}: give NAME=REGEX, e.g. f1=f1[=:] *([0-9.]+)")
                })?;
            let name = name.trim().to_ascii_lowercase();
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "--metric {spec:?}: NAME may hold letters, digits and _ only (it names a column)"
                ));
            }
            let re = regex::Regex::new(pat)
                .map_err(|e| format!("--metric {spec:?}: {}", e.to_string().replace('\n', " ")))?;
            let field = match name.as_str() {
                // One column per name: a second pattern would make a second `metric_NAME`.
                _ if custom.iter().any(|(f, _)| field_name(f) == name) => {
                    return Err(format!(
                        "--metric {spec:?}: {name} is already given: one pattern per NAME \
                         (alternatives go in one REGEX, with |)"
                    ));
                }
                "accuracy" | "acc" => Field::Accuracy,
                "loss" => Field::Loss,
                "epoch" => Field::Epoch,
                "step" => Field::Step,
                _ => Field::Named(name),
            };
            custom.push((field, re));
        }
        Ok(Self { custom })
    }

    /// The names of the user's own metrics, in order (samples.csv's `metric_<name>` columns).
    pub fn metric_names(&self) -> Vec<String> {
        self.custom
            .iter()
            .filter_map(|(f, _)| match f {
                Field::Named(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whatever progress `line` reports.
    pub fn parse(&self, line: &str) -> Progress {
        self.read(line).progress
    }

    /// What `line` reports (an accuracy the user's own `--metric accuracy=…` pattern found
    /// counts as a held-out one).
    fn read(&self, line: &str) -> Reading {
        let mut r = read_line(line);
        let p = &mut r.progress;
        for (field, re) in &self.custom {
            let Some(c) = re.captures(line) else {
                continue;
            };
            let text = c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str());
            let percent = text.trim_end().ends_with('%');
            let Some(v) = text
                .trim()
                .trim_end_matches('%')
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
            else {
                continue;
            };
            match field {
                Field::Accuracy => {
                    p.accuracy = Some(as_percent(v, percent)).filter(|a| (0.0..=100.0).contains(a));
                    r.held_out = true;
                    r.key = None;
                }
                Field::Loss => p.loss = Some(v),
                Field::Epoch => p.epoch = Some(v).filter(|e| *e >= 0.0),
                Field::Step => {
                    p.step = Some(v)
                        .filter(|s| *s >= 0.0 && s.fract() == 0.0 && *s < 1e15)
                        .map(|s| s as u64);
                }
                Field::Named(n) => p.metrics.push((n.clone(), v)),
            }
        }
        r
    }

    /// A CSV metrics file's row as the `key=value` text the parser reads.
    pub fn csv_row(header: &[String], row: &str) -> String {
        header
            .iter()
            .zip(row.split(','))
            .map(|(k, v)| format!("{}={}", k.trim(), v.trim()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A run's log read line by line: what each line reports, where a training accuracy stops
/// counting once the run has reported a held-out one (so Keras's `accuracy:` while epoch 2
/// trains does not replace epoch 1's `val_accuracy`). A training accuracy is one under a
/// `train_` key, or under a name the run itself showed to be the training set's: printed beside
/// a held-out accuracy (`accuracy` beside `val_accuracy`), or used by a validation line for its
/// own (`Acc@1` in `Test: […]` and ` * Acc@1`, then `Acc@1` in the training lines). Until a
/// held-out accuracy comes, the training one is the best the run says. Clones share this
/// memory: a run's stdout and stderr are one log.
#[derive(Debug, Clone, Default)]
pub struct LogReader {
    parser: Parser,
    names: Arc<Mutex<AccuracyNames>>,
}

/// What a run has shown about its accuracy names.
#[derive(Debug, Default)]
struct AccuracyNames {
    held_out_seen: bool,
    training: Vec<String>,
}

impl LogReader {
    pub fn new(parser: Parser) -> Self {
        Self {
            parser,
            names: Arc::default(),
        }
    }

    /// The progress one line (or one redraw of a progress bar) reports.
    pub fn line(&self, text: &str) -> Progress {
        let r = self.parser.read(text);
        let mut p = r.progress;
        let Ok(mut names) = self.names.lock() else {
            return p;
        };
        for t in r.training {
            if !names.training.contains(&t) && names.training.len() < 16 {
                names.training.push(t);
            }
        }
        if r.held_out {
            names.held_out_seen = true;
        } else if let Some(k) = &r.key
            && names.held_out_seen
            && (k.starts_with("train") || names.training.contains(k))
        {
            p.accuracy = None;
        }
        p
    }

    /// The names of the user's own metrics (see [`Parser::metric_names`]).
    pub fn metric_names(&self) -> Vec<String> {
        self.parser.metric_names()
    }
}

/// The lines of a metrics file (JSON lines, or CSV: a header line, then rows) turned into
/// progress; bytes that are not UTF-8 are replaced, never an error.
#[derive(Debug, Clone)]
pub struct MetricsLines {
    reader: LogReader,
    csv: bool,
    header: Option<Vec<String>>,
}

impl MetricsLines {
    pub fn new(parser: Parser, csv: bool) -> Self {
        Self {
            reader: LogReader::new(parser),
            csv,
            header: None,
        }
    }

    /// One whole line (its end of line included or not): the progress it reports.
    pub fn line(&mut self, bytes: &[u8]) -> Progress {
        let whole = String::from_utf8_lossy(bytes);
        let text = whole.trim_end();
        if !self.csv {
            return self.reader.line(text);
        }
        match &self.header {
            None => {
                self.header = Some(text.split(',').map(|h| h.trim().to_owned()).collect());
                Progress::default()
            }
            Some(h) => self.reader.line(&Parser::csv_row(h, text)),
        }
    }

    /// The file was rewritten: its next line is a header again.
    pub fn restart(&mut self) {
        self.header = None;
    }
}

/// The longest metrics-file line read: a JSON line of a few hundred metrics is under 16 KiB.
const MAX_METRICS_LINE: usize = 64 << 10;

/// `--metrics-file PATH`: follows a JSON-lines or CSV file (a header line, then rows) that a
/// run launched elsewhere writes, from its first line on, and hands each line's progress to
/// `emit` until it returns false. A file that does not exist yet is waited for.
pub fn follow_file<F>(path: std::path::PathBuf, parser: Parser, emit: F) -> std::io::Result<()>
where
    F: Fn(Progress) -> bool + Send + 'static,
{
    use std::io::{BufRead, Read, Seek};
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    std::thread::Builder::new()
        .name("carbontop-metrics-file".into())
        .spawn(move || {
            let pause = std::time::Duration::from_millis(250);
            let mut lines = MetricsLines::new(parser, csv);
            let mut pos = 0u64;
            let mut pending = Vec::new();
            // The rest of a line longer than MAX_METRICS_LINE is being skipped.
            let mut skipping = false;
            loop {
                let Ok(f) = std::fs::File::open(&path) else {
                    std::thread::sleep(pause);
                    continue;
                };
                // A file that shrank was rewritten: start again from its top.
                if f.metadata().map(|m| m.len()).unwrap_or(0) < pos {
                    pos = 0;
                    lines.restart();
                    pending.clear();
                    skipping = false;
                }
                let mut r = std::io::BufReader::new(f);
                if r.seek(std::io::SeekFrom::Start(pos)).is_err() {
                    std::thread::sleep(pause);
                    continue;
                }
                loop {
                    // Bytes, not read_line: a line that is not UTF-8 must not stall the follower.
                    // At most MAX_METRICS_LINE of a line is held (issue 20: `/dev/zero` took
                    // 4.7 GB): a longer line is skipped to its end.
                    let room = (MAX_METRICS_LINE + 1).saturating_sub(pending.len()) as u64;
                    match (&mut r).take(room).read_until(b'\n', &mut pending) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => pos += n as u64,
                    }
                    // A line still being written is read again once it is whole.
                    if pending.last() != Some(&b'\n') {
                        if pending.len() > MAX_METRICS_LINE {
                            pending.clear();
                            skipping = true;
                            // Paced, so an endless line costs no CPU to skip.
                            std::thread::sleep(pause);
                        }
                        continue;
                    }
                    if std::mem::take(&mut skipping) {
                        pending.clear();
                        continue;
                    }
                    let p = lines.line(&std::mem::take(&mut pending));
                    if !p.is_empty() && !emit(p) {
                        return;
                    }
                }
                std::thread::sleep(pause);
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_lines_read_csv_after_its_header_and_survive_bytes_that_are_not_utf8() {
        let mut m = MetricsLines::new(Parser::default(), true);
        assert!(m.line(b"epoch,accuracy\n").is_empty());
        let p = m.line(b"2,0.75\n");
        assert_eq!((p.epoch, p.accuracy), (Some(2.0), Some(75.0)));
        assert!(m.line(b"\xff\xfe,\x80\n").is_empty());
        assert_eq!(m.line(b"3,0.8").epoch, Some(3.0));
        m.restart();
        assert!(m.line(b"step,loss\n").is_empty());
        assert_eq!(m.line(b"7,0.5\n").step, Some(7));
        let mut j = MetricsLines::new(Parser::default(), false);
        assert_eq!(j.line(b"{\"accuracy\": 51.5}\xff\n").accuracy, Some(51.5));
    }

    #[test]
    fn keras_epoch_line() {
        let p = parse_line(
            "469/469 [==============================] - 3s 6ms/step - loss: 0.2883 - accuracy: 0.9171 - val_loss: 0.1433 - val_accuracy: 0.9576",
        );
        assert_eq!(p.loss, Some(0.2883));
        assert!((p.accuracy.unwrap() - 95.76).abs() < 1e-9);
        assert_eq!(parse_line("Epoch 3/10").epoch, Some(3.0));
    }

    #[test]
    fn hugging_face_dict() {
        let p = parse_line("{'eval_loss': 0.41, 'eval_accuracy': 0.8812, 'epoch': 2.0}");
        assert_eq!(p.epoch, Some(2.0));
        assert!((p.accuracy.unwrap() - 88.12).abs() < 1e-9);
        assert_eq!(p.loss, Some(0.41));
    }

    #[test]
    fn pytorch_examples_and_lightning_and_json() {
        let p = parse_line("Test set: Average loss: 0.0330, Accuracy: 9848/10000 (98%)");
        assert!((p.accuracy.unwrap() - 98.48).abs() < 1e-9);
        assert_eq!(p.loss, Some(0.033));
        let p = parse_line(
            "Epoch 4: 100%|████| 938/938 [00:12<00:00, v_num=0, val_acc=0.912, train_loss=0.21]",
        );
        assert_eq!(p.epoch, Some(4.0));
        assert!((p.accuracy.unwrap() - 91.2).abs() < 1e-9);
        let p = parse_line(r#"{"step": 1200, "epoch": 3, "accuracy": 71.5, "loss": 0.9}"#);
        assert_eq!(p.step, Some(1200));
        assert_eq!(p.accuracy, Some(71.5));
        let p = parse_line(" * Acc@1 75.214 Acc@5 92.1");
        assert_eq!(p.accuracy, Some(75.214));
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn timm_validation_reports_the_average_at_its_last_batch_only() {
        // timm 1.x train.py, validate(): `Acc@1: {top1_m.val:>7.3f} ({top1_m.avg:>7.3f})`,
        // logged every log_interval batches and at the last (batch_idx == last_idx).
        let mid = parse_line(
            "Test: [   0/19]  Time: 0.112 (0.210)  Loss:   1.204 ( 1.204)  Acc@1:  51.852 ( 51.852)  Acc@5:  76.852 ( 76.852)",
        );
        assert_eq!((mid.accuracy, mid.loss), (None, Some(1.204)));
        let r = read_line(
            "Test: [  19/19]  Time: 0.131 (0.210)  Loss:   1.360 ( 1.372)  Acc@1:  45.606 ( 45.120)  Acc@5:  70.606 ( 70.120)",
        );
        let last = &r.progress;
        assert_eq!(
            (last.accuracy, last.loss, r.held_out),
            (Some(45.12), Some(1.372), true)
        );
        // With --model-ema the EMA model is validated next, and its numbers are the epoch's.
        let ema = parse_line(
            "Test (EMA): [  19/19]  Time: 0.131 (0.210)  Loss:   1.301 ( 1.330)  Acc@1:  47.000 ( 46.250)  Acc@5:  71.000 ( 70.900)",
        );
        assert_eq!(ema.accuracy, Some(46.25));
        // train_one_epoch: the epoch and the running loss.
        let t = parse_line(
            "Train: 2 [  50/120 ( 42%)]  Loss: 2.84 (2.97)  Time: 0.320s,  800.88/s  (0.325s,  787.69/s)  LR: 2.500e-04  Data: 0.002 (0.012)",
        );
        assert_eq!((t.epoch, t.loss, t.accuracy), (Some(2.0), Some(2.97), None));
        // The checkpoint list and the best metric at the end say nothing about the run now.
        assert!(
            parse_line(
                " ('./output/train/20260101-120000-resnet18-224/checkpoint-1.pth.tar', 58.342)"
            )
            .is_empty()
        );
        assert!(parse_line("*** Best metric: 63.904999999999994 (epoch 2)").is_empty());
        // validate.py's summary: top-1 then its error, not an average.
        let s = parse_line(" * Acc@1 45.120 (54.880) Acc@5 71.920 (28.080)");
        assert_eq!(s.accuracy, Some(45.12));
        // summary.csv, followed with --metrics-file.
        let h: Vec<String> = [
            "epoch",
            "train_loss",
            "eval_loss",
            "eval_top1",
            "eval_top5",
            "lr",
        ]
        .map(String::from)
        .to_vec();
        let p = parse_line(&Parser::csv_row(&h, "2,2.85,0.902,63.905,88.905,0.00025"));
        assert_eq!((p.epoch, p.accuracy), (Some(2.0), Some(63.905)));
    }

    #[test]
    fn the_pytorch_imagenet_examples_running_averages() {
        // ProgressMeter: `Acc@1  75.00 ( 72.11)` (value, then the average); `Epoch: [3]`.
        let p = parse_line(
            "Epoch: [3][ 10/5005]\tTime  0.312 ( 0.330)\tLoss 1.2e+00 (1.3e+00)\tAcc@1  75.00 ( 72.11)\tAcc@5  90.62 ( 89.50)",
        );
        assert_eq!((p.epoch, p.accuracy), (Some(3.0), Some(72.11)));
        // Part-way through validation: no accuracy of the run yet; the summary gives it.
        let p = parse_line("Test: [ 10/196]\tTime  0.101 ( 0.150)\tAcc@1  80.00 ( 76.42)");
        assert_eq!(p.accuracy, None);
        assert_eq!(
            parse_line(" * Acc@1 76.130 Acc@5 92.862").accuracy,
            Some(76.13)
        );
    }

    #[test]
    fn progress_bars_and_their_postfix() {
        // Lightning 2.x TQDMProgressBar: tqdm's postfix, `k=v` joined by ", ".
        let p = parse_line(
            "Epoch 3: 100%|██████████| 938/938 [00:12<00:00, 75.1it/s, v_num=0, train_loss=0.123, val_acc=0.812]",
        );
        assert_eq!(p.epoch, Some(3.0));
        assert!(close(p.accuracy, 81.2));
        assert_eq!(p.loss, Some(0.123));
        // A bar's percentage and rate, and train_loss, are no accuracy.
        for noise in [
            "Epoch 0:  42%|████▏     | 10/24 [00:00<00:00, 76.92it/s, v_num=0, train_loss=0.654]",
            "Validation DataLoader 0: 100%|██████████| 6/6 [00:00<00:00, 150.00it/s]",
            " 50%|█████     | 20/40 [00:01<00:01, 16.67it/s]",
            "Sanity Checking DataLoader 0:  50%|█████     | 1/2 [00:00<?, ?it/s]",
        ] {
            assert_eq!(parse_line(noise).accuracy, None, "{noise}");
        }
        // transformers 5.x ProgressCallback: floats printed as f"{v:.4g}" strings.
        let p = parse_line(
            "{'eval_loss': '0.3669', 'eval_accuracy': '0.8312', 'eval_runtime': '1.203', 'eval_samples_per_second': '831.2', 'eval_steps_per_second': '104.1', 'epoch': '1'}",
        );
        assert_eq!((p.epoch, p.loss), (Some(1.0), Some(0.3669)));
        assert!(close(p.accuracy, 83.12));
        let p = parse_line(
            "{'loss': '0.35', 'grad_norm': '2.133', 'learning_rate': '3.75e-05', 'epoch': '0.5'}",
        );
        assert_eq!((p.epoch, p.loss, p.accuracy), (Some(0.5), Some(0.35), None));
    }

    #[test]
    fn a_held_out_accuracy_outranks_training_accuracy_for_the_rest_of_the_run() {
        let r = LogReader::new(Parser::default());
        // Keras 3 while epoch 1 trains: the training accuracy stands in …
        let p = r.line("10/30 ━━━━━━ 0s 21ms/step - accuracy: 0.6012 - loss: 0.6400");
        assert!(close(p.accuracy, 60.12));
        // … until the epoch's end reports the validation accuracy …
        let p = r.line(
            "30/30 ━━━━━━━━━━━━━━━━━━━━ 1s 21ms/step - accuracy: 0.7000 - loss: 0.4800 - val_accuracy: 0.9456 - val_loss: 0.0816",
        );
        assert!(close(p.accuracy, 94.56));
        // … and epoch 2's training accuracy no longer counts (its loss still does).
        let p = r.line(" 5/30 ━━━━━━ 0s 21ms/step - accuracy: 0.9800 - loss: 0.0300");
        assert_eq!((p.accuracy, p.loss), (None, Some(0.03)));
        // Clones are the same run (its stdout and stderr); a new reader is a new run.
        assert_eq!(r.clone().line("train_acc=0.99").accuracy, None);
        let fresh = LogReader::new(Parser::default());
        assert!(close(fresh.line("train_acc=0.99").accuracy, 99.0));
        // The user's own accuracy pattern always counts.
        let u = LogReader::new(Parser::new(&["accuracy=top1 ([0-9.]+)".into()]).unwrap());
        u.line("val_acc=0.5");
        assert!(close(u.line("train top1 0.7").accuracy, 70.0));
        // A name the run never showed to be the training set's still counts.
        let kv = LogReader::new(Parser::default());
        kv.line("epoch=1 step=200 loss=1.2125 val_accuracy=0.7362 time=1.1s");
        assert!(close(
            kv.line("epoch 2 | step 400 | accuracy: 82.44%").accuracy,
            82.44
        ));
        // The PyTorch ImageNet example: Acc@1 in the training lines is the training set's
        // once the validation summary used the name.
        let im = LogReader::new(Parser::default());
        let train = "Epoch: [1][ 10/5005]\tAcc@1  75.00 ( 72.11)";
        assert!(close(im.line(train).accuracy, 72.11));
        assert!(close(
            im.line(" * Acc@1 76.130 Acc@5 92.862").accuracy,
            76.13
        ));
        assert_eq!(im.line(train).accuracy, None);
        // A metrics file reads the same way.
        let mut m = MetricsLines::new(Parser::default(), false);
        assert!(close(m.line(br#"{"val_acc": 0.5}"#).accuracy, 50.0));
        assert_eq!(m.line(br#"{"train_acc": 0.9}"#).accuracy, None);
    }

    #[test]
    fn noise_yields_nothing() {
        assert!(parse_line("Downloading shards: 100%").is_empty());
        assert!(parse_line("").is_empty());
        assert!(parse_line("accuracy: nan").is_empty());
        assert!(parse_line("accuracy: 250").accuracy.is_none());
        assert!(parse_line("step=-3 step=1.5").step.is_none());
    }

    #[test]
    fn every_fixture_log_yields_its_accuracy_series() {
        // fixtures/logs/expected.csv: file, the accuracy series it yields, its last epoch.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/logs");
        let table = std::fs::read_to_string(format!("{dir}/expected.csv")).unwrap();
        for row in table.lines().skip(1) {
            let f: Vec<&str> = row.split(',').collect();
            let want: Vec<f64> = f[1].split(' ').map(|v| v.parse().unwrap()).collect();
            let text = std::fs::read_to_string(format!("{dir}/{}", f[0])).unwrap();
            let mut got = Vec::new();
            let mut last_epoch = None;
            let reader = LogReader::new(Parser::default());
            for line in text.lines() {
                let p = reader.line(line);
                // A value repeated by the next line (a summary after its validation lines) is
                // one reading.
                if let Some(a) = p.accuracy
                    && got.last() != Some(&a)
                {
                    got.push(a);
                }
                last_epoch = p.epoch.or(last_epoch);
            }
            assert_eq!(got.len(), want.len(), "{}: {got:?}", f[0]);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-9, "{}: {got:?} vs {want:?}", f[0]);
            }
            if !f[2].is_empty() {
                assert_eq!(last_epoch, f[2].parse().ok(), "{}", f[0]);
            }
        }
    }

    #[test]
    fn user_metrics_override_and_add() {
        let p = Parser::new(&[
            "f1=F1 score: ([0-9.]+)".into(),
            "accuracy=top-1 ([0-9.]+%)".into(),
        ])
        .unwrap();
        assert_eq!(p.metric_names(), ["f1"]);
        let got = p.parse("eval: F1 score: 0.873, top-1 91.5% loss=0.3");
        assert_eq!(got.metric("f1"), Some(0.873));
        assert_eq!(got.accuracy, Some(91.5));
        assert_eq!(got.loss, Some(0.3));
        // Not matching: nothing of its own, the built-in reading stays.
        assert_eq!(p.parse("accuracy=0.5").accuracy, Some(50.0));
        for bad in ["f1", "=x", "f 1=x", "f1=(["] {
            let e = Parser::new(&[bad.into()]).unwrap_err();
            assert!(e.starts_with("--metric "), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn csv_rows_read_as_key_value() {
        let h: Vec<String> = ["epoch", "val_accuracy", "loss"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = parse_line(&Parser::csv_row(&h, "3, 0.71, 0.9"));
        assert_eq!(
            (p.epoch, p.accuracy, p.loss),
            (Some(3.0), Some(71.0), Some(0.9))
        );
    }

    #[test]
    fn a_metrics_file_is_followed_as_it_grows() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let (tx, rx) = std::sync::mpsc::channel();
        follow_file(path.clone(), Parser::default(), move |p| tx.send(p).is_ok()).unwrap();
        // The file appears later, and its last line arrives in two writes.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, r#"{{"epoch": 1, "val_accuracy": 0.5}}"#).unwrap();
        write!(f, r#"{{"epoch": 2, "val_"#).unwrap();
        f.flush().unwrap();
        let wait = std::time::Duration::from_secs(5);
        assert_eq!(rx.recv_timeout(wait).unwrap().accuracy, Some(50.0));
        std::thread::sleep(std::time::Duration::from_millis(400));
        writeln!(f, r#"accuracy": 0.6}}"#).unwrap();
        f.flush().unwrap();
        let p = rx.recv_timeout(wait).unwrap();
        assert_eq!((p.epoch, p.accuracy), (Some(2.0), Some(60.0)));
    }
}
