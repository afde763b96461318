//! Snapshots of the live screen, rendered from a replayed fixture through ratatui's TestBackend.
//! The dashboard is built from the recording's ticks only (no wall clock), so the frames are
//! exact; run `cargo insta review` (or INSTA_UPDATE=always) after a deliberate change.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use carbontop::app::replay::dashboard_of;
use carbontop::ui::model::Dashboard;
use carbontop::ui::render::draw;
use carbontop::ui::state::UiState;
use carbontop::ui::theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;

const TRACE: &str = "fixtures/traces/a40x4-cifar100.csv";

fn frame(d: &Dashboard, ui: &UiState, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, d, ui)).unwrap();
    t
}

fn ui() -> UiState {
    let (themes, i) = theme::resolve(None, None).unwrap();
    UiState::new(themes, i, true, false)
}

fn key(ui: &mut UiState, d: &Dashboard, c: KeyCode) {
    ui.handle_key(KeyEvent::new(c, KeyModifiers::NONE), d, false);
}

fn text(t: &Terminal<TestBackend>) -> String {
    let b = t.backend().buffer();
    (0..b.area.height)
        .map(|y| {
            (0..b.area.width)
                .map(|x| b[(x, y)].symbol().to_owned())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn replay_mid_run_80x24() {
    let d = dashboard_of(Path::new(TRACE), Some(200.0)).unwrap();
    insta::assert_snapshot!(frame(&d, &ui(), 80, 24).backend());
}

#[test]
fn replay_mid_run_160x48() {
    let d = dashboard_of(Path::new(TRACE), Some(200.0)).unwrap();
    insta::assert_snapshot!(frame(&d, &ui(), 160, 48).backend());
}

#[test]
fn replay_end_with_help_80x24() {
    let d = dashboard_of(Path::new(TRACE), None).unwrap();
    let mut u = ui();
    key(&mut u, &d, KeyCode::Char('?'));
    insta::assert_snapshot!(frame(&d, &u, 80, 24).backend());
}

#[test]
fn zoomed_progress_panel_120x30() {
    let d = dashboard_of(Path::new(TRACE), None).unwrap();
    let mut u = ui();
    for _ in 0..3 {
        key(&mut u, &d, KeyCode::Tab);
    }
    key(&mut u, &d, KeyCode::Enter);
    insta::assert_snapshot!(frame(&d, &u, 120, 30).backend());
}

/// The screen's figures are the Ledger's: the same numbers `report` prints for the file.
#[test]
fn screen_numbers_match_the_report() {
    let d = dashboard_of(Path::new(TRACE), None).unwrap();
    let acc = carbontop::report::account::account_file(Path::new(TRACE), None, false)
        .unwrap()
        .snapshot;
    // The same Snapshot, whether the file was replayed for the screen or read for a report.
    assert_eq!(d.meter.snapshot(), acc);
    let s = text(&frame(&d, &ui(), 160, 48));
    use carbontop::report::summary::{fmt_co2e_g, fmt_energy_kwh};
    assert!(s.contains(&fmt_energy_kwh(acc.energy_kwh)), "{s}");
    assert!(
        s.contains(&format!("{} CO2e", fmt_co2e_g(acc.co2e_g))),
        "{s}"
    );
    assert!(s.contains("PUE 1.20"), "{s}");
    assert!(s.contains("acc 55.00%"), "{s}");
}

/// Every panel survives tiny and odd sizes without panicking.
#[test]
fn any_size_renders() {
    let d = dashboard_of(Path::new(TRACE), Some(30.0)).unwrap();
    let mut u = ui();
    for (w, h) in [
        (1, 1),
        (10, 3),
        (40, 10),
        (80, 24),
        (81, 25),
        (200, 50),
        (300, 90),
    ] {
        frame(&d, &u, w, h);
        key(&mut u, &d, KeyCode::Char('o'));
        frame(&d, &u, w, h);
        key(&mut u, &d, KeyCode::Char('?'));
        frame(&d, &u, w, h);
        key(&mut u, &d, KeyCode::Esc);
    }
    let empty = Dashboard::new(
        d.info.clone(),
        carbontop::engine::Meter::new(d.meter.basis.clone(), true),
    );
    frame(&empty, &u, 80, 24);
}

#[test]
fn live_grid_forecast_and_greener_window_160x48() {
    use carbontop::engine::forecast::Slot;
    use carbontop::ui::model::GridInfo;
    use chrono::TimeDelta;
    let mut d = dashboard_of(Path::new(TRACE), Some(200.0)).unwrap();
    let now = d.last().unwrap().timestamp;
    // Half-hour slots from now: 300, 280, then a cleaner stretch at 120 g/kWh.
    let slots: Vec<Slot> = [300.0, 280.0, 120.0, 120.0, 250.0]
        .iter()
        .enumerate()
        .map(|(i, &g)| Slot {
            from: now + TimeDelta::minutes(30 * i as i64),
            to: now + TimeDelta::minutes(30 * (i as i64 + 1)),
            g_per_kwh: g,
        })
        .collect();
    d.meter.grid = Some(GridInfo::new(
        "uk".into(),
        None,
        None,
        slots,
        now,
        TimeDelta::hours(1),
    ));
    let t = frame(&d, &ui(), 160, 48);
    let s = text(&t);
    assert!(s.contains("greener"), "{s}");
    // 1 h at the present facility power over 300 then 280 g/kWh.
    let snap = d.meter.snapshot();
    let w = snap.now.facility_w.unwrap().0;
    let want = w / 1000.0 * (0.5 * 300.0 + 0.5 * 280.0);
    let fc = snap.forecast.unwrap();
    let (g, covered) = (fc.co2e_g.0, fc.covered);
    assert!((g - want).abs() < 1e-9 && covered == 1.0, "{g} vs {want}");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn a_mig_share_and_a_counter_power_divergence_are_on_the_screen() {
    let mut d = dashboard_of(Path::new(TRACE), Some(200.0)).unwrap();
    let mut t = d.last().unwrap().clone();
    t.elapsed_s += 1.0;
    t.gpus[0].mig = Some(carbontop::sample::MigShare {
        slices: 3,
        of: 7,
        profiles: vec!["3g.40gb".into()],
        card_limit_w: Some(700.0),
    });
    t.gpus[1].power_vs_counter = Some(-0.072);
    let totals = d.meter.totals;
    d.meter.push(&t, totals);
    let s = text(&frame(&d, &ui(), 160, 48));
    assert!(s.contains("MIG 3g.40gb · 3/7 slices, est."), "{s}");
    assert!(s.contains("GPU 1: counter vs power readings"), "{s}");
    assert!(s.contains("differ 7.2% (last min); counter used"), "{s}");
}
