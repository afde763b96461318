//! Saved governor profiles (DESIGN.md §5): the curve a governor measured — per cap, the power
//! and the throughput — kept per GPU model and workload name, so a later run of the same
//! workload on the same GPU starts from it instead of profiling again (it still profiles
//! again when the throughput drifts from it), and `carbontop simulate --profile FILE` can run
//! the governor against it.
//!
//! The files live in `$CARBONTOP_PROFILE_DIR`, else `$XDG_DATA_HOME/carbontop/profiles`, else
//! `~/.local/share/carbontop/profiles` (the XDG base directory default), as
//! `<model>/<workload>.csv`: a `#` line naming what it is, then `cap_w,power_w,throughput,
//! rel_err` rows, highest cap first.

use super::governor::Point;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A profile file is a few hundred bytes; more than this is not one (read no further).
const MAX_BYTES: u64 = 64 * 1024;

/// A measured curve and what it was measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub gpu: String,
    pub workload: String,
    /// Throughput is training steps/s (else utilisation × SM clock, a proxy).
    pub by_steps: bool,
    /// Highest cap first.
    pub points: Vec<Point>,
}

/// Where profiles are kept, by the environment `var` gives (`std::env::var` in a run).
pub fn dir(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |k: &str| var(k).filter(|v| !v.is_empty());
    if let Some(d) = set("CARBONTOP_PROFILE_DIR") {
        return Some(PathBuf::from(d));
    }
    let data = set("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| Path::new(&h).join(".local/share")))?;
    Some(data.join("carbontop").join("profiles"))
}

/// A name as one path component: letters, digits, `-`, `_` and `.` kept, the rest `_`.
fn component(name: &str) -> String {
    let s: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.trim_start_matches('.') {
        "" => "_".into(),
        t => t.to_owned(),
    }
}

/// The file for `gpu` and `workload` under `dir`.
pub fn path(dir: &Path, gpu: &str, workload: &str) -> PathBuf {
    dir.join(component(gpu))
        .join(format!("{}.csv", component(workload)))
}

impl Saved {
    pub fn to_csv(&self) -> String {
        let mut s = format!(
            "# carbontop governor profile; gpu={}; workload={}; throughput={}\n\
             cap_w,power_w,throughput,rel_err\n",
            self.gpu.replace(['\n', ';'], " "),
            self.workload.replace(['\n', ';'], " "),
            if self.by_steps { "steps/s" } else { "util*MHz" }
        );
        for p in &self.points {
            s += &format!("{},{},{},{}\n", p.cap_w, p.power_w, p.throughput, p.rel_err);
        }
        s
    }

    /// A profile file's text; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<Saved, String> {
        let mut lines = text.lines();
        let head = lines.next().unwrap_or_default();
        let field = |k: &str| {
            head.split(';')
                .find_map(|f| f.trim().strip_prefix(&format!("{k}=")))
                .map(str::to_owned)
        };
        let (Some(gpu), Some(workload), Some(unit)) =
            (field("gpu"), field("workload"), field("throughput"))
        else {
            return Err(format!("{what}: not a carbontop governor profile"));
        };
        if lines.next() != Some("cap_w,power_w,throughput,rel_err") {
            return Err(format!(
                "{what}: line 2 is not cap_w,power_w,throughput,rel_err"
            ));
        }
        let mut points = Vec::new();
        for (k, l) in lines.enumerate() {
            let v: Vec<f64> = l.split(',').filter_map(|f| f.trim().parse().ok()).collect();
            match v[..] {
                [cap_w, power_w, throughput, rel_err]
                    if v.iter().all(|x| x.is_finite() && *x >= 0.0)
                        && power_w > 0.0
                        && throughput > 0.0 =>
                {
                    points.push(Point {
                        cap_w,
                        power_w,
                        throughput,
                        rel_err,
                    });
                }
                _ => return Err(format!("{what}: line {} is not a measured cap", k + 3)),
            }
        }
        if points.is_empty() {
            return Err(format!("{what}: no caps"));
        }
        points.sort_by(|a, b| b.cap_w.total_cmp(&a.cap_w));
        Ok(Saved {
            gpu,
            workload,
            by_steps: unit == "steps/s",
            points,
        })
    }

    /// The profile at `path`: None where there is none.
    pub fn load(path: &Path) -> Result<Option<Saved>, String> {
        let what = path.display().to_string();
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{what}: {e}")),
        };
        let mut text = String::new();
        f.take(MAX_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| format!("{what}: {e}"))?;
        Saved::parse(&text, &what).map(Some)
    }

    /// Writes it to `path` (its directory made), whole or not at all.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let what = path.display();
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let tmp = path.with_extension("csv.tmp");
        std::fs::write(&tmp, self.to_csv())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_reads_back_as_written_and_lives_where_xdg_says() {
        let s = Saved {
            gpu: "NVIDIA A40".into(),
            workload: "train.py".into(),
            by_steps: true,
            points: vec![
                Point {
                    cap_w: 300.0,
                    power_w: 244.25,
                    throughput: 2.675,
                    rel_err: 0.0187,
                },
                Point {
                    cap_w: 275.0,
                    power_w: 230.75,
                    throughput: 2.65,
                    rel_err: 0.0189,
                },
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), &s.gpu, &s.workload);
        assert_eq!(p, dir.path().join("NVIDIA_A40").join("train.py.csv"));
        assert_eq!(Saved::load(&p).unwrap(), None);
        s.save(&p).unwrap();
        assert_eq!(Saved::load(&p).unwrap(), Some(s));
        // No way out of the directory by a name.
        assert_eq!(
            path(Path::new("/d"), "../x", "../../y"),
            Path::new("/d/_x/_.._y.csv")
        );
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_owned())
        };
        assert_eq!(
            dir_of(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.local/share/carbontop/profiles"))
        );
        assert_eq!(
            dir_of(env(&[("HOME", "/h"), ("XDG_DATA_HOME", "/x")])),
            Some(PathBuf::from("/x/carbontop/profiles"))
        );
        assert_eq!(
            dir_of(env(&[
                ("XDG_DATA_HOME", "/x"),
                ("CARBONTOP_PROFILE_DIR", "/t")
            ])),
            Some(PathBuf::from("/t"))
        );
        assert_eq!(dir_of(env(&[])), None);
        // Not a profile: said, with the file's name.
        let e = Saved::parse("cap,w\n1,2\n", "p.csv").unwrap_err();
        assert!(e.starts_with("p.csv: "), "{e}");
        let bad = s_text().replace("2.65,", "-1,");
        assert!(Saved::parse(&bad, "p.csv").unwrap_err().contains("line 4"));
    }

    fn dir_of(f: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
        dir(f)
    }

    fn s_text() -> String {
        "# carbontop governor profile; gpu=g; workload=w; throughput=steps/s\n\
         cap_w,power_w,throughput,rel_err\n300,244,2.675,0.01\n275,230,2.65,0.01\n"
            .into()
    }
}
