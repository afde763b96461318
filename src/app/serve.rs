//! `carbontop serve`: the headless agent (issue 8).

use crate::app::live::{Job, live};
use crate::app::{AppError, say};
use crate::config::Settings;
use crate::serve::{AgentInfo, Exporter};
use crate::source::replay::Speed;
use std::path::Path;

/// This machine's host name (the default `node` label).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn run(
    s: &Settings,
    listen: &str,
    node: Option<String>,
    replay: Option<&Path>,
    speed: Speed,
) -> Result<i32, AppError> {
    let node = node.unwrap_or_else(hostname);
    let zone = s.grid.zone_label();
    match replay {
        Some(file) => {
            let ex = Exporter::new(AgentInfo {
                node,
                zone,
                replay_speed: Some(match speed {
                    Speed::Times(x) => x.to_string(),
                    Speed::Max => "max".into(),
                }),
                ..AgentInfo::default()
            })
            .map_err(|e| AppError::Runtime(e.to_string()))?;
            let at = ex
                .listen(listen)
                .map_err(|e| AppError::Usage(e.to_string()))?;
            say(&format!(
                "{} (replay of {})",
                crate::serve::serving_line(at),
                file.display()
            ));
            crate::app::replay::replay(&crate::app::replay::ReplayOpts {
                file,
                speed,
                out: s.out.as_deref(),
                pue: None,
                quiet: true,
                headless: true,
                theme: None,
                exporter: Some(ex),
            })
        }
        None => live(
            s,
            Job::Serve {
                listen,
                node: &node,
            },
        ),
    }
}
