//! The command's output as a terminal shows it: bytes in, rows of text out.
//!
//! Training runs draw progress bars: tqdm writes `\r` and the bar again, Keras backspaces over
//! its bar and writes `\r`, tqdm's second bar steps down a line and back up (`ESC[A`), and both
//! colour their text with ANSI escapes. A [`Term`] keeps the few rows a command can still
//! reach with its cursor and applies these as a terminal does: `\r` goes back to the start of
//! the row and what follows overwrites it, `\b` steps back, `\t` moves to the next tab stop,
//! `ESC[K` erases, `ESC[A`/`ESC[B` move between rows, SGR escapes set the colours; other
//! escapes (OSC titles and links, private modes) are dropped, never shown.
//!
//! What comes out of a chunk of bytes ([`Changes`]): the text of each row as the cursor left it
//! or went back to its start (each redraw of a bar: the progress parser reads these), the rows
//! that went out of reach (final lines for the screen's pane) and the rows still in reach (the
//! bar being redrawn, shown in its latest state).
//!
//! Memory is bounded whatever the command writes: a row longer than [`ROW_CAP`] characters is
//! cut there (its text handed on as a line of its own), the pane's copy of a row keeps
//! [`SHOWN_MAX`] characters, and at most [`REACH`] rows above the cursor are kept.

use std::collections::VecDeque;

/// Longest row kept, in characters; a longer one is cut there and goes on as a row of its own
/// (a command writing gigabytes without a newline must not grow memory).
pub const ROW_CAP: usize = 64 * 1024;
/// Characters of a row the screen's pane keeps (and colours); a longer row ends in `…`.
pub const SHOWN_MAX: usize = 1000;
/// Rows above the cursor a command may still go back to (stacked progress bars); a row that
/// was never redrawn is final as soon as the cursor leaves it.
pub const REACH: usize = 4;
/// Longest row handed on when the command pauses in the middle of it (a progress bar).
const PAUSED_ROW_MAX: usize = 4096;
/// Parameters of one escape sequence kept (the rest are ignored).
const MAX_PARAMS: usize = 32;

/// Which of the command's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    pub fn index(self) -> usize {
        match self {
            Stream::Out => 0,
            Stream::Err => 1,
        }
    }
}

/// A colour as an SGR escape names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// The 256-colour palette (0–7 the basic colours, 8–15 their bright forms).
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// How text is drawn: what SGR escapes set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pen {
    pub fg: Option<Colour>,
    pub bg: Option<Colour>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub reverse: bool,
}

/// A row of text and its colours: each pen applies from its byte offset in `text` to the next
/// one's (before the first, the default pen).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StyledLine {
    pub text: String,
    pub pens: Vec<(usize, Pen)>,
}

impl StyledLine {
    /// Text as a terminal would show it, without colours (control characters applied).
    pub fn plain(text: &str) -> Self {
        let mut t = Term::new(false);
        let mut ch = t.feed(text.as_bytes(), false);
        let end = t.finish();
        ch.segments.extend(end.segments);
        let mut text = ch.segments.pop().unwrap_or_default();
        if text.chars().count() > SHOWN_MAX {
            text = text.chars().take(SHOWN_MAX).chain(['…']).collect();
        }
        Self {
            text,
            pens: Vec::new(),
        }
    }

    /// The text in runs of one pen each.
    pub fn runs(&self) -> impl Iterator<Item = (&str, Pen)> {
        let first = self.pens.first().map_or(self.text.len(), |p| p.0);
        let head = (first > 0).then(|| (&self.text[..first], Pen::default()));
        let tail = self.pens.iter().enumerate().map(|(i, (at, pen))| {
            let end = self.pens.get(i + 1).map_or(self.text.len(), |p| p.0);
            (&self.text[*at..end], *pen)
        });
        head.into_iter().chain(tail).filter(|(s, _)| !s.is_empty())
    }
}

/// What the screen's pane should show after a chunk of output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shown {
    /// Rows out of the command's reach, in order: final.
    pub done: Vec<StyledLine>,
    /// The rows still in reach, top first (a progress bar in its latest state); None when they
    /// did not change.
    pub live: Option<Vec<StyledLine>>,
}

/// What a chunk of output did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    /// The text of each row as the cursor left it or went back to its start (trailing spaces
    /// trimmed): one line, or one redraw of a progress bar, for the progress parser.
    pub segments: Vec<String>,
    /// For the pane (empty when the Term keeps no colours: headless).
    pub shown: Shown,
    /// A row reached [`ROW_CAP`] and was cut.
    pub cut: bool,
}

#[derive(Debug, Clone, Default)]
struct Row {
    chars: Vec<char>,
    /// The pen of each of the first SHOWN_MAX characters (styled Terms only).
    pens: Vec<Pen>,
    /// Written since its text was last handed on as a segment.
    dirty: bool,
    /// Went back to its start or was moved back into: a bar, which may be redrawn again.
    redrawn: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Seq {
    /// Text and control characters.
    Text,
    /// After ESC.
    Escape,
    /// ESC and intermediate bytes (`ESC ( B`), until the final byte.
    Intermediate,
    /// Control sequence: parameters until a final byte.
    Csi,
    /// Operating system command (a title, a link): until BEL or ST.
    Osc,
    /// A device control or other string: until ST.
    Str,
    /// ESC inside an OSC or string: `ESC \` ends it.
    StrEscape,
}

/// One stream's terminal: the rows in reach, the cursor and the pen.
#[derive(Debug, Clone)]
pub struct Term {
    styled: bool,
    rows: VecDeque<Row>,
    y: usize,
    x: usize,
    pen: Pen,
    seq: Seq,
    params: Vec<u16>,
    /// The CSI has a private marker (`?`) or intermediates: nothing of it is applied.
    odd: bool,
    /// An incomplete UTF-8 character at the end of the last chunk.
    carry: Vec<u8>,
    out: Changes,
    live_changed: bool,
}

impl Term {
    /// `styled`: keep colours and build what the pane shows (the screen); without, only the
    /// segments are made (headless).
    pub fn new(styled: bool) -> Self {
        Self {
            styled,
            rows: VecDeque::from([Row::default()]),
            y: 0,
            x: 0,
            pen: Pen::default(),
            seq: Seq::Text,
            params: Vec::new(),
            odd: false,
            carry: Vec::new(),
            out: Changes::default(),
            live_changed: false,
        }
    }

    /// Applies a chunk of output. `paused`: the command has written nothing more for now (the
    /// read did not fill its buffer), so the row being drawn is handed on too: a bar is read
    /// as it is drawn, not only at its next redraw.
    pub fn feed(&mut self, bytes: &[u8], paused: bool) -> Changes {
        if self.carry.is_empty() {
            self.decode(bytes);
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(bytes);
            self.decode(&joined);
        }
        // A bar is short; a long row without end (a data dump) is read when it ends or is cut,
        // not again at each pause.
        if paused && self.rows[self.y].chars.len() <= PAUSED_ROW_MAX {
            self.segment();
        }
        self.take()
    }

    /// The end of the output: every row is final.
    pub fn finish(&mut self) -> Changes {
        if !self.carry.is_empty() {
            self.carry.clear();
            self.put('\u{FFFD}');
        }
        self.segment();
        // A last newline, or a bar cleared on close, leaves empty rows: no lines of their own.
        while self.rows.len() > 1
            && self
                .rows
                .back()
                .is_some_and(|r| r.chars.iter().all(|c| *c == ' '))
        {
            self.rows.pop_back();
        }
        let last_blank = self.rows.len() == 1 && self.rows[0].chars.iter().all(|c| *c == ' ');
        if !last_blank {
            let n = self.rows.len();
            self.commit(n);
        }
        self.rows = VecDeque::from([Row::default()]);
        (self.y, self.x) = (0, 0);
        self.live_changed = true;
        self.take()
    }

    fn take(&mut self) -> Changes {
        if self.styled && (self.live_changed || !self.out.shown.done.is_empty()) {
            let mut live: Vec<StyledLine> = self.rows.iter().map(|r| self.show(r)).collect();
            while live.last().is_some_and(|l| l.text.is_empty()) {
                live.pop();
            }
            self.out.shown.live = Some(live);
        }
        self.live_changed = false;
        std::mem::take(&mut self.out)
    }

    fn decode(&mut self, mut s: &[u8]) {
        loop {
            match std::str::from_utf8(s) {
                Ok(t) => return self.text(t),
                Err(e) => {
                    let (good, bad) = s.split_at(e.valid_up_to());
                    if let Ok(t) = std::str::from_utf8(good) {
                        self.text(t);
                    }
                    match e.error_len() {
                        Some(n) => {
                            self.put('\u{FFFD}');
                            s = &bad[n..];
                        }
                        None => {
                            self.carry = bad.to_vec();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Decoded output: runs of printable ASCII written at once (most of any output), the rest
    /// a character at a time.
    fn text(&mut self, mut t: &str) {
        while !t.is_empty() {
            if self.seq == Seq::Text {
                let n = t
                    .bytes()
                    .position(|b| !(0x20..0x7f).contains(&b))
                    .unwrap_or(t.len());
                if n > 0 {
                    self.write_ascii(&t[..n]);
                    t = &t[n..];
                    continue;
                }
            }
            let mut rest = t.chars();
            if let Some(c) = rest.next() {
                self.put(c);
            }
            t = rest.as_str();
        }
    }

    /// One character of output.
    fn put(&mut self, c: char) {
        match self.seq {
            Seq::Text => self.plain(c),
            Seq::Escape => self.after_esc(c),
            Seq::Intermediate => {
                if !('\u{20}'..='\u{2f}').contains(&c) {
                    self.seq = Seq::Text;
                }
            }
            Seq::Csi => self.csi(c),
            Seq::Osc | Seq::Str => match c {
                '\u{7}' if self.seq == Seq::Osc => self.seq = Seq::Text,
                '\u{1b}' => self.seq = Seq::StrEscape,
                '\u{9c}' => self.seq = Seq::Text,
                _ => {}
            },
            Seq::StrEscape => {
                // ESC \ ends the string; another ESC starts a sequence as it would anyway.
                self.seq = Seq::Text;
                if c != '\\' {
                    self.put('\u{1b}');
                    self.put(c);
                }
            }
        }
    }

    fn plain(&mut self, c: char) {
        match c {
            '\r' => {
                self.segment();
                self.x = 0;
                self.rows[self.y].redrawn = true;
            }
            '\n' | '\u{b}' | '\u{c}' => self.down(1, true),
            '\u{8}' => self.x = self.x.saturating_sub(1),
            '\t' => self.x = ((self.x / 8 + 1) * 8).min(ROW_CAP - 1),
            '\u{1b}' => self.seq = Seq::Escape,
            '\u{9b}' => self.start_csi(),
            '\u{9d}' => self.seq = Seq::Osc,
            c if c.is_control() => {}
            c => self.write(c),
        }
    }

    fn after_esc(&mut self, c: char) {
        self.seq = Seq::Text;
        match c {
            '[' => self.start_csi(),
            ']' => self.seq = Seq::Osc,
            'P' | 'X' | '^' | '_' => self.seq = Seq::Str,
            '\u{20}'..='\u{2f}' => self.seq = Seq::Intermediate,
            'M' => self.up(1),
            'E' => self.down(1, true),
            'D' => self.down(1, false),
            '\u{1b}' => self.seq = Seq::Escape,
            _ => {}
        }
    }

    fn start_csi(&mut self) {
        self.seq = Seq::Csi;
        self.params.clear();
        self.params.push(0);
        self.odd = false;
    }

    fn csi(&mut self, c: char) {
        match c {
            '0'..='9' => {
                if let Some(p) = self.params.last_mut() {
                    let d = c as u16 - '0' as u16;
                    *p = p.saturating_mul(10).saturating_add(d);
                }
            }
            ';' | ':' => {
                if self.params.len() < MAX_PARAMS {
                    self.params.push(0);
                }
            }
            '<' | '=' | '>' | '?' | '\u{20}'..='\u{2f}' => self.odd = true,
            '\u{40}'..='\u{7e}' => {
                self.seq = Seq::Text;
                if !self.odd {
                    self.control(c);
                }
            }
            // A control character inside a sequence acts as it would outside it.
            c if c.is_control() => {
                self.seq = Seq::Text;
                self.plain(c);
            }
            _ => self.seq = Seq::Text,
        }
    }

    /// The first parameter, with 0 (or none) read as 1: a count of rows or columns.
    fn count(&self) -> usize {
        usize::from(self.params.first().copied().unwrap_or(0).max(1))
    }

    fn control(&mut self, c: char) {
        match c {
            'm' => self.sgr(),
            'K' => self.erase(self.params.first().copied().unwrap_or(0)),
            'G' | '`' => self.x = (self.count() - 1).min(ROW_CAP - 1),
            'C' | 'a' => self.x = (self.x + self.count()).min(ROW_CAP - 1),
            'D' => self.x = self.x.saturating_sub(self.count()),
            'A' => self.up(self.count()),
            'B' | 'e' => self.down(self.count(), false),
            'E' => self.down(self.count(), true),
            'F' => {
                self.up(self.count());
                self.x = 0;
            }
            _ => {}
        }
    }

    fn erase(&mut self, mode: u16) {
        let x = self.x;
        let row = &mut self.rows[self.y];
        match mode {
            0 => {
                row.chars.truncate(x);
                row.pens.truncate(x);
            }
            1 => {
                let end = (x + 1).min(row.chars.len());
                row.chars[..end].fill(' ');
                let end = end.min(row.pens.len());
                row.pens[..end].fill(Pen::default());
            }
            2 => {
                row.chars.clear();
                row.pens.clear();
            }
            _ => return,
        }
        row.dirty = true;
        self.live_changed = true;
    }

    fn sgr(&mut self) {
        let p = std::mem::take(&mut self.params);
        let mut i = 0;
        while i < p.len() {
            let pen = &mut self.pen;
            match p[i] {
                0 => *pen = Pen::default(),
                1 => pen.bold = true,
                2 => pen.dim = true,
                3 => pen.italic = true,
                4 => pen.underline = true,
                7 => pen.reverse = true,
                22 => (pen.bold, pen.dim) = (false, false),
                23 => pen.italic = false,
                24 => pen.underline = false,
                27 => pen.reverse = false,
                n @ 30..=37 => pen.fg = Some(Colour::Indexed((n - 30) as u8)),
                n @ 90..=97 => pen.fg = Some(Colour::Indexed((n - 90 + 8) as u8)),
                39 => pen.fg = None,
                n @ 40..=47 => pen.bg = Some(Colour::Indexed((n - 40) as u8)),
                n @ 100..=107 => pen.bg = Some(Colour::Indexed((n - 100 + 8) as u8)),
                49 => pen.bg = None,
                n @ (38 | 48) => {
                    let (colour, used) = extended(&p[i + 1..]);
                    if n == 38 {
                        pen.fg = colour.or(pen.fg);
                    } else {
                        pen.bg = colour.or(pen.bg);
                    }
                    i += used;
                }
                _ => {}
            }
            i += 1;
        }
        self.params = p;
    }

    fn write(&mut self, c: char) {
        if self.x >= ROW_CAP {
            self.cut();
        }
        let (x, styled, pen) = (self.x, self.styled, self.pen);
        let row = &mut self.rows[self.y];
        if x < row.chars.len() {
            row.chars[x] = c;
        } else {
            row.chars.resize(x, ' ');
            row.chars.push(c);
        }
        if styled && x < SHOWN_MAX {
            if row.pens.len() <= x {
                row.pens.resize(x + 1, Pen::default());
            }
            row.pens[x] = pen;
        }
        row.dirty = true;
        self.x += 1;
        self.live_changed = true;
    }

    /// Printable ASCII at the cursor: what `write` does for each character, at once.
    fn write_ascii(&mut self, mut s: &str) {
        while !s.is_empty() {
            if self.x >= ROW_CAP {
                self.cut();
            }
            let k = (ROW_CAP - self.x).min(s.len());
            let (now, rest) = s.split_at(k);
            let (x, styled, pen) = (self.x, self.styled, self.pen);
            let row = &mut self.rows[self.y];
            if row.chars.len() < x {
                row.chars.resize(x, ' ');
            }
            let over = (row.chars.len() - x).min(k);
            for (slot, b) in row.chars[x..x + over].iter_mut().zip(now.bytes()) {
                *slot = char::from(b);
            }
            row.chars
                .extend(now.as_bytes()[over..].iter().map(|&b| char::from(b)));
            if styled && x < SHOWN_MAX {
                let end = (x + k).min(SHOWN_MAX);
                if row.pens.len() < end {
                    row.pens.resize(end, Pen::default());
                }
                row.pens[x..end].fill(pen);
            }
            row.dirty = true;
            self.x += k;
            self.live_changed = true;
            s = rest;
        }
    }

    /// Hands on the cursor row's text if it changed since it was last handed on.
    fn segment(&mut self) {
        let row = &mut self.rows[self.y];
        if !row.dirty {
            return;
        }
        row.dirty = false;
        let text: String = row.chars.iter().collect();
        let text = text.trim_end();
        if !text.is_empty() {
            self.out.segments.push(text.to_owned());
        }
    }

    /// `n` rows down (a newline goes to the row's start too, and past the last row adds one);
    /// rows that went out of reach are final.
    fn down(&mut self, n: usize, newline: bool) {
        self.segment();
        for _ in 0..n {
            if self.y + 1 < self.rows.len() {
                self.y += 1;
            } else if newline {
                self.rows.push_back(Row::default());
                self.y += 1;
            }
        }
        if newline {
            self.x = 0;
        }
        // Rows above the cursor go out of reach, first to last: one never redrawn at once, a
        // bar once it is more than REACH rows up. A bar in reach holds the rows after it back.
        let mut k = 0;
        while k < self.y && (!self.rows[k].redrawn || self.y - k > REACH) {
            k += 1;
        }
        self.commit(k);
        self.live_changed = true;
    }

    fn up(&mut self, n: usize) {
        self.segment();
        self.y = self.y.saturating_sub(n);
        self.rows[self.y].redrawn = true;
        self.live_changed = true;
    }

    /// The first `k` rows are final: out to the pane, out of reach.
    fn commit(&mut self, k: usize) {
        for _ in 0..k {
            if let Some(r) = self.rows.pop_front() {
                if self.styled {
                    let shown = self.show(&r);
                    self.out.shown.done.push(shown);
                }
                self.y = self.y.saturating_sub(1);
            }
        }
        if self.rows.is_empty() {
            self.rows.push_back(Row::default());
        }
    }

    /// The cursor row reached ROW_CAP: it and the rows before it are final, and the text goes
    /// on in a fresh row.
    fn cut(&mut self) {
        self.segment();
        self.out.cut = true;
        let k = self.y + 1;
        let below: Vec<Row> = self.rows.drain(k..).collect();
        self.commit(k);
        self.rows = VecDeque::from([Row::default()]);
        self.rows.extend(below);
        (self.y, self.x) = (0, 0);
        self.live_changed = true;
    }

    /// A row as the pane shows it: at most SHOWN_MAX characters, trailing spaces trimmed.
    fn show(&self, r: &Row) -> StyledLine {
        let n = r.chars.len().min(SHOWN_MAX);
        let mut end = n;
        while end > 0 && r.chars[end - 1] == ' ' {
            end -= 1;
        }
        let mut line = StyledLine::default();
        let mut pen = Pen::default();
        for (i, c) in r.chars[..end].iter().enumerate() {
            let p = r.pens.get(i).copied().unwrap_or_default();
            if p != pen {
                line.pens.push((line.text.len(), p));
                pen = p;
            }
            line.text.push(*c);
        }
        if r.chars.len() > SHOWN_MAX {
            if pen != Pen::default() {
                line.pens.push((line.text.len(), Pen::default()));
            }
            line.text.push('…');
        }
        line
    }
}

/// `5;n` or `2;r;g;b` after a 38 or 48: the colour and the parameters it used.
fn extended(p: &[u16]) -> (Option<Colour>, usize) {
    let byte = |i: usize| p.get(i).map(|v| (*v).min(255) as u8);
    match p.first() {
        Some(5) => (byte(1).map(Colour::Indexed), 2),
        Some(2) => match (byte(1), byte(2), byte(3)) {
            (Some(r), Some(g), Some(b)) => (Some(Colour::Rgb(r, g, b)), 4),
            _ => (None, p.len()),
        },
        _ => (None, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte of `input` in one chunk, then the end: (segments, final rows' text).
    fn run(input: &[u8]) -> (Vec<String>, Vec<String>) {
        let mut t = Term::new(true);
        let mut a = t.feed(input, false);
        let b = t.finish();
        a.segments.extend(b.segments);
        a.shown.done.extend(b.shown.done);
        let done = a.shown.done.into_iter().map(|l| l.text).collect();
        (a.segments, done)
    }

    #[test]
    fn newlines_and_carriage_returns() {
        let (seg, done) = run(b"a\nb\r\nc");
        assert_eq!(seg, ["a", "b", "c"]);
        assert_eq!(done, ["a", "b", "c"]);
        // Each redraw is a segment; the row shows the last.
        let (seg, done) = run(b"10%|#  \r50%|### \r100%|#####|\n");
        assert_eq!(seg, ["10%|#", "50%|###", "100%|#####|"]);
        assert_eq!(done, ["100%|#####|"]);
        // Overwriting a longer row leaves its end, as a terminal does.
        let (seg, done) = run(b"abcdef\rXY\n");
        assert_eq!(seg, ["abcdef", "XYcdef"]);
        assert_eq!(done, ["XYcdef"]);
        assert_eq!(run(b"").1, Vec::<String>::new());
        assert_eq!(run(b"\n\n").1, ["", ""]);
    }

    #[test]
    fn backspaces_tabs_and_escapes() {
        // Keras: backspaces over the bar, then \r and the new bar.
        let (seg, done) =
            run(b"\x1b[1m1/3\x1b[0m bar\x08\x08\x08\x08\x08\x08\x08\r\x1b[1m3/3\x1b[0m done\n");
        assert_eq!(seg, ["1/3 bar", "3/3 done"]);
        assert_eq!(done, ["3/3 done"]);
        assert_eq!(run(b"a\tb\n").1, ["a       b"]);
        // An OSC title and link, a private mode, charset selection: nothing shown.
        let (_, done) =
            run(b"\x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1b[?25l\x1b(Bok\n");
        assert_eq!(done, ["linkok"]);
        // Erase to the end of the row, and the whole row.
        assert_eq!(run(b"abcdef\r\x1b[Kxy\n").1, ["xy"]);
        assert_eq!(run(b"abcdef\x1b[2K\rxy\n").1, ["xy"]);
        assert_eq!(run(b"abc\x1b[1G\x1b[2CZ\n").1, ["abZ"]);
    }

    #[test]
    fn stacked_bars_move_between_rows() {
        // tqdm: the second bar one row down and back up (ESC[A), cleared on close.
        let mut s = Vec::new();
        s.extend_from_slice(b"\rtrain 1\rtrain 2");
        s.extend_from_slice(b"\n\rval 1\x1b[A\rtrain 3");
        s.extend_from_slice(b"\n\rval 2\x1b[A");
        s.extend_from_slice(b"\n\r     \x1b[A\rtrain 4\n");
        let mut t = Term::new(true);
        let ch = t.feed(&s, false);
        assert_eq!(
            ch.segments,
            ["train 1", "train 2", "val 1", "train 3", "val 2", "train 4"]
        );
        // Both rows still in reach: nothing final yet; the bar shows its last state.
        assert!(ch.shown.done.is_empty());
        let live: Vec<_> = ch.shown.live.unwrap().into_iter().map(|l| l.text).collect();
        assert_eq!(live, ["train 4"]);
        let end = t.finish();
        let done: Vec<_> = end.shown.done.into_iter().map(|l| l.text).collect();
        assert_eq!(done, ["train 4"]);
        assert_eq!(end.shown.live, Some(vec![]));
    }

    #[test]
    fn plain_lines_are_final_at_once_and_a_bar_holds_only_its_reach() {
        let mut t = Term::new(true);
        let ch = t.feed(b"one\ntwo\n", false);
        let done: Vec<_> = ch.shown.done.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(done, ["one", "two"]);
        assert_eq!(ch.shown.live, Some(vec![]));
        // A bar stays in reach for REACH rows, then goes with the rows after it, in order.
        let ch = t.feed(b"\rbar\rbar done\na\nb\nc\n", false);
        assert!(ch.shown.done.is_empty());
        let ch = t.feed(b"d\n", false);
        let done: Vec<_> = ch.shown.done.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(done, ["bar done", "a", "b", "c", "d"]);
    }

    #[test]
    fn colours_are_kept_for_the_pane() {
        let mut t = Term::new(true);
        let ch = t.feed(
            b"\x1b[1m4/30\x1b[0m \x1b[32m==\x1b[0m\x1b[38;5;208mo\x1b[38;2;1;2;3mk\x1b[m\n",
            false,
        );
        let l = &ch.shown.done[0];
        assert_eq!(l.text, "4/30 ==ok");
        let runs: Vec<_> = l.runs().collect();
        let bold = Pen {
            bold: true,
            ..Pen::default()
        };
        let green = Pen {
            fg: Some(Colour::Indexed(2)),
            ..Pen::default()
        };
        assert_eq!(runs[0], ("4/30", bold));
        assert_eq!(runs[1], (" ", Pen::default()));
        assert_eq!(runs[2], ("==", green));
        assert_eq!(runs[3].1.fg, Some(Colour::Indexed(208)));
        assert_eq!(runs[4].1.fg, Some(Colour::Rgb(1, 2, 3)));
        // Overwriting keeps the pens of what was not overwritten.
        t.feed(b"\x1b[1mabcdef\x1b[0m\r\x1b[31mXY\x1b[0m\n", false);
        let ch = t.finish();
        let runs: Vec<_> = ch.shown.done[0]
            .runs()
            .map(|(s, p)| (s, p.fg, p.bold))
            .collect();
        assert_eq!(
            runs,
            [
                ("XY", Some(Colour::Indexed(1)), false),
                ("cdef", None, true)
            ]
        );
        // Headless keeps no colours and builds nothing for the pane.
        let mut h = Term::new(false);
        let ch = h.feed(b"\x1b[32mx\x1b[0m\n", false);
        assert_eq!(ch.segments, ["x"]);
        assert_eq!(ch.shown, Shown::default());
    }

    #[test]
    fn a_row_is_read_as_drawn_when_the_command_pauses() {
        let mut t = Term::new(false);
        // A read that filled its buffer: more is coming, the row is not read yet.
        assert!(t.feed(b"\rEpoch 1: val_acc=0.8", false).segments.is_empty());
        assert_eq!(t.feed(b"12", true).segments, ["Epoch 1: val_acc=0.812"]);
        // Unchanged since: not read again at the next \r.
        assert!(t.feed(b"\r", true).segments.is_empty());
    }

    #[test]
    fn utf8_split_across_chunks_and_invalid_bytes() {
        let mut t = Term::new(true);
        let bar = "██".as_bytes();
        assert!(t.feed(&bar[..4], false).segments.is_empty());
        let ch = t.feed(&[&bar[4..], b"\xff!\n"].concat(), false);
        assert_eq!(ch.segments, ["██\u{FFFD}!"]);
        let ch = t.feed(b"\xe2\x96", false);
        assert!(ch.segments.is_empty());
        assert_eq!(t.finish().segments, ["\u{FFFD}"]);
    }

    #[test]
    fn a_row_without_end_is_cut_at_the_cap() {
        let mut t = Term::new(true);
        let chunk = vec![b'x'; 10_000];
        let mut cut = 0;
        let mut segs = Vec::new();
        let mut done = 0;
        for _ in 0..20 {
            let ch = t.feed(&chunk, false);
            cut += usize::from(ch.cut);
            segs.extend(ch.segments);
            done += ch.shown.done.len();
        }
        let end = t.finish();
        segs.extend(end.segments);
        done += end.shown.done.len();
        assert_eq!(cut, 3);
        assert_eq!(segs.len(), 4);
        assert!(segs[..3].iter().all(|s| s.len() == ROW_CAP));
        assert_eq!(segs.iter().map(String::len).sum::<usize>(), 200_000);
        assert_eq!(done, 4);
        // The pane's copy is short.
        let mut t = Term::new(true);
        let l = &t.feed(&[&chunk[..], b"\n"].concat(), false).shown.done[0];
        assert_eq!(l.text.chars().count(), SHOWN_MAX + 1);
        assert!(l.text.ends_with('…'));
    }

    /// Bytes biased to what terminals interpret: escapes, controls, digits, a bar character.
    fn output_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just(b"\x1b[".to_vec()),
            Just(b"\x1b]".to_vec()),
            Just(b"\x1b\\".to_vec()),
            Just("█━é".as_bytes().to_vec()),
            Just(b"val_acc=0.5 ".to_vec()),
            prop::sample::select(b"\r\n\x08\t\x07;0123456789mKGCDABEFHJ?x ".to_vec())
                .prop_map(|b| vec![b]),
            any::<u8>().prop_map(|b| vec![b]),
        ];
        prop::collection::vec(piece, 0..200).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        /// However the output is cut into chunks, it reads the same; what is kept stays
        /// within its caps.
        #[test]
        fn chunks_do_not_change_what_is_read(bytes in output_bytes(), cuts in proptest::collection::vec(0usize..64, 0..8)) {
            let whole = {
                let mut t = Term::new(true);
                let mut a = t.feed(&bytes, false);
                let b = t.finish();
                a.segments.extend(b.segments);
                a.shown.done.extend(b.shown.done);
                a
            };
            let mut t = Term::new(true);
            let mut parts = Changes::default();
            let mut rest = &bytes[..];
            for c in cuts {
                let (now, later) = rest.split_at(c.min(rest.len()));
                let ch = t.feed(now, false);
                if let Some(live) = &ch.shown.live {
                    proptest::prop_assert!(live.len() <= 2 * REACH + 1);
                }
                parts.segments.extend(ch.segments);
                parts.shown.done.extend(ch.shown.done);
                rest = later;
            }
            let ch = t.feed(rest, false);
            parts.segments.extend(ch.segments);
            parts.shown.done.extend(ch.shown.done);
            let end = t.finish();
            parts.segments.extend(end.segments);
            parts.shown.done.extend(end.shown.done);
            proptest::prop_assert_eq!(&parts.segments, &whole.segments);
            proptest::prop_assert_eq!(&parts.shown.done, &whole.shown.done);
            for l in &whole.shown.done {
                proptest::prop_assert!(l.text.chars().count() <= SHOWN_MAX + 1);
                let joined: String = l.runs().map(|(s, _)| s).collect();
                proptest::prop_assert_eq!(&joined, &l.text);
            }
        }
    }

    #[test]
    fn plain_text_for_the_pane() {
        assert_eq!(
            StyledLine::plain("10%|##   \r50%|#####\tx\u{1b}[0m\n").text,
            "50%|#####       x"
        );
        assert!(StyledLine::plain(&"é".repeat(1200)).text.ends_with('…'));
    }
}
