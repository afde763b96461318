//! Tokens and passwords never leave for anywhere but the provider's request headers: every
//! output of runs that had them set — stdout, stderr, samples.csv, emissions.csv, the PNG and
//! JSON report, /metrics, `--help`, config errors, a panic — is searched for them.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::fake_api::{FakeApi, Reply};
use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

const EMAPS: &str = "emaps-SECRET-7f3a";
const CFG_TOKEN: &str = "config-SECRET-c0ffee";
const WT_PASSWORD: &str = "wattpw-SECRET-99";
const WT_JWT: &str = "jwt-SECRET-eyJhbGciOi";
const SECRETS: [&str; 4] = [EMAPS, CFG_TOKEN, WT_PASSWORD, WT_JWT];

/// Fails if any secret (or its base64 in an Authorization header) is in `text`.
fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} holds {s}:\n{text}");
    }
}

fn assert_output_clean(what: &str, o: &Output) {
    assert_clean(
        &format!("{what} stdout"),
        &String::from_utf8_lossy(&o.stdout),
    );
    assert_clean(
        &format!("{what} stderr"),
        &String::from_utf8_lossy(&o.stderr),
    );
}

/// Every file under `dir`, bytes searched (PNGs included).
fn assert_dir_clean(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            assert_dir_clean(&p);
        } else {
            let bytes = std::fs::read(&p).unwrap();
            assert_clean(&p.display().to_string(), &String::from_utf8_lossy(&bytes));
        }
    }
}

/// An API that turns every token away (401), so the error paths run with the tokens set.
fn refusing_api() -> FakeApi {
    let api = FakeApi::start();
    for p in [
        "/carbon-intensity/latest",
        "/carbon-intensity/history",
        "/carbon-intensity/forecast",
        "/v3/forecast",
        "/v3/signal-index",
    ] {
        api.route(p, Reply::status(401));
    }
    api.route("/login", Reply::json(format!(r#"{{"token":"{WT_JWT}"}}"#)));
    api
}

/// A run against `api` with `--provider PROVIDER…`, into `out`.
fn against(c: &mut std::process::Command, api: &FakeApi, provider: &[&str], out: &Path) {
    grid_run(c, &api.url(), out);
    c.arg("--provider").args(provider);
}

/// `--provider emaps --zone DE --grid-url URL`.
fn emaps_at(api: &FakeApi) -> Vec<String> {
    ["--provider", "emaps", "--zone", "DE", "--grid-url"]
        .map(str::to_owned)
        .into_iter()
        .chain([api.url()])
        .collect()
}

fn with_secrets(c: &mut std::process::Command) -> &mut std::process::Command {
    c.env("ELECTRICITYMAPS_API_KEY", EMAPS)
        .env("WATTTIME_USERNAME", "ann")
        .env("WATTTIME_PASSWORD", WT_PASSWORD)
}

#[test]
fn no_output_of_a_run_with_tokens_set_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    let api = refusing_api();
    // A world-readable config holding a token: used, and warned about.
    let cfg = cfg_dir.path().join("carbontop.toml");
    std::fs::write(&cfg, format!("electricitymaps_api_key = \"{CFG_TOKEN}\"\n")).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = dir.path().join("emaps");
    let mut c = bin();
    against(&mut c, &api, &["emaps", "--zone", "DE"], &out);
    c.arg("--config").arg(&cfg);
    let o = c
        .args(["--", "sh", "-c", "echo training; sleep 1.2"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("readable by everyone: chmod 600"), "{err}");
    // The token was sent (the config's: the environment has none here), and refused.
    assert!(
        api.requests()
            .iter()
            .any(|r| { r.headers.get("auth-token").map(String::as_str) == Some(CFG_TOKEN) })
    );
    assert!(err.contains("401"), "{err}");
    assert_output_clean("run (emaps)", &o);
    assert_dir_clean(&out);

    // WattTime: the password and the session token it gets back, through a refused data call.
    let out = dir.path().join("watttime");
    let mut c = bin();
    against(
        with_secrets(&mut c),
        &api,
        &["watttime", "--zone", "CAISO_NORTH"],
        &out,
    );
    let o = c.args(["--", "sleep", "1.2"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        api.requests()
            .iter()
            .any(|r| r.headers.get("authorization").map(String::as_str)
                == Some(&format!("Bearer {WT_JWT}")))
    );
    assert_output_clean("run (watttime)", &o);
    assert_dir_clean(&out);

    // The reports made from those recordings.
    let png = dir.path().join("report.png");
    let o = bin()
        .arg("report")
        .arg(out.join("samples.csv"))
        .arg("--png")
        .arg(&png)
        .args(["--emissions"])
        .arg(dir.path().join("em.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_output_clean("report", &o);
    assert_dir_clean(dir.path());
}

#[test]
fn metrics_help_config_errors_and_panics_hold_no_token() {
    let api = refusing_api();
    // /metrics of an agent with a token set.
    let mut c = bin();
    with_secrets(&mut c)
        .args([
            "serve",
            "--quiet",
            "--interval",
            "100ms",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(emaps_at(&api))
        .stderr(Stdio::piped());
    let (agent, addr, err) = adopt_agent(c.spawn().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(600));
    for path in ["/metrics", "/", "/debug"] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        assert_clean(&format!("GET {path}"), &body);
    }
    drop(agent);
    assert_clean("serve stderr", &err.recv().unwrap());

    // --help of every command, with the secrets in the environment.
    for cmd in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["record", "--help"],
        vec!["watch", "--help"],
        vec!["serve", "--help"],
        vec!["replay", "--help"],
        vec!["report", "--help"],
        vec!["estimate", "--help"],
    ] {
        let mut c = bin();
        let o = with_secrets(&mut c).args(&cmd).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{cmd:?}");
        assert_output_clean(&format!("{cmd:?}"), &o);
    }

    // A config error in a file holding a token: one line, naming the file and key, not the token.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!("electricitymaps_api_key = \"{CFG_TOKEN}\"\npue = \"{CFG_TOKEN}\"\n"),
    )
    .unwrap();
    let o = bin()
        .args(["record", "--headless", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_one_line_error(&o, "bad.toml");
    assert_output_clean("config error", &o);

    // A panic mid-run with every secret set.
    let mut c = bin();
    let o = with_secrets(&mut c)
        .args([
            "record",
            "--headless",
            "--interval",
            "100ms",
            "--duration",
            "5s",
        ])
        .args(emaps_at(&api))
        .env("CARBONTOP_TEST_PANIC_AFTER", "0.3")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(101), "{}", stderr(&o));
    assert!(stderr(&o).contains("a deliberate panic"));
    assert_output_clean("panic", &o);
}
