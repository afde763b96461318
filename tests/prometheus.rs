//! The Grafana dashboard under a real Prometheus (Debian's `prometheus` package, 2.42): two
//! agents (`serve --simulate-gpus 2`, so GPU, cap and progress series exist) scraped every
//! second; every expression of `examples/prometheus/grafana-dashboard.json` evaluated through
//! the HTTP API must return data, before and after one agent stops and after it restarts, and
//! the job's totals must not fall. `promtool` checks the example config and a real `/metrics`
//! answer. Real processes, so real time: every wait polls for a condition within generous
//! bounds; nothing is decided by how long anything took.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

/// How long any one condition may take to come true (Prometheus starting, scrapes arriving).
const BOUND: Duration = Duration::from_secs(60);

/// Grafana's variables, as the dashboard would have them here: its range covers the whole
/// test, `$__rate_interval` is Grafana's 4 × the 1 s scrape interval and a little, every node,
/// the scrape job the config below names (a job that is not the agents' returns nothing).
const VARIABLES: [(&str, &str); 4] = [
    ("$__rate_interval", "5s"),
    ("$__range", "1h"),
    ("$job", "carbontop"),
    ("$node", ".*"),
];

/// The stat panels that hold the job's totals: they must never fall.
const TOTALS: [&str; 3] = ["Job energy", "Job carbon", "Embodied"];

/// `serve --simulate-gpus 2` as node `node` on `listen`: the agent and its address.
fn sim_agent(node: &str, listen: &str) -> (Agent, String) {
    let c = bin()
        .args([
            "serve",
            "--quiet",
            "--interval",
            "200ms",
            "--simulate-gpus",
            "2",
        ])
        .args(["--node", node, "--listen", listen])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (agent, addr, _) = adopt_agent(c);
    (agent, addr)
}

/// `promtool ARGS` with `input` on its stdin: must succeed, saying no problem.
fn promtool(args: &[&str], input: &str) {
    let mut c = Command::new(PROMTOOL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(o.status.success(), "promtool {args:?}: {said}");
    if args[1] == "metrics" {
        assert!(said.trim().is_empty(), "promtool check metrics: {said}");
    }
}

/// A Prometheus server's HTTP API.
struct Prom {
    url: String,
    client: reqwest::blocking::Client,
}

impl Prom {
    /// `query` evaluated now: each series' labels and value.
    fn query(&self, query: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let body = self
            .client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .unwrap()
            .text()
            .unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{query}: {v}");
        assert_eq!(v["data"]["resultType"], "vector", "{query}: {v}");
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone()).unwrap();
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (labels, value)
            })
            .collect()
    }

    /// The one value of `query` now, if it has exactly one.
    fn one(&self, query: &str) -> Option<f64> {
        match self.query(query).as_slice() {
            [(_, v)] => Some(*v),
            _ => None,
        }
    }

    /// Polls until `done` holds; fails naming `what` past [`BOUND`].
    fn wait(&self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let end = Instant::now() + BOUND;
        while !done(self) {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One query of the dashboard: its panel's title and type, and its expression with Grafana's
/// variables put in.
struct Target {
    panel: String,
    stat: bool,
    expr: String,
}

fn dashboard() -> (Value, Vec<Target>) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/prometheus/grafana-dashboard.json");
    let d: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let mut expr = t["expr"].as_str().unwrap().to_owned();
            for (k, v) in VARIABLES {
                expr = expr.replace(k, v);
            }
            assert!(
                !expr.contains('$'),
                "a variable this test does not know: {expr}"
            );
            out.push(Target {
                panel: p["title"].as_str().unwrap().to_owned(),
                stat: p["type"] == "stat",
                expr,
            });
        }
    }
    (d, out)
}

/// Every target returns data (polled: a rate needs two scrapes); the job's totals, by panel.
fn every_expression_has_data(prom: &Prom, targets: &[Target], when: &str) -> Vec<(String, f64)> {
    let end = Instant::now() + BOUND;
    loop {
        let empty: Vec<_> = targets
            .iter()
            .filter(|t| prom.query(&t.expr).is_empty())
            .map(|t| format!("{}: {}", t.panel, t.expr))
            .collect();
        if empty.is_empty() {
            break;
        }
        assert!(
            Instant::now() < end,
            "no data {when} from\n{}",
            empty.join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let totals: Vec<_> = targets
        .iter()
        .filter(|t| t.stat && TOTALS.iter().any(|k| t.panel.starts_with(k)))
        .map(|t| (t.panel.clone(), prom.one(&t.expr).unwrap()))
        .collect();
    assert_eq!(totals.len(), TOTALS.len(), "{totals:?}");
    totals
}

fn never_fell(before: &[(String, f64)], after: &[(String, f64)], when: &str) {
    for ((panel, b), (_, a)) in before.iter().zip(after) {
        assert!(a >= b, "{panel} fell {when}: {b} → {a}");
    }
}

/// The series of the "GPU power and cap" panel: a power and a cap for each GPU (`… or caps`
/// dropped the caps, which have the same labels).
fn power_and_caps_plotted(prom: &Prom, targets: &[Target]) {
    let series: usize = targets
        .iter()
        .filter(|t| t.panel.starts_with("GPU power and cap"))
        .map(|t| prom.query(&t.expr).len())
        .sum();
    let gpus = prom.query("carbontop_gpu_power_cap_watts").len();
    assert!(gpus >= 2, "{gpus} GPUs");
    assert_eq!(
        series,
        2 * gpus,
        "GPU power and cap: not a power and a cap per GPU"
    );
}

#[test]
fn every_dashboard_expression_has_data_and_totals_hold_when_an_agent_stops_or_restarts() {
    let have = Path::new(PROMETHEUS).exists() && Path::new(PROMTOOL).exists();
    if !need(
        "Prometheus and promtool (Debian's prometheus package)",
        have,
    ) {
        return;
    }
    let (d, targets) = dashboard();
    // Every panel says its unit (grams, g/kWh, W, kWh, ratio, …).
    for p in d["panels"].as_array().unwrap() {
        let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
        assert!(
            !matches!(unit, "" | "none" | "short"),
            "panel {}: no unit",
            p["title"]
        );
    }
    let (_a1, p1) = sim_agent("n1", "127.0.0.1:0");
    let (a2, p2) = sim_agent("n2", "127.0.0.1:0");
    // Real answers pass promtool's lint (names, units, _total on counters, help): a live
    // agent's, and a replay's with every progress series.
    let (status, body) = get(&p1, "/metrics");
    assert_eq!(status, 200);
    promtool(&["check", "metrics"], &body);
    {
        let (_replay, at) = agent("traces/a40x4-cifar100.csv", "r1");
        let done = metrics_when_done(&at, 348);
        assert!(done.samples.iter().any(|s| s.metric == "carbontop_loss"));
        promtool(&["check", "metrics"], &get(&at, "/metrics").1);
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/prometheus/prometheus.yml");
    promtool(&["check", "config", example.to_str().unwrap()], "");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: carbontop\n    static_configs:\n      - targets: [\"{p1}\", \"{p2}\"]\n"
        ),
    )
    .unwrap();
    promtool(&["check", "config", config.to_str().unwrap()], "");
    let web = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _server = Agent::adopt(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    carbontop::source::grid::http::tls_ready();
    let prom = Prom {
        url: format!("http://{web}"),
        client: reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    };
    prom.wait("Prometheus to be ready", |p| {
        p.client
            .get(format!("{}/-/ready", p.url))
            .send()
            .is_ok_and(|r| r.status().is_success())
    });
    prom.wait("both agents to be scraped a few times", |p| {
        p.query("count_over_time(carbontop_samples_total[1h]) >= 3")
            .len()
            == 2
    });
    let before = every_expression_has_data(&prom, &targets, "with both agents");
    power_and_caps_plotted(&prom, &targets);

    // One agent stops: Prometheus marks its series stale at the failed scrape.
    drop(a2);
    let down = format!("up{{instance=\"{p2}\"}} == 0");
    prom.wait("the stopped agent's failed scrape", |p| {
        p.one(&down).is_some()
    });
    let stopped = every_expression_has_data(&prom, &targets, "after one agent stopped");
    never_fell(&before, &stopped, "when an agent stopped");

    // It comes back on its address: a new process, its counters from zero.
    let (_a2, _) = sim_agent("n2", &p2);
    let up = format!("up{{instance=\"{p2}\"}} == 1");
    prom.wait("the restarted agent's scrape", |p| p.one(&up).is_some());
    prom.wait("the restarted agent's series", |p| {
        p.query("count by (agent_start) (carbontop_samples_total{node=\"n2\"})")
            .len()
            == 1
            && p.query(
                "count by (agent_start) (max_over_time(carbontop_samples_total{node=\"n2\"}[1h]))",
            )
            .len()
                == 2
    });
    let restarted = every_expression_has_data(&prom, &targets, "after the agent restarted");
    never_fell(&stopped, &restarted, "when an agent restarted");
    power_and_caps_plotted(&prom, &targets);
}
