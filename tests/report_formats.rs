//! `report --format markdown|latex` and `--model-card`: the numbers are the JSON's, the LaTeX
//! is well formed (by structure, and by pdflatex where it is installed), the model card parses
//! as YAML with Hugging Face's fields.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use common::{bin, json_of, need};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE: &str = "fixtures/traces/a40x4-cifar100.csv";

/// The fixture in a directory whose names need escaping, with a run.json naming its GPUs, CPU
/// and zone.
fn recording(dir: &Path) -> PathBuf {
    let sub = dir.join("runs_#1 & 50%");
    std::fs::create_dir_all(&sub).unwrap();
    let file = sub.join("cifar_100 {a}.csv");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE), &file).unwrap();
    let run = serde_json::json!({
        "run_id": "r1",
        "zone": "FR",
        "intensity": "table FR",
        "pue": 1.2,
        "machine": {
            "cpu_model": "AMD EPYC 7742 64-Core_Processor",
            "cpu_count": 128,
            "gpus": ["NVIDIA A40", "NVIDIA A40", "NVIDIA A40", "NVIDIA A40"],
        },
    });
    std::fs::write(sub.join("run.json"), run.to_string()).unwrap();
    file
}

fn out(args: &[&str], file: &Path) -> String {
    let o = bin().arg("report").arg(file).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn json(file: &Path) -> Value {
    let v = json_of(bin().arg("report").arg(file).args(["--format", "json"]));
    v["runs"][0].clone()
}

/// The numbers of a cell, in order (not the digits of a name such as CO2e).
fn numbers(cell: &str) -> Vec<f64> {
    let mut v = Vec::new();
    let mut cur = String::new();
    let mut prev = ' ';
    for c in cell.chars().chain(std::iter::once(' ')) {
        let word = prev.is_alphabetic() || (prev.is_ascii_digit() && cur.is_empty());
        prev = c;
        if (c.is_ascii_digit() && !word) || (!cur.is_empty() && (c.is_ascii_digit() || c == '.')) {
            cur.push(c);
        } else if !cur.is_empty() {
            v.push(cur.trim_end_matches('.').parse().unwrap());
            cur.clear();
        }
    }
    v
}

fn close(shown: f64, want: f64, what: &str) {
    let tol = want.abs() * 1e-3 + 1e-12;
    assert!(
        (shown - want).abs() <= tol,
        "{what}: shown {shown}, JSON {want}"
    );
}

/// Each row's value as numbers, by its first column.
fn check_numbers(rows: &[(String, String)], j: &Value) {
    let row = |name: &str| -> Vec<f64> {
        let (_, v) = rows
            .iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no row {name}: {rows:?}"));
        numbers(v)
    };
    let f = |p: &str| j.pointer(p).and_then(Value::as_f64).unwrap();
    close(row("Energy")[0], f("/energy_kwh"), "energy");
    close(row("PUE")[0], f("/pue"), "pue");
    let op = row("Operational emissions");
    close(op[0] * 1000.0, f("/co2e_band/g"), "operational");
    close(op[1] * 1000.0, f("/co2e_band/low_g"), "operational low");
    close(op[2] * 1000.0, f("/co2e_band/high_g"), "operational high");
    let em = row("Embodied emissions");
    close(em[0] * 1000.0, f("/embodied_co2e/g"), "embodied");
    close(em[1] * 1000.0, f("/embodied_co2e/low_g"), "embodied low");
    close(em[2] * 1000.0, f("/embodied_co2e/high_g"), "embodied high");
    close(
        row("Total emissions")[0] * 1000.0,
        f("/total_co2e/g"),
        "total",
    );
    let pp = row("Cost per accuracy point");
    close(pp[0], f("/per_point/co2e_g"), "per point g");
    close(pp[1] / 1000.0, f("/per_point/energy_kwh"), "per point kWh");
    close(
        row("Carbon intensity")[0],
        f("/mean_intensity_g_per_kwh"),
        "intensity",
    );
    let dur = row("Duration");
    close(dur[3], f("/duration_s"), "duration");
}

#[test]
fn markdown_table_holds_the_json_figures_and_cites_its_constants() {
    let dir = tempfile::tempdir().unwrap();
    let file = recording(dir.path());
    let md = out(&["--format", "markdown"], &file);
    let j = json(&file);
    let lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(lines[0], "| Quantity | Value | How it was obtained |");
    assert_eq!(lines[1], "|---|---|---|");
    // Every row has its three cells (a `|` inside a cell is escaped).
    let rows: Vec<(String, String)> = lines[2..]
        .iter()
        .map(|l| {
            let cells: Vec<String> = l
                .replace("\\|", "\u{1}")
                .split('|')
                .map(|c| c.trim().replace('\u{1}', "|"))
                .collect();
            assert_eq!(cells.len(), 5, "{l}");
            (cells[1].clone(), cells[2].clone())
        })
        .collect();
    check_numbers(&rows, &j);
    assert!(md.contains("4 x NVIDIA A40, CPU AMD EPYC"), "{md}");
    assert!(md.contains("France (zone FR)"), "{md}");
    // No directory of the machine, the recording by its name.
    assert!(!md.contains(&*dir.path().to_string_lossy()), "{md}");
    assert!(md.contains("cifar_100 {a}.csv"), "{md}");
    for cite in ["Luccioni", "Green Software Foundation", "CodeCarbon"] {
        assert!(md.contains(cite), "no {cite}: {md}");
    }
}

/// A LaTeX text's unescaped characters (`\x` pairs dropped).
fn unescaped(t: &str) -> String {
    let mut o = String::new();
    let mut it = t.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(n) if n.is_ascii_alphabetic() => {
                    o.push('\\');
                    o.push(n);
                }
                _ => o.push(' '),
            }
        } else {
            o.push(c);
        }
    }
    o
}

/// Checks a LaTeX fragment by structure: braces and environments balanced, math closed on each
/// line, `_ ^` only in math, `# & % ~` only escaped (or as the table's `&`, or a comment line).
fn check_latex(tex: &str) {
    let mut depth = 0i64;
    let mut envs: Vec<String> = Vec::new();
    for line in tex.lines() {
        if line.starts_with('%') {
            continue;
        }
        let u = unescaped(line);
        assert_eq!(u.matches('$').count() % 2, 0, "math left open: {line}");
        let mut in_math = false;
        for c in u.chars() {
            match c {
                '$' => in_math = !in_math,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    assert!(depth >= 0, "a closing brace too many: {line}");
                }
                '_' | '^' => assert!(in_math, "{c} outside math: {line}"),
                '#' | '%' | '~' => panic!("unescaped {c}: {line}"),
                _ => {}
            }
        }
        for (tag, push) in [("\\begin{", true), ("\\end{", false)] {
            for part in line.split(tag).skip(1) {
                let name = part.split('}').next().unwrap().to_owned();
                if push {
                    envs.push(name);
                } else {
                    assert_eq!(envs.pop().as_deref(), Some(&*name), "{line}");
                }
            }
        }
    }
    assert_eq!(depth, 0, "braces unbalanced");
    assert!(envs.is_empty(), "environments left open: {envs:?}");
}

#[test]
fn latex_is_well_formed_escaped_and_holds_the_json_figures() {
    let dir = tempfile::tempdir().unwrap();
    let file = recording(dir.path());
    let tex = out(&["--format", "latex"], &file);
    let j = json(&file);
    check_latex(&tex);
    assert!(tex.contains("\\begin{tabular}"), "{tex}");
    assert!(tex.contains(r"cifar\_100 \{a\}.csv"), "{tex}");
    // The table's rows: two unescaped `&` each.
    let body = tex
        .split("\\hline\n")
        .nth(2)
        .unwrap_or_else(|| panic!("{tex}"));
    let rows: Vec<(String, String)> = body
        .lines()
        .map(|l| {
            let cells: Vec<String> = l
                .trim_end_matches("\\\\")
                .replace("\\&", "\u{1}")
                .split('&')
                .map(|c| c.trim().replace('\u{1}', "&"))
                .collect();
            assert_eq!(cells.len(), 3, "{l}");
            (cells[0].clone(), cells[1].clone())
        })
        .collect();
    check_numbers(&rows, &j);
    assert!(tex.contains(r"Luccioni, Viguier \& Ligozat"), "{tex}");
    if Command::new("pdflatex").arg("--version").output().is_ok() {
        let doc =
            format!("\\documentclass{{article}}\n\\begin{{document}}\n{tex}\\end{{document}}\n");
        std::fs::write(dir.path().join("t.tex"), doc).unwrap();
        let o = Command::new("pdflatex")
            .args(["-interaction=nonstopmode", "-halt-on-error", "t.tex"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    } else {
        need("pdflatex (checked by structure instead)", true);
    }
}

#[test]
fn the_structure_check_catches_what_latex_rejects() {
    for bad in ["50% of it", "a_b", "{open", "\\begin{table}\n", "$x", "#1"] {
        assert!(
            std::panic::catch_unwind(|| check_latex(bad)).is_err(),
            "{bad:?} passed"
        );
    }
    check_latex(r"50\% a\_b \{ $x_1$ \begin{table}\end{table}");
}

fn python() -> String {
    std::env::var("CARBONTOP_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn model_card_block_parses_as_yaml_with_hugging_faces_fields() {
    let have = Command::new(python())
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !need("python3 with PyYAML", have) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = recording(dir.path());
    let card = out(&["--model-card", "--training-type", "fine-tuning"], &file);
    assert!(
        card.starts_with("---\n") && card.ends_with("---\n"),
        "{card}"
    );
    let script = "import sys, yaml, json\n\
                  docs = [d for d in yaml.safe_load_all(sys.stdin) if d]\n\
                  assert len(docs) == 1, docs\n\
                  print(json.dumps(docs[0]))";
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), card.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{card}");
    let y: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &y["co2_eq_emissions"];
    let j = json(&file);
    close(
        c["emissions"].as_f64().unwrap(),
        j["co2e_g"].as_f64().unwrap(),
        "emissions (g)",
    );
    assert_eq!(
        c["source"],
        format!("carbontop {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(c["training_type"], "fine-tuning");
    assert_eq!(c["geographical_location"], "France");
    assert!(
        c["hardware_used"]
            .as_str()
            .unwrap()
            .starts_with("4 x NVIDIA A40"),
        "{c}"
    );
}

#[test]
fn model_card_defaults_to_pre_training_and_takes_one_recording() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let card = out(&["--model-card"], &f);
    assert!(card.contains("training_type: \"pre-training\""), "{card}");
    let o = bin()
        .args(["report", "--model-card"])
        .args([&f, &f])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let o = bin()
        .args(["report", "--training-type", "fine-tuning"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--model-card"),
        "{o:?}"
    );
    // --json is --format json.
    assert_eq!(out(&["--json"], &f), out(&["--format", "json"], &f));
}
