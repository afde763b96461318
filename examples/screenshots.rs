//! Regenerates `screenshots/*.svg` from the real screen: the 4-GPU fixture replayed through the
//! Ledger, drawn by `ui::render::draw` into ratatui's TestBackend, the buffer turned into SVG.
//!
//!     cargo run --example screenshots
#![allow(clippy::unwrap_used)] // a developer tool: a failure should stop it loudly

use carbontop::app::replay::dashboard_of;
use carbontop::ui::render::draw;
use carbontop::ui::state::UiState;
use carbontop::ui::svg::buffer_to_svg;
use carbontop::ui::theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;

/// (file, theme, width, height, recording time to stop at, keys pressed)
type Shot = (
    &'static str,
    &'static str,
    u16,
    u16,
    Option<f64>,
    &'static [KeyCode],
);

fn main() {
    // Relative paths, so the screen shows what a user typing the command would see.
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let trace = Path::new("fixtures/traces/a40x4-cifar100.csv");
    let out = Path::new("screenshots");
    std::fs::create_dir_all(out).unwrap();
    let (themes, _) = theme::resolve(None, None).unwrap();
    let shots: [Shot; 4] = [
        ("replay-160x48", "default", 160, 48, Some(240.0), &[]),
        ("replay-80x24", "default", 80, 24, Some(240.0), &[]),
        ("replay-light-120x36", "light", 120, 36, None, &[]),
        (
            "replay-colorblind-help-100x30",
            "colorblind",
            100,
            30,
            None,
            &[KeyCode::Char('?')],
        ),
    ];
    for (name, th, w, h, until, keys) in shots {
        let d = dashboard_of(trace, until).unwrap();
        let i = themes.iter().position(|t| t.name == th).unwrap();
        let mut ui = UiState::new(themes.clone(), i, true, false);
        for k in keys {
            ui.handle_key(KeyEvent::new(*k, KeyModifiers::NONE), &d, false);
        }
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, &d, &ui)).unwrap();
        let svg = buffer_to_svg(t.backend().buffer(), ui.theme());
        let path = out.join(format!("{name}.svg"));
        std::fs::write(&path, svg).unwrap();
        println!("wrote {}", path.display());
    }
    // The PNG reports, as `carbontop report --png` draws them: each file read once.
    let light = themes.iter().find(|t| t.name == "light").unwrap();
    let capped = Path::new("fixtures/traces/a40x4-cifar100-cap200.csv");
    let runs = [
        carbontop::report::account::account_file(trace, None, true).unwrap(),
        carbontop::report::account::account_file(capped, None, true).unwrap(),
    ];
    let path = out.join("report-a40x4.png");
    let run = carbontop::report::png::Run {
        meter: &runs[0].meter,
        snap: &runs[0].snapshot,
        cpu_estimate: false,
        cap_note: None,
    };
    carbontop::report::png::write(
        &run,
        light,
        &carbontop::report::summary::run_name(&runs[0].file),
        &path,
        carbontop::report::png::DEFAULT_SIZE,
    )
    .unwrap();
    println!("wrote {}", path.display());
    // Two runs compared, as `carbontop report a.csv b.csv --png` draws it.
    let named: Vec<(&str, &carbontop::engine::Snapshot)> = runs
        .iter()
        .map(|r| (r.file.as_str(), &r.snapshot))
        .collect();
    let path = out.join("report-compare.png");
    let compared: Vec<carbontop::report::png::Compared<'_>> = runs
        .iter()
        .map(|r| carbontop::report::png::Compared {
            name: carbontop::report::summary::run_name(&r.file),
            meter: &r.meter,
            snap: &r.snapshot,
        })
        .collect();
    carbontop::report::png::write_compare(
        &compared,
        &carbontop::report::summary::comparison(&named),
        light,
        &path,
        carbontop::report::png::DEFAULT_SIZE,
    )
    .unwrap();
    println!("wrote {}", path.display());
}
