//! Training log lines and metrics files (`--metric`, `--metrics-file` JSON lines or CSV), and a
//! command's output as a terminal shows it (progress bars, escapes, chunks cut anywhere): any
//! bytes give progress or nothing, never a panic, and what is reported is in range; the rows
//! kept stay within their caps.
#![no_main]

use carbontop::sample::Progress;
use carbontop::source::progress::{LogReader, MetricsLines, Parser};
use carbontop::source::term::{Changes, REACH, ROW_CAP, SHOWN_MAX, Term};
use libfuzzer_sys::fuzz_target;

fn check(p: &Progress) {
    if let Some(a) = p.accuracy {
        assert!((0.0..=100.0).contains(&a), "accuracy {a}");
    }
    for v in [p.loss, p.epoch].into_iter().flatten() {
        assert!(v.is_finite());
    }
    if let Some(e) = p.epoch {
        assert!(e >= 0.0);
    }
    for (_, v) in &p.metrics {
        assert!(v.is_finite());
    }
}

fn check_changes(ch: &Changes, reader: &LogReader) {
    for s in &ch.segments {
        assert!(s.chars().count() <= ROW_CAP);
        check(&reader.line(s));
    }
    let live = ch.shown.live.iter().flatten();
    for l in ch.shown.done.iter().chain(live) {
        assert!(l.text.chars().count() <= SHOWN_MAX + 1);
        assert!(l.pens.windows(2).all(|w| w[0].0 < w[1].0));
        // Every run is a slice of the text on character boundaries.
        assert_eq!(l.runs().map(|(t, _)| t.len()).sum::<usize>(), l.text.len());
    }
    if let Some(live) = &ch.shown.live {
        assert!(live.len() <= 2 * REACH + 1);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // The built-in formats and a user pattern of the README's kind (compiled once).
    static PARSER: std::sync::OnceLock<Parser> = std::sync::OnceLock::new();
    let parser = PARSER
        .get_or_init(|| Parser::new(&["f1=f1[=:] *([0-9.eE+-]+%?)".to_owned()]).unwrap_or_default())
        .clone();
    match pick % 4 {
        0 => {
            for line in String::from_utf8_lossy(rest).lines() {
                check(&parser.parse(line));
            }
        }
        // A command's output, read in chunks cut where the input says (its first byte).
        3 => {
            let Some((&cut, rest)) = rest.split_first() else {
                return;
            };
            let reader = LogReader::new(parser);
            let mut term = Term::new(true);
            for (i, chunk) in rest.chunks(usize::from(cut) + 1).enumerate() {
                check_changes(&term.feed(chunk, i % 2 == 0), &reader);
            }
            check_changes(&term.finish(), &reader);
        }
        // A metrics file, line by line, as `--metrics-file` reads it (CSV or JSON lines).
        k => {
            let mut m = MetricsLines::new(parser, k == 1);
            for line in rest.split_inclusive(|&b| b == b'\n') {
                check(&m.line(line));
            }
        }
    }
});
