//! Training log lines and metrics files (`--metric`, `--metrics-file` JSON lines or CSV): any
//! bytes give progress or nothing, never a panic, and what is reported is in range.
#![no_main]

use carbontop::sample::Progress;
use carbontop::source::progress::{MetricsLines, Parser};
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

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // The built-in formats and a user pattern of the README's kind (compiled once).
    static PARSER: std::sync::OnceLock<Parser> = std::sync::OnceLock::new();
    let parser = PARSER
        .get_or_init(|| Parser::new(&["f1=f1[=:] *([0-9.eE+-]+%?)".to_owned()]).unwrap_or_default())
        .clone();
    match pick % 3 {
        0 => {
            for line in String::from_utf8_lossy(rest).lines() {
                check(&parser.parse(line));
            }
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
