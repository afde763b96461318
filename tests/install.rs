//! What a cluster and an installer need of the binary: the SLURM job a run was part of, in
//! run.json and emissions.csv (as `sacct` names it, so the two join), and the completion
//! scripts and manual page made from the same definitions as `--help`.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use std::process::Command;

/// A run as SLURM starts a job step: task 21 of array job 4300, step 0, on node7.
fn slurm_run(dir: &std::path::Path, extra: &[&str]) {
    let o = quick("run", dir)
        .args(["--no-gpu", "--zone", "FR"])
        .args(extra)
        .args(["--", "sleep", "0.3"])
        .env("SLURM_JOB_ID", "4321")
        .env("SLURM_ARRAY_JOB_ID", "4300")
        .env("SLURM_ARRAY_TASK_ID", "21")
        .env("SLURM_STEP_ID", "0")
        .env("SLURMD_NODENAME", "node7")
        .env("SLURM_JOB_NAME", "resnet")
        .env("SLURM_JOB_ACCOUNT", "climate")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

fn emissions_cells(path: &std::path::Path, names: &[&str]) -> Vec<String> {
    let (h, rows) = read_csv(path);
    names
        .iter()
        .map(|n| rows.last().unwrap()[col(&h, n)].clone())
        .collect()
}

#[test]
fn a_slurm_job_is_named_in_run_json_and_emissions_csv_and_report_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    slurm_run(&out, &[]);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["slurm"]["job_id"], "4321");
    assert_eq!(run["slurm"]["node"], "node7");
    assert_eq!(run["slurm"]["account"], "climate");
    assert_eq!(run["project_name"], "resnet");
    let cells = ["project_name", "run_id", "experiment_id"];
    let from_run = emissions_cells(&out.join("emissions.csv"), &cells);
    assert_eq!(from_run[0], "resnet");
    assert_eq!(from_run[2], "4300_21.0");
    // `report` of the same recording writes the same row's names; --project wins.
    let again = dir.path().join("again.csv");
    let o = bin()
        .arg("report")
        .arg(out.join("samples.csv"))
        .arg("--emissions")
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(emissions_cells(&again, &cells), from_run);
    let other = dir.path().join("other.csv");
    bin()
        .arg("report")
        .arg(out.join("samples.csv"))
        .args(["--project", "paper"])
        .arg("--emissions")
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(emissions_cells(&other, &cells)[0], "paper");
}

#[test]
fn outside_slurm_experiment_id_is_empty_and_project_is_carbontop_or_given() {
    let dir = tempfile::tempdir().unwrap();
    let o = quick("run", &dir.path().join("a"))
        .args(["--no-gpu", "--project", "mine", "--", "true"])
        .env_remove("SLURM_JOB_ID")
        .env_remove("SLURM_JOBID")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cells = emissions_cells(
        &dir.path().join("a/emissions.csv"),
        &["project_name", "experiment_id"],
    );
    assert_eq!(cells, ["mine", ""]);
}

#[test]
fn completion_scripts_and_the_manual_page_come_from_the_command_line_definitions() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let o = bin().args(["completions", shell]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let text = String::from_utf8(o.stdout).unwrap();
        for sub in ["run", "reprice", "capd", "tracking-mode"] {
            assert!(text.contains(sub), "{shell} script lacks {sub}");
        }
        if shell == "bash" {
            let path = dir.path().join("carbontop.bash");
            std::fs::write(&path, &text).unwrap();
            let ok = Command::new("bash").arg("-n").arg(&path).status().unwrap();
            assert!(ok.success(), "bash -n refused the script");
        }
    }
    let o = bin().arg("man").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = String::from_utf8(o.stdout).unwrap();
    assert!(
        page.contains(".TH carbontop 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    for s in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS", "reprice"] {
        assert!(page.contains(s), "manual page lacks {s}");
    }
    assert_one_line_error(
        &bin().args(["completions", "tcsh"]).output().unwrap(),
        "tcsh",
    );
}
