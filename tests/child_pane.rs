//! The screen's output pane fed a framework's real output: a progress bar shown in its latest
//! state (not every redraw stacked), in the colours it asked for, no escape shown as text.
#![allow(clippy::unwrap_used)]

mod common;

use carbontop::app::replay::dashboard_of;
use carbontop::source::term::{Stream, Term};
use carbontop::ui::model::Dashboard;
use carbontop::ui::render::draw;
use carbontop::ui::state::UiState;
use carbontop::ui::theme;
use common::fixture;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use std::path::Path;

const TRACE: &str = "fixtures/traces/a40x4-cifar100.csv";

fn frame(d: &Dashboard, w: u16, h: u16) -> Terminal<TestBackend> {
    let (themes, i) = theme::resolve(None, None).unwrap();
    let ui = UiState::new(themes, i, false, true);
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, d, &ui)).unwrap();
    t
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

/// The pane's lines, top to bottom (the frame's rows inside the Output panel's border).
fn pane(t: &Terminal<TestBackend>) -> Vec<String> {
    let all = text(t);
    let rows: Vec<&str> = all.lines().collect();
    let top = rows.iter().position(|r| r.starts_with("┌ Output")).unwrap();
    rows[top + 1..]
        .iter()
        .take_while(|r| r.starts_with('│'))
        .map(|r| r.trim_matches('│').trim_end().to_owned())
        .filter(|r| !r.is_empty())
        .collect()
}

#[test]
fn keras_bars_show_in_their_last_state_and_colours() {
    let mut d = dashboard_of(Path::new(TRACE), None).unwrap();
    let keras = std::fs::read(fixture("logs/keras3_bar.log")).unwrap();
    let mut t = Term::new(true);
    // All but the last newline: the last epoch's bar is still the one being drawn.
    d.show_output(Stream::Out, t.feed(&keras[..keras.len() - 1], true).shown);
    let f = frame(&d, 160, 48);
    let lines = pane(&f);
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_eq!(lines[0], "Epoch 1/3");
    assert!(lines[1].starts_with("30/30 ━━━━━━━━━━━━━━━━━━━━ 1s 35ms/step - accuracy: "));
    assert!(lines[1].ends_with("- val_accuracy: 0.9456 - val_loss: 0.0816"));
    assert!(lines[5].ends_with("- val_accuracy: 0.9688 - val_loss: 0.0468"));
    assert!(!text(&f).contains("[1m") && !text(&f).contains('\u{1b}'));
    // The bar's done part is green and its count bold, as Keras asked.
    let b = f.backend().buffer();
    let y = text(&f)
        .lines()
        .position(|r| r.contains("30/30 ━"))
        .unwrap() as u16;
    let cells: Vec<_> = (0..b.area.width).map(|x| &b[(x, y)]).collect();
    assert!(
        cells
            .iter()
            .any(|c| c.symbol() == "━" && c.fg == Color::Green)
    );
    let three = cells.iter().position(|c| c.symbol() == "3").unwrap();
    assert!(
        cells[three]
            .modifier
            .contains(ratatui::style::Modifier::BOLD)
    );
}

#[test]
fn lightnings_stacked_bars_leave_one_row_per_bar() {
    // The train bar is redrawn in place across epochs, the validation bar below it is
    // cleared on close (leave=False): as on a terminal, one bar row and no validation rows.
    let mut d = dashboard_of(Path::new(TRACE), None).unwrap();
    let log = std::fs::read(fixture("logs/lightning2.log")).unwrap();
    let mut t = Term::new(true);
    d.show_output(Stream::Out, t.feed(&log, true).shown);
    d.show_output(Stream::Out, t.finish().shown);
    let lines = pane(&frame(&d, 160, 60));
    let bars: Vec<_> = lines.iter().filter(|l| l.starts_with("Epoch ")).collect();
    assert_eq!(bars.len(), 1, "{lines:#?}");
    assert!(bars[0].starts_with("Epoch 2: 100%|██████████| 24/24"));
    assert!(bars[0].ends_with("val_acc=0.879]"));
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("Validation") && !l.contains("[A"))
    );
    assert_eq!(
        lines.last().unwrap(),
        "`Trainer.fit` stopped: `max_epochs=3` reached."
    );
}
