//! The deployment files: Kubernetes manifests (kubernetes-validate --strict, and the PodMonitor
//! against its CRD's schema), the systemd units (systemd-analyze verify, warnings included), and
//! the claim both make about privileges: uid 0 with every capability dropped reads RAPL's
//! root-only counters (the DaemonSet), and so does an unprivileged user given group read access
//! (the serve unit's ExecStartPre); without either, CPU power is the estimate, and says why.
//! The image (Containerfile) is built by `.ci/run` with `scripts/build-image.sh --check`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bin, fixture, is_root, need};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The Python with kubernetes-validate (and its jsonschema) and PyYAML: `CARBONTOP_PYTHON`
/// (`.ci/run`'s venv), else `python3`.
fn validate_python() -> Option<String> {
    let py = std::env::var("CARBONTOP_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import kubernetes_validate, jsonschema, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

const MANIFESTS: [&str; 3] = ["namespace.yaml", "daemonset.yaml", "service.yaml"];

fn kubernetes_validate(py: &str, files: &[PathBuf]) -> Output {
    Command::new(py)
        .args(["-m", "kubernetes_validate", "--strict"])
        .args(files)
        .output()
        .unwrap()
}

#[test]
fn kubernetes_manifests_pass_strict_validation() {
    let Some(py) = validate_python() else {
        need(
            "kubernetes-validate, jsonschema and PyYAML (pip install kubernetes-validate; \
             CARBONTOP_PYTHON names its python)",
            false,
        );
        return;
    };
    let files: Vec<PathBuf> = MANIFESTS
        .iter()
        .map(|f| repo("deploy/kubernetes").join(f))
        .collect();
    let o = kubernetes_validate(&py, &files);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    // Every manifest checked against a schema: none skipped with a warning.
    assert!(!out.contains("WARN"), "{out}");
    for f in MANIFESTS {
        assert!(
            out.contains(&format!("{f} passed")),
            "{f} not checked: {out}"
        );
    }

    // The check can fail: a field the DaemonSet's schema does not have.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("daemonset.yaml");
    let ds = std::fs::read_to_string(&files[1]).unwrap();
    let ds = ds.replacen(
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: true\n            readOnlyEverything: true",
        1,
    );
    std::fs::write(&bad, ds).unwrap();
    let o = kubernetes_validate(&py, &[bad]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("readOnlyEverything"), "{}", text(&o));
}

#[test]
fn podmonitor_matches_its_crd_schema() {
    let Some(py) = validate_python() else {
        need(
            "kubernetes-validate's jsonschema and PyYAML (CARBONTOP_PYTHON)",
            false,
        );
        return;
    };
    let check = |manifest: &Path| {
        Command::new(&py)
            .arg(repo("scripts/check_podmonitor.py"))
            .arg(manifest)
            .output()
            .unwrap()
    };
    let good = repo("deploy/kubernetes/podmonitor.yaml");
    let o = check(&good);
    assert!(o.status.success(), "{}", text(&o));

    // A duration Prometheus cannot parse, and a misspelt relabelling field, are refused.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("podmonitor.yaml");
    let pm = std::fs::read_to_string(&good)
        .unwrap()
        .replacen("interval: 15s", "interval: 15 seconds", 1)
        .replacen("targetLabel:", "target_label:", 1);
    std::fs::write(&bad, pm).unwrap();
    let o = check(&bad);
    assert!(!o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("interval"), "{out}");
    assert!(out.contains("target_label"), "{out}");
}

/// The DaemonSet's container args, in order (the list under `args:`).
fn daemonset_args() -> Vec<String> {
    let ds = std::fs::read_to_string(repo("deploy/kubernetes/daemonset.yaml")).unwrap();
    let mut lines = ds.lines().skip_while(|l| l.trim() != "args:");
    let head = lines.next().expect("daemonset.yaml has an args: list");
    let indent = head.len() - head.trim_start().len();
    lines
        .take_while(|l| {
            let t = l.trim_start();
            t.starts_with("- ") && l.len() - t.len() > indent
        })
        .map(|l| l.trim_start()[2..].trim().to_string())
        .collect()
}

/// A copy of the two-package RAPL fixture whose counters are mode 0400 (as Linux ≥ 5.10 makes
/// them), owned by root, and, where `group` is given, readable by that group (mode 0440).
fn root_only_rapl(dir: &Path, group: Option<u32>) -> PathBuf {
    let root = dir.join("sys");
    let status = Command::new("cp")
        .arg("-r")
        .arg(fixture("sysfs/rapl-two-packages"))
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let mode = if group.is_some() { "0440" } else { "0400" };
    let mut find = Command::new("find");
    find.arg(&root)
        .args(["-name", "energy_uj", "-exec", "chmod", mode, "{}", "+"]);
    assert!(find.status().unwrap().success());
    if let Some(g) = group {
        let mut find = Command::new("find");
        find.arg(&root).args([
            "-name",
            "energy_uj",
            "-exec",
            "chgrp",
            &g.to_string(),
            "{}",
            "+",
        ]);
        assert!(find.status().unwrap().success());
    }
    // Every directory traversable, as sysfs's are.
    assert!(
        Command::new("chmod")
            .args(["-R", "a+X"])
            .arg(dir)
            .status()
            .unwrap()
            .success()
    );
    root
}

/// `carbontop serve` with the DaemonSet's own args (the downward API's values filled in, the
/// host's /sys replaced by `sysfs`, a free port, 1 s ticks for 2 s), run by `setpriv` as
/// `who` with every capability dropped and no way to gain one.
fn serve_as(who: &[&str], sysfs: &Path, workdir: &Path) -> String {
    let mut args: Vec<String> = Vec::new();
    for a in daemonset_args() {
        let a = a
            .replace("$(NODE_NAME)", "node-a")
            .replace("$(POD_IP)", "127.0.0.1");
        if a.starts_with("--listen=") {
            args.push("--listen=127.0.0.1:0".into());
        } else if a.starts_with("--interval=") {
            args.push("--interval=1s".into());
        } else if let Some(v) = a.strip_prefix("--sysfs-root=") {
            assert_eq!(
                v, "/host/sys",
                "the DaemonSet mounts the host's /sys at /host/sys"
            );
            args.push(format!("--sysfs-root={}", sysfs.display()));
        } else {
            args.push(a);
        }
    }
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    args.push("--duration=2s".into());
    let carbontop = bin();
    let mut c = Command::new("setpriv");
    c.args(who)
        .args([
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ])
        .arg(carbontop.get_program())
        .args(&args)
        .current_dir(workdir);
    for (k, v) in carbontop.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let o = c.output().unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{args:?}: {out}");
    out
}

fn cpu_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.trim_start().starts_with("CPU "))
        .unwrap_or_else(|| panic!("no CPU source line in the summary: {out}"))
}

#[test]
fn uid_0_without_capabilities_reads_root_only_rapl_and_others_fall_back() {
    let have = is_root()
        && Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !need("root and setpriv (util-linux)", have) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // tempfile makes it 0700: the unprivileged runs must reach the fixtures below it.
    let _ = Command::new("chmod").arg("0755").arg(dir.path()).status();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let _ = Command::new("chmod").arg("0777").arg(&work).status();

    // The DaemonSet: uid 0, no capability at all, as the manifest says.
    let ds = std::fs::read_to_string(repo("deploy/kubernetes/daemonset.yaml")).unwrap();
    for want in [
        "runAsUser: 0",
        "privileged: false",
        "allowPrivilegeEscalation: false",
        "readOnlyRootFilesystem: true",
        "drop:\n                - ALL",
    ] {
        assert!(ds.contains(want), "daemonset.yaml lacks {want:?}");
    }
    assert!(!ds.contains("add:"), "daemonset.yaml adds a capability");
    let only_root = dir.path().join("a");
    std::fs::create_dir(&only_root).unwrap();
    let sys = root_only_rapl(&only_root, None);
    let root = ["--reuid=0", "--regid=0", "--clear-groups"];
    let out = serve_as(&root, &sys, &work);
    assert!(cpu_line(&out).contains("RAPL (measured)"), "{out}");

    // Anyone else: the estimate, and the summary says why.
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let out = serve_as(&nobody, &sys, &work);
    let cpu = cpu_line(&out);
    assert!(cpu.contains("estimate"), "{out}");
    assert!(cpu.contains("readable by root only"), "{out}");

    // The serve unit: an unprivileged user in the group given read access.
    let grouped = dir.path().join("b");
    std::fs::create_dir(&grouped).unwrap();
    let sys = root_only_rapl(&grouped, Some(4242));
    let member = ["--reuid=65534", "--regid=65534", "--groups=4242"];
    let out = serve_as(&member, &sys, &work);
    assert!(cpu_line(&out).contains("RAPL (measured)"), "{out}");
}

/// `systemd-analyze verify` of a unit whose ExecStart names this build's binary (verify
/// checks the executable exists). Any output at all is a failure: verify exits 0 on unknown
/// keys and unparsable values, which it only prints.
fn verify_unit(unit: &Path, dir: &Path) -> Output {
    let text = std::fs::read_to_string(unit)
        .unwrap()
        .replace("/usr/local/bin/carbontop", env!("CARGO_BIN_EXE_carbontop"));
    let copy = dir.join(unit.file_name().unwrap());
    std::fs::write(&copy, text).unwrap();
    Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap()
}

#[test]
fn systemd_units_verify_cleanly() {
    let have = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !need("systemd-analyze (Debian's systemd package)", have) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in [
        "dist/carbontop-serve.service",
        "dist/carbontop-capd.service",
    ] {
        let o = verify_unit(&repo(unit), dir.path());
        let out = text(&o);
        assert!(o.status.success() && out.trim().is_empty(), "{unit}: {out}");
    }

    // The check can fail: a misspelt hardening key is only a warning to verify.
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    let unit = bad.join("carbontop-serve.service");
    let text_ = std::fs::read_to_string(repo("dist/carbontop-serve.service"))
        .unwrap()
        .replacen("ProtectSystem=strict", "ProtectSystem=strickt", 1);
    std::fs::write(&unit, text_).unwrap();
    let o = verify_unit(&unit, dir.path());
    assert!(text(&o).contains("strickt"), "{}", text(&o));
}
