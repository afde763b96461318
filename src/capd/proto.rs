//! capd's wire protocol: one JSON object per line each way, each line at most [`MAX_LINE`]
//! bytes. On connecting, capd sends a hello (or a refusal, then closes); then every request
//! gets exactly one reply.
//!
//! ```text
//! → {"op":"limits","gpu":"GPU-…"}            ← {"ok":true,"min_w":100,"max_w":400,"default_w":400,"current_w":280}
//! → {"op":"set","gpu":"GPU-…","watts":200}   ← {"ok":true,"old_w":280,"new_w":200}
//! → {"op":"restore","gpu":"GPU-…"}           ← {"ok":true,"cap_w":280}
//! → {"op":"keep"}                            ← {"ok":true}
//! ← {"ok":false,"error":"…"}                 (any refusal; a line too long or not JSON also closes)
//! ```

use serde::{Deserialize, Serialize};
use std::io::BufRead;

/// The longest line either side sends, newline excluded (a request is under 200 bytes).
pub const MAX_LINE: usize = 4096;

/// The protocol's version, in the hello.
pub const VERSION: u32 = 1;

/// What a client may ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// The GPU's constraints, default and present cap.
    Limits { gpu: String },
    /// Set the GPU's cap (W), within its constraints.
    Set { gpu: String, watts: f64 },
    /// Put back what this client changed on the GPU.
    Restore { gpu: String },
    /// Leave this client's caps as they are when it goes (`--no-restore`).
    Keep {},
}

/// capd's answer: `ok` and what was asked, or `ok: false` and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Hello: the protocol version and who capd sees (from SO_PEERCRED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capd: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_w: Option<f64>,
}

impl Reply {
    pub fn ok() -> Self {
        Self {
            ok: true,
            ..Self::default()
        }
    }

    pub fn err(why: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(why.into()),
            ..Self::default()
        }
    }

    /// The reply as one line, newline included.
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"ok":false,"error":"reply not encodable"}"#.into());
        s.push('\n');
        s
    }
}

/// A request line that is not one of the [`Request`]s, said in one line.
pub fn parse(line: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_owned())?;
    let r: Request = serde_json::from_str(text.trim()).map_err(|e| {
        format!(r#"bad request ({e}): send one JSON object per line, e.g. {{"op":"limits","gpu":"GPU-…"}}"#)
    })?;
    match &r {
        Request::Set { watts, .. } if !watts.is_finite() || *watts <= 0.0 => {
            Err(format!("{watts} W is not a power cap"))
        }
        _ => Ok(r),
    }
}

/// What reading one line gave.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// A whole line (newline removed) is in the buffer.
    Line,
    /// The peer closed; a partial line without newline is dropped.
    Eof,
    /// More than `max` bytes without a newline: the connection is to be closed.
    TooLong,
}

/// Reads into `buf` up to the next newline, never holding more than `max` bytes of it. An
/// error (a read timeout) leaves what was read in `buf`, so the call can be repeated.
pub fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(Line::Eof);
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > max {
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(take + usize::from(done));
        if done {
            return Ok(Line::Line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_anything_else_is_one_line() {
        assert_eq!(
            parse(br#"{"op":"set","gpu":"GPU-1","watts":200}"#),
            Ok(Request::Set {
                gpu: "GPU-1".into(),
                watts: 200.0
            })
        );
        assert_eq!(parse(br#" {"op":"keep"} "#), Ok(Request::Keep {}));
        assert_eq!(
            parse(br#"{"op":"restore","gpu":"GPU-1"}"#),
            Ok(Request::Restore {
                gpu: "GPU-1".into()
            })
        );
        for bad in [
            &br#"{"op":"set","gpu":"GPU-1"}"#[..],
            br#"{"op":"set","gpu":"GPU-1","watts":-5}"#,
            br#"{"op":"set","gpu":"GPU-1","watts":200,"uid":0}"#,
            br#"{"op":"reboot"}"#,
            b"not json",
            b"\xff\xfe",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
        // A caller cannot name itself: an extra field is refused, not ignored.
        assert!(
            parse(br#"{"op":"keep","pid":1}"#)
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn replies_are_one_line_without_empty_fields() {
        let r = Reply {
            old_w: Some(280.0),
            new_w: Some(200.0),
            ..Reply::ok()
        };
        assert_eq!(r.line(), "{\"ok\":true,\"old_w\":280.0,\"new_w\":200.0}\n");
        assert_eq!(Reply::err("no").line(), "{\"ok\":false,\"error\":\"no\"}\n");
        let back: Reply = serde_json::from_str(r.line().trim()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn lines_are_bounded_and_split() {
        let data = b"ab\ncd\nxyz";
        let mut r = std::io::BufReader::with_capacity(2, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf, 8).unwrap(), Line::Line);
        assert_eq!(buf, b"ab");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf, 8).unwrap(), Line::Line);
        assert_eq!(buf, b"cd");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf, 8).unwrap(), Line::Eof);

        let long = vec![b'x'; 10_000];
        let mut r = std::io::BufReader::new(&long[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, &mut buf, MAX_LINE).unwrap(),
            Line::TooLong
        );
        assert!(buf.len() <= MAX_LINE);
        // Exactly the bound is a line.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        let mut r = std::io::BufReader::new(&exact[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf, MAX_LINE).unwrap(), Line::Line);
        assert_eq!(buf.len(), MAX_LINE);
    }
}
