//! A rendered frame (ratatui `Buffer`) as an SVG picture: how `screenshots/` are made, from the
//! real render path through `TestBackend`, never by hand.

use crate::ui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use std::fmt::Write as _;

/// Cell size in SVG user units (a monospace cell is about 0.6 em wide).
const CELL_W: f64 = 8.4;
const CELL_H: f64 = 17.0;
const FONT_PX: f64 = 14.0;

/// The 16 ANSI colours as xterm draws them.
fn ansi(c: Color) -> Option<&'static str> {
    Some(match c {
        Color::Black => "#000000",
        Color::Red => "#cd0000",
        Color::Green => "#00cd00",
        Color::Yellow => "#cdcd00",
        Color::Blue => "#0000ee",
        Color::Magenta => "#cd00cd",
        Color::Cyan => "#00cdcd",
        Color::Gray => "#e5e5e5",
        Color::DarkGray => "#7f7f7f",
        Color::LightRed => "#ff0000",
        Color::LightGreen => "#00ff00",
        Color::LightYellow => "#ffff00",
        Color::LightBlue => "#5c5cff",
        Color::LightMagenta => "#ff00ff",
        Color::LightCyan => "#00ffff",
        Color::White => "#ffffff",
        _ => return None,
    })
}

/// xterm's 256-colour palette entry.
fn indexed(i: u8) -> String {
    const BASE: [&str; 16] = [
        "#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
        "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff",
    ];
    match i {
        0..=15 => BASE[i as usize].to_owned(),
        16..=231 => {
            let n = i - 16;
            let lvl = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            format!(
                "#{:02x}{:02x}{:02x}",
                lvl(n / 36),
                lvl((n / 6) % 6),
                lvl(n % 6)
            )
        }
        _ => {
            let g = 8 + 10 * (i - 232);
            format!("#{g:02x}{g:02x}{g:02x}")
        }
    }
}

pub fn hex(c: Color, default: &str) -> String {
    match c {
        Color::Reset => default.to_owned(),
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        Color::Indexed(i) => indexed(i),
        c => ansi(c).unwrap_or(default).to_owned(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The default foreground and background a terminal would give `Reset` under this theme.
fn defaults(th: &Theme) -> (&'static str, &'static str) {
    match th.background {
        Color::Rgb(r, g, b) if u32::from(r) + u32::from(g) + u32::from(b) > 384 => {
            ("#1c1c1c", "#fafafa")
        }
        _ => ("#d0d0d0", "#1c1f24"),
    }
}

/// Renders the buffer as SVG: one background rectangle per run of same-coloured cells and one
/// text element per run of same-styled characters.
pub fn buffer_to_svg(buf: &Buffer, th: &Theme) -> String {
    let (dfg, dbg) = defaults(th);
    let area = buf.area;
    let (w, h) = (
        f64::from(area.width) * CELL_W,
        f64::from(area.height) * CELL_H,
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{FONT_PX}">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="{dbg}"/>"#);
    for y in 0..area.height {
        // Backgrounds.
        let mut x = 0;
        while x < area.width {
            let bg = hex(buf[(area.x + x, area.y + y)].bg, dbg);
            let start = x;
            while x < area.width && hex(buf[(area.x + x, area.y + y)].bg, dbg) == bg {
                x += 1;
            }
            if bg != dbg {
                let _ = writeln!(
                    out,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{CELL_H}" fill="{bg}"/>"#,
                    f64::from(start) * CELL_W,
                    f64::from(y) * CELL_H,
                    f64::from(x - start) * CELL_W
                );
            }
        }
        // Text: runs of ASCII (every monospace font draws those at the cell width) and each
        // other glyph (braille, box drawing, symbols) on its own at its cell, so nothing drifts
        // whatever font the viewer falls back to.
        let mut x = 0;
        while x < area.width {
            let cell = &buf[(area.x + x, area.y + y)];
            let fg = hex(cell.fg, dfg);
            let bold = cell.modifier.contains(Modifier::BOLD);
            let start = x;
            let mut text = String::new();
            while x < area.width {
                let c = &buf[(area.x + x, area.y + y)];
                if hex(c.fg, dfg) != fg || c.modifier.contains(Modifier::BOLD) != bold {
                    break;
                }
                let sym = c.symbol();
                let sym = if sym.is_empty() { " " } else { sym };
                let ascii = sym.is_ascii();
                if !ascii && !text.is_empty() {
                    break;
                }
                text.push_str(sym);
                x += 1;
                if !ascii {
                    break;
                }
            }
            if text.trim().is_empty() || text == "\u{2800}" {
                continue;
            }
            let weight = if bold { r#" font-weight="bold""# } else { "" };
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" fill="{fg}"{weight} xml:space="preserve">{}</text>"#,
                f64::from(start) * CELL_W,
                f64::from(y) * CELL_H + CELL_H * 0.78,
                escape(&text)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    #[test]
    fn cells_become_rects_and_text() {
        let th = crate::ui::theme::builtins().remove(0);
        let mut buf = Buffer::empty(Rect::new(0, 0, 6, 1));
        buf.set_string(
            0,
            0,
            "a<b",
            Style::new().fg(Color::Rgb(255, 0, 0)).bg(Color::Blue),
        );
        let svg = buffer_to_svg(&buf, &th);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains(r##"fill="#0000ee""##), "{svg}");
        assert!(svg.contains(">a&lt;b</text>"), "{svg}");
        assert!(svg.contains(r##"fill="#ff0000""##), "{svg}");
        assert_eq!(indexed(196), "#ff0000");
        assert_eq!(indexed(244), "#808080");
    }
}
