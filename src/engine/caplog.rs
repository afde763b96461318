//! The power-cap changes a tick closes, as samples.csv's `cap_change` cell holds them
//! (`governor gpu0 300->275 W; governor gpu1 300->275 W`): made by `control::CapControl`,
//! carried on the `Tick`, written and read back as typed values.

use std::fmt;
use std::str::FromStr;

/// Who changed a cap (logged in samples.csv's `cap_change`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    User,
    Governor,
    Restore,
}

impl Who {
    fn label(self) -> &'static str {
        match self {
            Who::User => "user",
            Who::Governor => "governor",
            Who::Restore => "restore",
        }
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One logged change: `user gpu0 300->290 W`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub who: Who,
    pub gpu: usize,
    pub old_w: f64,
    pub new_w: f64,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} gpu{} {:.0}->{:.0} W",
            self.who, self.gpu, self.old_w, self.new_w
        )
    }
}

/// A cap change that does not read (`{text:?} is not a cap change …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a cap change (WHO gpuN OLD->NEW W, WHO one of user, governor, restore)")]
pub struct CapChangeError {
    /// The change as written.
    pub text: String,
}

/// Watts as a change writes them (a whole number): anything else would not be written back
/// the same.
fn whole_watts(s: &str) -> Option<f64> {
    let w: f64 = s.parse().ok()?;
    (w.is_finite() && format!("{w:.0}") == s).then_some(w)
}

impl FromStr for Change {
    type Err = CapChangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CapChangeError { text: s.to_owned() };
        let mut words = s.split(' ');
        let (Some(who), Some(gpu), Some(watts), Some("W"), None) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            return Err(bad());
        };
        let who = [Who::User, Who::Governor, Who::Restore]
            .into_iter()
            .find(|w| w.label() == who)
            .ok_or_else(bad)?;
        let n = gpu.strip_prefix("gpu").ok_or_else(bad)?;
        let gpu = n
            .parse()
            .ok()
            .filter(|g: &usize| g.to_string() == n)
            .ok_or_else(bad)?;
        let (old, new) = watts.split_once("->").ok_or_else(bad)?;
        let (Some(old_w), Some(new_w)) = (whole_watts(old), whole_watts(new)) else {
            return Err(bad());
        };
        Ok(Change {
            who,
            gpu,
            old_w,
            new_w,
        })
    }
}

/// The changes made during one tick's interval, in order; empty when none. `Display` is the
/// `cap_change` cell (`; `-separated, empty when none) and `FromStr` reads it back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CapLog(pub Vec<Change>);

impl CapLog {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn changes(&self) -> &[Change] {
        &self.0
    }
}

/// What separates two changes in a cell.
const SEPARATOR: &str = "; ";

impl fmt::Display for CapLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(SEPARATOR)?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl FromStr for CapLog {
    type Err = CapChangeError;

    /// An empty cell is no change; else every `; `-separated part must be a change.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(CapLog::default());
        }
        s.split(SEPARATOR)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(CapLog)
    }
}

impl From<Vec<Change>> for CapLog {
    fn from(v: Vec<Change>) -> Self {
        CapLog(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(who: Who, gpu: usize, old_w: f64, new_w: f64) -> Change {
        Change {
            who,
            gpu,
            old_w,
            new_w,
        }
    }

    #[test]
    fn a_cell_of_several_changes_reads_back_as_written() {
        let log = CapLog(vec![
            ch(Who::Governor, 0, 300.0, 275.0),
            ch(Who::Governor, 1, 300.0, 274.0),
            ch(Who::User, 12, 275.0, 290.0),
            ch(Who::Restore, 0, 275.0, 300.0),
        ]);
        let text = "governor gpu0 300->275 W; governor gpu1 300->274 W; user gpu12 275->290 W; \
                    restore gpu0 275->300 W";
        assert_eq!(log.to_string(), text);
        assert_eq!(text.parse::<CapLog>(), Ok(log));
        let one = "user gpu0 300->290 W";
        assert_eq!(
            one.parse::<CapLog>().map(|l| l.to_string()).as_deref(),
            Ok(one)
        );
        assert_eq!("".parse::<CapLog>(), Ok(CapLog::default()));
        assert_eq!(CapLog::default().to_string(), "");
    }

    #[test]
    fn a_malformed_change_is_named() {
        for (cell, bad) in [
            ("user gpu0 300->290", "user gpu0 300->290"),
            ("user gpu0 300->290 W;", "user gpu0 300->290 W;"),
            ("user gpu0 300->290 W; boss gpu1 1->2 W", "boss gpu1 1->2 W"),
            ("user gpuX 300->290 W", "user gpuX 300->290 W"),
            ("user gpu01 300->290 W", "user gpu01 300->290 W"),
            ("user gpu+1 300->290 W", "user gpu+1 300->290 W"),
            ("user gpu0 300.5->290 W", "user gpu0 300.5->290 W"),
            ("user gpu0 300-290 W", "user gpu0 300-290 W"),
            ("user gpu0 300->NaN W", "user gpu0 300->NaN W"),
            ("user  gpu0 300->290 W", "user  gpu0 300->290 W"),
            ("x", "x"),
        ] {
            assert_eq!(
                cell.parse::<CapLog>(),
                Err(CapChangeError { text: bad.into() }),
                "{cell}"
            );
        }
        let e = "user gpu0 300->290 W; boss gpu1 1->2 W"
            .parse::<CapLog>()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"boss gpu1 1->2 W\" is not a cap change (WHO gpuN OLD->NEW W, WHO one of user, \
             governor, restore)"
        );
    }
}
