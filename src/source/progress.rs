//! Progress from a training run's log lines: epoch, step, accuracy (percent) and loss.
//!
//! A tolerant scanner for `key=value`, `key: value`, `'key': value` (Python dicts, JSON) and a few
//! space-separated forms (`Epoch 3/10`, `Acc@1 75.2`). It covers Keras epoch lines, Hugging Face
//! Trainer dicts, Lightning progress bars, the PyTorch examples' `Accuracy: 9848/10000 (98%)`,
//! timm and JSON lines. A line that does not parse yields nothing, never an error.

use crate::sample::Progress;

/// Accuracy keys, most preferred first: validation beats training accuracy.
const ACCURACY_KEYS: &[&str] = &[
    "val_accuracy",
    "val_acc",
    "val/acc",
    "val/accuracy",
    "eval_accuracy",
    "eval_acc",
    "test_accuracy",
    "test_acc",
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

fn pairs(line: &str) -> Vec<Pair> {
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
        let sep = j < s.len() && (s[j] == b':' || s[j] == b'=');
        if sep {
            j += 1;
            while j < s.len() && (s[j] == b' ' || s[j] == b'\'' || s[j] == b'"') {
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
        // `9848/10000` is a count of correct answers over the total.
        if s.get(k) == Some(&b'/')
            && let Some((den, used2)) = number_at(s, k + 1)
        {
            if key != "epoch" && den > 0.0 {
                value = value / den * 100.0;
                percent = true;
            }
            k += 1 + used2;
        }
        if s.get(k) == Some(&b'%') {
            percent = true;
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

/// Extracts whatever progress a line reports.
pub fn parse_line(line: &str) -> Progress {
    let ps = pairs(line);
    if ps.is_empty() {
        return Progress::default();
    }
    Progress {
        epoch: first_of(&ps, &["epoch"])
            .map(|p| p.value)
            .filter(|v| *v >= 0.0),
        step: first_of(&ps, STEP_KEYS)
            .map(|p| p.value)
            .filter(|v| *v >= 0.0 && v.fract() == 0.0 && *v < 1e15)
            .map(|v| v as u64),
        accuracy: first_of(&ps, ACCURACY_KEYS)
            .map(|p| as_percent(p.value, p.percent))
            .filter(|v| (0.0..=100.0).contains(v)),
        loss: first_of(&ps, LOSS_KEYS).map(|p| p.value),
        metrics: Vec::new(),
    }
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
        let mut p = parse_line(line);
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
        p
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

/// The lines of a metrics file (JSON lines, or CSV: a header line, then rows) turned into
/// progress; bytes that are not UTF-8 are replaced, never an error.
#[derive(Debug, Clone)]
pub struct MetricsLines {
    parser: Parser,
    csv: bool,
    header: Option<Vec<String>>,
}

impl MetricsLines {
    pub fn new(parser: Parser, csv: bool) -> Self {
        Self {
            parser,
            csv,
            header: None,
        }
    }

    /// One whole line (its end of line included or not): the progress it reports.
    pub fn line(&mut self, bytes: &[u8]) -> Progress {
        let whole = String::from_utf8_lossy(bytes);
        let text = whole.trim_end();
        if !self.csv {
            return self.parser.parse(text);
        }
        match &self.header {
            None => {
                self.header = Some(text.split(',').map(|h| h.trim().to_owned()).collect());
                Progress::default()
            }
            Some(h) => self.parser.parse(&Parser::csv_row(h, text)),
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
            for line in text.lines() {
                let p = parse_line(line);
                got.extend(p.accuracy);
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
