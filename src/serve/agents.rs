//! `watch --agent HOST:PORT`: scrapes carbontop agents' `/metrics` and sums them into the job's
//! totals. An agent that does not answer keeps its last values, marked stale, and the totals
//! say how many nodes are in them.

use super::ServeError;
use crate::engine::job::NodeFigures;
use std::time::{Duration, Instant};

/// One node as its agent last reported it: who it is, and its figures (summed into the job by
/// `engine::job`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    pub agent: String,
    pub node: String,
    pub zone: String,
    pub intensity_source: String,
    pub fig: NodeFigures,
    /// When the agent last answered, and the fault since, if any.
    pub answered: Option<Instant>,
    pub fault: Option<String>,
}

/// The figures of the nodes that ever answered (the stale ones with their last values): what
/// the job's totals are the sum of.
pub fn counted(nodes: &[Node]) -> Vec<&NodeFigures> {
    nodes
        .iter()
        .filter(|n| n.answered.is_some())
        .map(|n| &n.fig)
        .collect()
}

/// Above any figure an agent can report, in its unit: a 10 MW machine running 30 years is
/// 3e17 J, and 100 Gbit/s for 30 years moves 1.2e19 bytes. Sums of many such stay finite.
pub const MAX_FIGURE: f64 = 1e20;

/// Parses one agent's exposition into a Node.
pub fn parse(agent: &str, text: &str) -> Result<Node, ServeError> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).map_err(|e| ServeError::NotExposition {
        agent: agent.to_owned(),
        reason: e.to_string(),
    })?;
    let mut n = Node {
        agent: agent.to_owned(),
        ..Default::default()
    };
    let mut seen = false;
    // What older agents say under the deprecated names: taken where the new ones are absent.
    let (mut old_progress, mut old_embodied) = (std::collections::BTreeMap::new(), None);
    for s in &scrape.samples {
        let v = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => continue,
        };
        let label = |k: &str| s.labels.get(k).unwrap_or_default().to_owned();
        // The exposition format allows NaN and ±Inf; a carbontop agent never sends them, and
        // one in a total would poison the job's sum: refuse the scrape, keep the last values.
        let kept = s.metric.starts_with("carbontop_");
        if kept && !v.is_finite() {
            return Err(ServeError::NotFinite {
                agent: agent.to_owned(),
                metric: s.metric.clone(),
                value: v,
            });
        }
        // Finite is not enough: two agents at 1e308 J sum to infinity. No carbontop figure
        // comes near MAX_FIGURE (issue 20).
        if kept && v.abs() > MAX_FIGURE {
            return Err(ServeError::TooLarge {
                agent: agent.to_owned(),
                metric: s.metric.clone(),
                value: v,
            });
        }
        if kept && v < 0.0 && !MAY_BE_NEGATIVE.contains(&s.metric.as_str()) {
            return Err(ServeError::Negative {
                agent: agent.to_owned(),
                metric: s.metric.clone(),
                value: v,
            });
        }
        if n.node.is_empty() {
            n.node = label("node");
        }
        let f = &mut n.fig;
        match s.metric.as_str() {
            "carbontop_facility_power_watts" => f.facility_w = v,
            "carbontop_power_watts" => {
                f.power_w.insert(label("component"), v);
            }
            "carbontop_facility_energy_joules_total" => f.facility_j = v,
            "carbontop_energy_joules_total" => {
                f.it_j.insert(label("component"), v);
            }
            "carbontop_co2e_grams_total" => {
                f.co2e_g = v;
                n.zone = label("zone");
            }
            "carbontop_embodied_co2e_grams_total" => f.embodied_g = Some(v),
            "carbontop_embodied_co2e_grams" => old_embodied = Some(v),
            // The interfaces' counters (agents before `scope` have only those).
            "carbontop_network_bytes_total"
                if matches!(label("scope").as_str(), "" | "machine") =>
            {
                match label("direction").as_str() {
                    "rx" => f.net_rx_bytes = v as u64,
                    "tx" => f.net_tx_bytes = v as u64,
                    _ => {}
                }
            }
            "carbontop_comms_energy_joules_total" => {
                f.comms_j.insert(label("scope"), v);
            }
            "carbontop_comms_co2e_grams_total" => {
                f.comms_co2e_g.insert(label("scope"), v);
            }
            "carbontop_grid_intensity_grams_per_kwh" => {
                f.intensity = Some(v);
                n.intensity_source = label("source");
            }
            "carbontop_progress" => {
                old_progress.insert(label("metric"), v);
            }
            "carbontop_samples_total" => seen = true,
            m => {
                if let Some((key, scale)) = progress_key(m) {
                    f.progress.insert(key.to_owned(), v * scale);
                }
            }
        }
    }
    if !seen {
        return Err(ServeError::NotAnAgent(agent.to_owned()));
    }
    for (k, v) in old_progress {
        n.fig.progress.entry(k).or_insert(v);
    }
    n.fig.embodied_g = n.fig.embodied_g.or(old_embodied);
    Ok(n)
}

/// Series whose value may be below zero: the loss (a log-likelihood can be), the accuracy
/// gained (it may fall), and the deprecated `carbontop_progress` that held both.
const MAY_BE_NEGATIVE: [&str; 3] = [
    "carbontop_progress",
    "carbontop_loss",
    "carbontop_accuracy_gained_ratio",
];

/// The key of `NodeFigures::progress` a progress series fills (the deprecated
/// `carbontop_progress{metric}`'s), and the factor to its unit (ratios to percent and points).
fn progress_key(metric: &str) -> Option<(&'static str, f64)> {
    Some(match metric {
        "carbontop_training_steps_total" => ("step", 1.0),
        "carbontop_training_epoch" => ("epoch", 1.0),
        "carbontop_accuracy_ratio" => ("accuracy_percent", 100.0),
        "carbontop_accuracy_gained_ratio" => ("accuracy_points_gained", 100.0),
        "carbontop_loss" => ("loss", 1.0),
        _ => return None,
    })
}

/// The largest `/metrics` answer read from an agent: a 16-GPU agent's exposition is about
/// 20 kB, so 1 MiB is 50 times that; a larger answer is refused unread (issue 20: a 50 MB body
/// once took the aggregator to 686 MB).
pub const MAX_SCRAPE_BYTES: u64 = 1 << 20;

/// How long one scrape may take, answer included.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// `--agent`'s URL: `HOST:PORT`, or an `http://` or `https://` URL; its path `/metrics`
/// unless it names another.
pub fn agent_url(agent: &str) -> Result<reqwest::Url, ServeError> {
    let bad = |reason: String| ServeError::BadAgent {
        agent: agent.to_owned(),
        reason,
    };
    let a = agent.trim();
    let text = if a.contains("://") {
        a.to_owned()
    } else {
        format!("http://{a}")
    };
    let mut url = reqwest::Url::parse(&text).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "{}:// is not served by agents: give HOST:PORT or an http:// URL",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host: give HOST:PORT".into()));
    }
    if url.port_or_known_default().is_none() {
        return Err(bad("no port: give HOST:PORT".into()));
    }
    if url.path() == "/" {
        url.set_path("/metrics");
    }
    Ok(url)
}

/// The agents and what they last said.
pub struct Agents {
    client: reqwest::blocking::Client,
    urls: Vec<reqwest::Url>,
    pub nodes: Vec<Node>,
}

impl Agents {
    /// An agent that cannot be a URL is refused here, before any scrape.
    pub fn new(addrs: &[String]) -> Result<Self, ServeError> {
        let urls = addrs
            .iter()
            .map(|a| agent_url(a))
            .collect::<Result<Vec<_>, _>>()?;
        crate::source::grid::http::tls_ready();
        let client = reqwest::blocking::Client::builder()
            .timeout(SCRAPE_TIMEOUT)
            .connect_timeout(SCRAPE_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| ServeError::Client(crate::source::grid::http::chain(&e)))?;
        let nodes = addrs
            .iter()
            .map(|a| Node {
                agent: a.clone(),
                node: a.clone(),
                ..Default::default()
            })
            .collect();
        Ok(Self {
            client,
            urls,
            nodes,
        })
    }

    /// Asks every agent once; an agent that fails keeps its last figures, with the fault.
    pub fn scrape(&mut self) {
        for (n, url) in self.nodes.iter_mut().zip(&self.urls) {
            let got = fetch(&self.client, url)
                .map_err(|reason| ServeError::Unreachable {
                    agent: n.agent.clone(),
                    reason,
                })
                .and_then(|t| parse(&n.agent, &t));
            match got {
                Ok(mut fresh) => {
                    fresh.answered = Some(Instant::now());
                    *n = fresh;
                }
                Err(e) => n.fault = Some(e.to_string()),
            }
        }
    }
}

/// One agent's answer, at most [`MAX_SCRAPE_BYTES`] of it; why not, in one line without the
/// URL (reqwest's own texts, "builder error" and the like, say neither what nor where).
fn fetch(client: &reqwest::blocking::Client, url: &reqwest::Url) -> Result<String, String> {
    use std::io::Read;
    let why = |e: &reqwest::Error| {
        if e.is_timeout() {
            format!("no answer within {} s", SCRAPE_TIMEOUT.as_secs())
        } else {
            crate::source::grid::http::chain(e)
        }
    };
    let resp = client.get(url.clone()).send().map_err(|e| why(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let too_big = || {
        format!(
            "answer larger than {} MiB: not read",
            MAX_SCRAPE_BYTES >> 20
        )
    };
    if resp.content_length().is_some_and(|n| n > MAX_SCRAPE_BYTES) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    resp.take(MAX_SCRAPE_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("answer cut off: {e}"))?;
    if body.len() as u64 > MAX_SCRAPE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(body).map_err(|_| "answer is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_addresses_take_host_port_or_an_http_url() {
        // Issue 20: `http://` was refused (as "builder error").
        for (given, url) in [
            ("127.0.0.1:9184", "http://127.0.0.1:9184/metrics"),
            ("http://127.0.0.1:9184", "http://127.0.0.1:9184/metrics"),
            ("http://node-1:9184/", "http://node-1:9184/metrics"),
            ("https://node-1/custom", "https://node-1/custom"),
            ("[::1]:9184", "http://[::1]:9184/metrics"),
        ] {
            assert_eq!(agent_url(given).unwrap().as_str(), url, "{given}");
        }
        for (given, why) in [
            ("ftp://node:21", "ftp:// is not served"),
            ("node name:1", "invalid"),
            ("", "empty host"),
            ("http://:9184", "empty host"),
        ] {
            let e = agent_url(given).unwrap_err();
            assert!(matches!(e, ServeError::BadAgent { .. }), "{e:?}");
            let e = e.to_string();
            assert!(e.starts_with(&format!("--agent {given}: ")), "{e}");
            assert!(e.contains(why), "{given}: {e}");
            assert!(!e.contains("builder error") && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn figures_beyond_any_machine_are_refused() {
        let text = "# TYPE carbontop_facility_energy_joules_total counter\n\
            carbontop_facility_energy_joules_total{node=\"n1\"} 1e308\n\
            # TYPE carbontop_samples_total counter\ncarbontop_samples_total{node=\"n1\"} 3\n";
        let e = parse("a:1", text).unwrap_err();
        assert!(matches!(e, ServeError::TooLarge { .. }), "{e:?}");
    }

    #[test]
    fn parses_an_exposition_and_rejects_others() {
        let text = "# HELP carbontop_co2e_grams_total x\n# TYPE carbontop_co2e_grams_total counter\n\
            carbontop_co2e_grams_total{node=\"n1\",zone=\"FR\"} 12.5\n\
            # TYPE carbontop_facility_energy_joules_total counter\n\
            carbontop_facility_energy_joules_total{node=\"n1\"} 3600000\n\
            # TYPE carbontop_energy_joules_total counter\n\
            carbontop_energy_joules_total{component=\"gpu\",node=\"n1\"} 900\n\
            carbontop_energy_joules_total{component=\"network\",node=\"n1\"} 100\n\
            # TYPE carbontop_progress gauge\ncarbontop_progress{metric=\"step\",node=\"n1\"} 50\n\
            # TYPE carbontop_samples_total counter\ncarbontop_samples_total{node=\"n1\"} 3\n";
        let n = parse("a:1", text).unwrap();
        assert_eq!(
            (n.node.as_str(), n.zone.as_str(), n.fig.co2e_g),
            ("n1", "FR", 12.5)
        );
        assert_eq!(n.fig.facility_j, 3.6e6);
        assert_eq!(n.fig.comms_share(), Some(0.1));
        assert_eq!(n.fig.co2e_per_progress(), Some(("step".into(), 0.25)));
        // NaN, Inf and negative totals would poison the job's sum: the scrape is refused.
        for bad in ["NaN", "+Inf", "-4"] {
            let t = text.replace("} 12.5", &format!("}} {bad}"));
            let e = parse("a:1", &t).unwrap_err().to_string();
            assert!(e.contains("carbontop_co2e_grams_total"), "{e}");
        }
        assert!(
            parse("a:1", "up 1\n")
                .unwrap_err()
                .to_string()
                .contains("not a carbontop agent")
        );
        // The refusals are variants a caller can tell apart; their texts are one line each.
        let e = parse("a:1", &text.replace("} 12.5", "} -4")).unwrap_err();
        assert_eq!(
            e,
            ServeError::Negative {
                agent: "a:1".into(),
                metric: "carbontop_co2e_grams_total".into(),
                value: -4.0
            }
        );
        assert_eq!(
            e.to_string(),
            "agent a:1: carbontop_co2e_grams_total is negative (-4)"
        );
        let e = parse("a:1", &text.replace("} 12.5", "} NaN")).unwrap_err();
        assert!(matches!(e, ServeError::NotFinite { .. }), "{e:?}");
        assert_eq!(
            parse("a:1", "up 1\n").unwrap_err(),
            ServeError::NotAnAgent("a:1".into())
        );
    }

    #[test]
    fn a_nodes_bytes_are_its_interfaces_not_the_commands_part_of_them() {
        let text = "# TYPE carbontop_network_bytes_total counter\n\
            carbontop_network_bytes_total{direction=\"tx\",node=\"n1\",scope=\"machine\"} 1000\n\
            carbontop_network_bytes_total{direction=\"tx\",node=\"n1\",scope=\"cluster\"} 600\n\
            carbontop_network_bytes_total{direction=\"tx\",node=\"n1\",scope=\"internet\"} 7\n\
            carbontop_network_bytes_total{direction=\"rx\",node=\"n1\"} 50\n\
            carbontop_network_bytes_total{direction=\"tx\",node=\"n1\",scope=\"rdma\"} 9000\n\
            # TYPE carbontop_samples_total counter\ncarbontop_samples_total{node=\"n1\"} 3\n";
        let n = parse("a:1", text).unwrap();
        // scope=machine, or no scope (an agent from before scopes), is the node's traffic.
        assert_eq!((n.fig.net_tx_bytes, n.fig.net_rx_bytes), (1000, 50));
    }

    #[test]
    fn the_new_names_are_read_and_preferred_to_the_deprecated_ones() {
        let new = "carbontop_training_steps_total{node=\"n1\"} 120\n\
            carbontop_training_epoch{node=\"n1\"} 2\n\
            carbontop_accuracy_ratio{node=\"n1\"} 0.5\n\
            carbontop_accuracy_gained_ratio{node=\"n1\"} 0.25\n\
            carbontop_loss{node=\"n1\"} -0.5\n\
            carbontop_embodied_co2e_grams_total{node=\"n1\"} 3\n\
            carbontop_samples_total{node=\"n1\"} 3\n";
        let old = "carbontop_progress{node=\"n1\",metric=\"step\"} 7\n\
            carbontop_progress{node=\"n1\",metric=\"accuracy_points_gained\"} 1\n\
            carbontop_embodied_co2e_grams{node=\"n1\"} 1\n";
        let want = |f: &NodeFigures, k: &str| f.progress.get(k).copied();
        // A current agent sends both: the new names win (ratios back to percent and points).
        let f = parse("a:1", &format!("{old}{new}")).unwrap().fig;
        assert_eq!(want(&f, "step"), Some(120.0));
        assert_eq!(want(&f, "epoch"), Some(2.0));
        assert_eq!(want(&f, "accuracy_percent"), Some(50.0));
        assert_eq!(want(&f, "accuracy_points_gained"), Some(25.0));
        assert_eq!(want(&f, "loss"), Some(-0.5));
        assert_eq!(f.embodied_g, Some(3.0));
        // An agent from before them: the deprecated names.
        let f = parse(
            "a:1",
            &format!("{old}carbontop_samples_total{{node=\"n1\"}} 3\n"),
        )
        .unwrap()
        .fig;
        assert_eq!(want(&f, "step"), Some(7.0));
        assert_eq!(want(&f, "accuracy_points_gained"), Some(1.0));
        assert_eq!(f.embodied_g, Some(1.0));
        // A negative step count is refused like any negative total.
        let bad = new.replace("} 120", "} -1");
        assert!(matches!(
            parse("a:1", &bad),
            Err(ServeError::Negative { .. })
        ));
    }

    #[test]
    fn a_nodes_comms_energy_carbon_and_points_gained_are_read_back() {
        let text = "carbontop_comms_energy_joules_total{node=\"n1\",scope=\"cluster\"} 12\n\
            carbontop_comms_energy_joules_total{node=\"n1\",scope=\"internet\"} 30\n\
            carbontop_comms_co2e_grams_total{node=\"n1\",scope=\"machine\"} 0.5\n\
            carbontop_comms_co2e_grams_total{node=\"n1\",scope=\"internet\"} 1.5\n\
            carbontop_co2e_grams_total{node=\"n1\",zone=\"FR\"} 8\n\
            carbontop_progress{node=\"n1\",metric=\"accuracy_points_gained\"} 4\n\
            carbontop_progress{node=\"n1\",metric=\"epoch\"} 2\n\
            carbontop_samples_total{node=\"n1\"} 3\n";
        let f = parse("a:1", text).unwrap().fig;
        assert_eq!(f.comms_j.get("cluster"), Some(&12.0));
        assert_eq!(f.comms_j.get("internet"), Some(&30.0));
        assert_eq!(f.comms_g(), 2.0);
        // (8 + 1.5 on the path) / 4 points.
        assert_eq!(
            f.co2e_per_progress(),
            Some(("accuracy point".into(), 9.5 / 4.0))
        );
    }
}
