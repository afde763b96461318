//! The three providers' answer parsers (Electricity Maps, GB Carbon Intensity, WattTime): any
//! body gives points or an error, never a panic, and every point they accept is a real slot
//! with a grid's intensity; and any `--zone` gives a place or a one-line error. The first byte
//! picks the parser.
#![no_main]

use carbontop::source::grid::series::{MAX_G_PER_KWH, Point, Series};
use carbontop::source::grid::{emaps, table, uk, watttime};
use libfuzzer_sys::fuzz_target;

fn check(points: &[Point]) {
    for p in points {
        assert!(p.g_per_kwh.is_finite() && (0.0..=MAX_G_PER_KWH).contains(&p.g_per_kwh));
        assert!(p.from < p.to, "{p:?}");
    }
    // What the poller does with an answer: fold it into the slot cache and look a value up.
    let mut s = Series::default();
    if let Some(first) = points.first() {
        s.merge(points, first.from);
        let _ = s.at(first.from);
        let _ = s.ahead(first.from).count();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let body = String::from_utf8_lossy(rest);
    match pick % 8 {
        0 => {
            if let Ok(Some(p)) = emaps::parse_latest(&body) {
                check(&[p]);
            }
        }
        1 => {
            if let Ok(v) = emaps::parse_history(&body) {
                check(&v);
            }
        }
        2 => {
            if let Ok(v) = emaps::parse_forecast(&body) {
                check(&v);
            }
        }
        3 => {
            if let Ok(v) = uk::parse(&body, "fuzz") {
                check(&v);
            }
        }
        4 => {
            let _ = uk::parse_time(&body);
            let _ = uk::Target::from_zone(&body);
            // Any --zone: a place, a fallback or a one-line error with suggestions.
            match table::resolve(&body) {
                Ok(r) => assert!(r.entry.g_per_kwh.is_finite()),
                Err(e) => assert!(!e.to_string().contains('\n')),
            }
            let _ = table::place(&body, table::Names::WattTime);
            let f = table::fallback_for(Some(&body), table::Names::Table);
            assert!(f.entry.g_per_kwh.is_finite());
            let (iso3, name) = table::country_of(&body);
            assert!(!iso3.is_empty() && !name.is_empty());
        }
        5 => {
            if let Ok(v) = watttime::parse_moer(&body, "fuzz") {
                check(&v);
            }
        }
        _ => {
            if let Ok(Some(i)) = watttime::parse_index(&body) {
                assert!((0.0..=100.0).contains(&i));
            }
        }
    }
});
