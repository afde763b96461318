//! Themes: TOML files (DESIGN.md §7). The ones in `themes/` are compiled in; user themes come
//! from the config dir (`carbontop/themes/*.toml`) or a path, and overlay `default`: a user theme
//! names only the colours it changes. An unknown key or a bad colour is one line naming the
//! file, the line and the key.

use crate::config::{at_line, line_of, toml_parts, unknown_key};
use ratatui::style::Color;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use toml::Spanned;

/// The colours the screen uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub background: Color,
    pub text: Color,
    pub muted: Color,
    pub border: Color,
    pub focus: Color,
    pub title: Color,
    pub warning: Color,
    pub good: Color,
    pub total: Color,
    /// One per GPU, cycled.
    pub gpu: Vec<Color>,
    pub cpu: Color,
    pub memory: Color,
    pub network: Color,
    pub intensity: Color,
    pub carbon: Color,
    pub accuracy: Color,
    pub loss: Color,
}

impl Theme {
    pub fn gpu_color(&self, i: usize) -> Color {
        if self.gpu.is_empty() {
            self.text
        } else {
            self.gpu[i % self.gpu.len()]
        }
    }
}

/// The themes compiled in, in `t` order; `default` first.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("colorblind", include_str!("../../themes/colorblind.toml")),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    #[serde(default)]
    colors: ColorsFile,
}

type C = Option<Spanned<String>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColorsFile {
    background: C,
    text: C,
    muted: C,
    border: C,
    focus: C,
    title: C,
    warning: C,
    good: C,
    total: C,
    gpu: Option<Spanned<Vec<Spanned<String>>>>,
    cpu: C,
    memory: C,
    network: C,
    intensity: C,
    carbon: C,
    accuracy: C,
    loss: C,
}

/// Why a colour is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColourError {
    /// `#` but not six hex digits.
    #[error("`{0}` is not a colour: use #rrggbb")]
    BadHex(String),
    /// Not a name, an index or `reset` either.
    #[error("`{0}` is not a colour (use #rrggbb, a name like `lightblue`, 0–255 or `reset`)")]
    Unknown(String),
}

/// Why a theme could not be loaded or chosen; each text is one line naming the file, the line
/// and the key where known.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    /// The theme file could not be read.
    #[error("theme {}: cannot read: {error}", .path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A key no theme may hold (the text is TOML's own, listing the known keys).
    #[error("theme {file}{}: {message}", at_line(*.line))]
    UnknownKey {
        file: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
    /// Not TOML, or a value of the wrong type.
    #[error("theme {file}{}: {message}", at_line(*.line))]
    Syntax {
        file: String,
        line: Option<usize>,
        message: String,
    },
    /// `colors.KEY` is not a colour.
    #[error("theme {file}, line {line}: key `colors.{key}`: {error}")]
    BadColour {
        file: String,
        line: usize,
        key: &'static str,
        error: ColourError,
    },
    /// `colors.gpu = []`.
    #[error("theme {file}, line {line}: key `colors.gpu`: needs at least one colour")]
    NoGpuColours { file: String, line: usize },
    /// `--theme NAME` names no built-in or user theme.
    #[error(
        "--theme {choice}: no such theme (known: {}; or give a path to a .toml file)",
        .known.join(", ")
    )]
    NoSuchTheme { choice: String, known: Vec<String> },
}

/// Parses one colour: `#rrggbb`, a name, an index 0–255 or `reset`.
pub fn parse_color(s: &str) -> Result<Color, ColourError> {
    let t = s.trim();
    if t.starts_with('#') && (t.len() != 7 || !t[1..].chars().all(|c| c.is_ascii_hexdigit())) {
        return Err(ColourError::BadHex(s.to_owned()));
    }
    Color::from_str(t).map_err(|_| ColourError::Unknown(s.to_owned()))
}

/// Parses a theme file's text over `base`; errors are `theme FILE, line N: key `k`: …`.
pub fn parse(text: &str, file: &str, base: &Theme) -> Result<Theme, ThemeError> {
    let f: ThemeFile = toml::from_str(text).map_err(|e| {
        let (line, message) = toml_parts(text, &e);
        let file = file.to_owned();
        match unknown_key(&message) {
            Some(key) => ThemeError::UnknownKey {
                file,
                line,
                key,
                message,
            },
            None => ThemeError::Syntax {
                file,
                line,
                message,
            },
        }
    })?;
    let mut t = base.clone();
    if let Some(n) = f.name {
        t.name = n;
    }
    let c = f.colors;
    let one = |key: &'static str, v: &C, slot: &mut Color| -> Result<(), ThemeError> {
        if let Some(v) = v {
            *slot = parse_color(v.get_ref()).map_err(|error| ThemeError::BadColour {
                file: file.to_owned(),
                line: line_of(text, v.span().start),
                key,
                error,
            })?;
        }
        Ok(())
    };
    one("background", &c.background, &mut t.background)?;
    one("text", &c.text, &mut t.text)?;
    one("muted", &c.muted, &mut t.muted)?;
    one("border", &c.border, &mut t.border)?;
    one("focus", &c.focus, &mut t.focus)?;
    one("title", &c.title, &mut t.title)?;
    one("warning", &c.warning, &mut t.warning)?;
    one("good", &c.good, &mut t.good)?;
    one("total", &c.total, &mut t.total)?;
    one("cpu", &c.cpu, &mut t.cpu)?;
    one("memory", &c.memory, &mut t.memory)?;
    one("network", &c.network, &mut t.network)?;
    one("intensity", &c.intensity, &mut t.intensity)?;
    one("carbon", &c.carbon, &mut t.carbon)?;
    one("accuracy", &c.accuracy, &mut t.accuracy)?;
    one("loss", &c.loss, &mut t.loss)?;
    if let Some(list) = &c.gpu {
        if list.get_ref().is_empty() {
            return Err(ThemeError::NoGpuColours {
                file: file.to_owned(),
                line: line_of(text, list.span().start),
            });
        }
        let mut gpus = Vec::new();
        for v in list.get_ref() {
            let mut col = Color::Reset;
            one("gpu", &Some(v.clone()), &mut col)?;
            gpus.push(col);
        }
        t.gpu = gpus;
    }
    Ok(t)
}

/// A theme with every colour the terminal's own (the base the built-in default overlays).
fn blank() -> Theme {
    Theme {
        name: String::new(),
        background: Color::Reset,
        text: Color::Reset,
        muted: Color::Reset,
        border: Color::Reset,
        focus: Color::Reset,
        title: Color::Reset,
        warning: Color::Reset,
        good: Color::Reset,
        total: Color::Reset,
        gpu: vec![Color::Reset],
        cpu: Color::Reset,
        memory: Color::Reset,
        network: Color::Reset,
        intensity: Color::Reset,
        carbon: Color::Reset,
        accuracy: Color::Reset,
        loss: Color::Reset,
    }
}

/// The built-in themes (the default one first). They are tested to parse.
pub fn builtins() -> Vec<Theme> {
    let mut out: Vec<Theme> = Vec::new();
    for (name, text) in BUILTIN {
        let base = out.first().cloned().unwrap_or_else(blank);
        match parse(text, &format!("themes/{name}.toml"), &base) {
            Ok(t) => out.push(t),
            // Unreachable for the files shipped (a unit test parses each); never panic.
            Err(e) => crate::app::say(&e.to_string()),
        }
    }
    if out.is_empty() {
        out.push(blank());
    }
    out
}

/// The user theme directory: `$XDG_CONFIG_HOME/carbontop/themes` (or `~/.config/…`).
pub fn user_dir() -> Option<PathBuf> {
    crate::config::default_path().and_then(|p| p.parent().map(|d| d.join("themes")))
}

/// Loads a theme file over the default theme.
pub fn load_file(path: &Path, base: &Theme) -> Result<Theme, ThemeError> {
    let text =
        crate::config::read_small(path, crate::config::MAX_CONFIG_BYTES).map_err(|error| {
            ThemeError::Read {
                path: path.to_path_buf(),
                error,
            }
        })?;
    let mut t = parse(&text, &path.display().to_string(), base)?;
    if t.name == base.name {
        // A file without `name` is called after its stem.
        t.name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
    }
    Ok(t)
}

/// Every theme `t` cycles through (built-ins, then the user dir's, sorted), and the index of
/// the one `--theme NAME|PATH` picks (default: `default`).
pub fn resolve(
    choice: Option<&str>,
    dir: Option<&Path>,
) -> Result<(Vec<Theme>, usize), ThemeError> {
    let mut all = builtins();
    let base = all[0].clone();
    if let Some(d) = dir
        && let Ok(rd) = std::fs::read_dir(d)
    {
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let t = load_file(&p, &base)?;
            match all.iter().position(|x| x.name == t.name) {
                Some(i) => all[i] = t,
                None => all.push(t),
            }
        }
    }
    let Some(choice) = choice else {
        return Ok((all, 0));
    };
    let looks_like_path = choice.contains('/') || choice.ends_with(".toml");
    if looks_like_path {
        let t = load_file(Path::new(choice), &base)?;
        let i = match all.iter().position(|x| x.name == t.name) {
            Some(i) => {
                all[i] = t;
                i
            }
            None => {
                all.push(t);
                all.len() - 1
            }
        };
        return Ok((all, i));
    }
    match all.iter().position(|t| t.name == choice) {
        Some(i) => Ok((all, i)),
        None => Err(ThemeError::NoSuchTheme {
            choice: choice.to_owned(),
            known: all.into_iter().map(|t| t.name).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_differ() {
        for (name, text) in BUILTIN {
            let t = parse(text, name, &blank()).unwrap();
            assert_eq!(&t.name, name);
            assert!(!t.gpu.is_empty());
        }
        let all = builtins();
        assert_eq!(all.len(), BUILTIN.len());
        assert_ne!(all[0], all[1]);
        assert_eq!(all[1].background, Color::Rgb(0xfa, 0xfa, 0xfa));
    }

    #[test]
    fn user_theme_overlays_default() {
        let base = builtins().remove(0);
        let t = parse("[colors]\ncarbon = \"red\"\n", "mine.toml", &base).unwrap();
        assert_eq!(t.carbon, Color::Red);
        assert_eq!(t.cpu, base.cpu);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let base = builtins().remove(0);
        let e = parse("name = \"x\"\n[colors]\ncarbn = \"red\"\n", "x.toml", &base)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("theme x.toml, line 3:"), "{e}");
        assert!(e.contains("carbn"), "{e}");
        let e = parse("colour = 1\n", "x.toml", &base)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("theme x.toml, line 1:") && e.contains("colour"),
            "{e}"
        );
    }

    #[test]
    fn bad_colour_names_file_line_and_key() {
        let base = builtins().remove(0);
        let e = parse(
            "[colors]\ntext = \"#fff\"\ncpu = \"#12345g\"\n",
            "b.toml",
            &base,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "theme b.toml, line 2: key `colors.text`: `#fff` is not a colour: use #rrggbb"
        );
        let e = parse("[colors]\ncpu = \"blurple\"\n", "b.toml", &base)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("theme b.toml, line 2: key `colors.cpu`: `blurple`"),
            "{e}"
        );
        let e = parse("[colors]\n\ngpu = [\"red\", \"nope\"]\n", "b.toml", &base)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("theme b.toml, line 3: key `colors.gpu`"),
            "{e}"
        );
        let e = parse("[colors]\ngpu = []\n", "b.toml", &base)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one"), "{e}");
        let e = parse("[colors]\ncpu = 7\n", "b.toml", &base)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("theme b.toml, line 2:"), "{e}");
        // Not TOML at all.
        let e = parse("[colors\n", "b.toml", &base).unwrap_err().to_string();
        assert!(e.starts_with("theme b.toml, line 1:"), "{e}");
    }

    #[test]
    fn resolve_by_name_path_and_user_dir() {
        let (all, i) = resolve(Some("light"), None).unwrap();
        assert_eq!(all[i].name, "light");
        let e = resolve(Some("nope"), None).unwrap_err().to_string();
        assert!(e.starts_with("--theme nope: no such theme (known: default, light, colorblind"));

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sunset.toml"),
            "[colors]\ncarbon = \"#ff0000\"\n",
        )
        .unwrap();
        let (all, i) = resolve(Some("sunset"), Some(dir.path())).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[i].carbon, Color::Rgb(255, 0, 0));

        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "[colors]\ncarbon = \"#ff00\"\n").unwrap();
        let e = resolve(None, Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("bad.toml, line 2: key `colors.carbon`"), "{e}");
        let e = resolve(Some(p.to_str().unwrap()), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = resolve(Some("/no/such/theme.toml"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("theme /no/such/theme.toml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn errors_are_typed_and_keep_their_one_line_texts() {
        let base = builtins().remove(0);
        let e = parse("[colors]\ntext = \"#fff\"\n", "b.toml", &base).unwrap_err();
        assert!(
            matches!(
                &e,
                ThemeError::BadColour { line: 2, key: "text", error: ColourError::BadHex(s), .. }
                    if s == "#fff"
            ),
            "{e:?}"
        );
        let e = parse("[colors]\ncarbn = \"red\"\n", "x.toml", &base).unwrap_err();
        assert!(
            matches!(&e, ThemeError::UnknownKey { key, line: Some(2), .. } if key == "carbn"),
            "{e:?}"
        );
        let e = parse("[colors]\ngpu = []\n", "b.toml", &base).unwrap_err();
        assert!(
            matches!(e, ThemeError::NoGpuColours { line: 2, .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "theme b.toml, line 2: key `colors.gpu`: needs at least one colour"
        );
        let e = resolve(Some("nope"), None).unwrap_err();
        assert!(matches!(&e, ThemeError::NoSuchTheme { choice, .. } if choice == "nope"));
        assert_eq!(
            e.to_string(),
            "--theme nope: no such theme (known: default, light, colorblind; \
             or give a path to a .toml file)"
        );
        assert_eq!(
            parse_color("blurple").unwrap_err().to_string(),
            "`blurple` is not a colour (use #rrggbb, a name like `lightblue`, 0–255 or `reset`)"
        );
    }
}
