//! `carbontop estimate` over a model's life: the phases and sites from the command line, the
//! figures from `engine::life`, the formats from `report::life`.

use crate::app::AppError;
use crate::app::estimate::{gpu_model, grid_of};
use crate::cli::EstimateArgs;
use crate::engine::life::{self, Hardware, Site, Work};
use crate::report::life::Inputs;

fn usage(e: impl std::fmt::Display) -> AppError {
    AppError::Usage(e.to_string())
}

fn hardware(
    flag: &str,
    name: &str,
    count: u32,
    usage_f: f64,
    mem: f64,
) -> Result<Hardware, AppError> {
    let (full, w, _) = gpu_model(flag, name)?;
    Ok(Hardware {
        gpu_name: full.into(),
        gpu_w: w,
        count,
        usage: usage_f,
        mem_gib_per_server: mem,
    })
}

/// The serving phase, if asked for.
fn serving(o: &EstimateArgs) -> Result<Option<Work>, AppError> {
    let Some(days) = o.serve_days else {
        return match o.queries_per_day {
            Some(_) => Err(usage(
                "--queries-per-day needs --serve-days (how long the model serves)",
            )),
            None => Ok(None),
        };
    };
    let hw = match o.serve_count {
        Some(n) => Some(hardware(
            "--serve-gpu",
            o.serve_gpu.as_deref().unwrap_or(&o.gpu),
            n,
            o.serve_utilisation.unwrap_or(o.utilisation),
            o.memory_gib,
        )?),
        None => None,
    };
    let Some(per_day) = o.queries_per_day else {
        let hw = hw.ok_or_else(|| {
            usage("--serve-days needs --serve-count N (GPUs serving) or --queries-per-day Q")
        })?;
        return Ok(Some(Work::Hardware {
            hw,
            hours: days * 24.0,
        }));
    };
    let kwh_per_query = match (o.wh_per_query, &o.per_query_from, o.queries) {
        (Some(wh), _, _) => wh / 1000.0,
        (None, Some(path), Some(n)) => {
            let r = crate::report::account::account_file(path, None, false)
                .map_err(|e| usage(format!("--per-query-from {e}")))?;
            let it = r.snapshot.it.total_kwh.0;
            if it <= 0.0 {
                return Err(usage(format!(
                    "--per-query-from {}: the recording has no energy",
                    path.display()
                )));
            }
            it / n
        }
        _ => {
            return Err(usage(
                "--queries-per-day needs --wh-per-query WH or --per-query-from RUN.csv --queries N",
            ));
        }
    };
    Ok(Some(Work::Queries {
        per_day,
        kwh_per_query,
        days,
        hw,
    }))
}

/// A given intensity is the user's; a zone's is the table's annual mean, with its band.
fn intensity_band(given: Option<f64>) -> (f64, f64) {
    match given {
        Some(_) => (1.0, 1.0),
        None => crate::engine::constants::GRID_TABLE_BAND,
    }
}

/// The sites: each --site, else one from --zone/--intensity/--pue.
fn sites(o: &EstimateArgs) -> Result<Vec<Site>, AppError> {
    if o.site.is_empty() {
        let (g, basis) = grid_of(o.intensity, o.zone.as_deref())?;
        let name = match (o.intensity, &o.zone) {
            (Some(_), _) => "fixed".to_owned(),
            (None, Some(z)) => z.clone(),
            (None, None) => "WORLD".to_owned(),
        };
        return Ok(vec![Site {
            name,
            basis,
            g_per_kwh: g,
            pue: o.pue,
            share: 1.0,
            transport: 1.0,
            band: intensity_band(o.intensity),
            phase: None,
        }]);
    }
    o.site
        .iter()
        .map(|s| {
            let (g, basis) = grid_of(s.intensity, s.zone.as_deref())
                .map_err(|e| usage(format!("--site: {e}")))?;
            Ok(Site {
                name: match s.intensity {
                    Some(_) => "fixed".into(),
                    None => s.zone.clone().unwrap_or_default(),
                },
                basis,
                g_per_kwh: g,
                pue: s.pue,
                share: s.share,
                transport: s.transport,
                band: intensity_band(s.intensity),
                phase: s.phase,
            })
        })
        .collect()
}

pub fn run(o: &EstimateArgs) -> Result<i32, AppError> {
    let train = Work::Hardware {
        hw: hardware("--gpu", &o.gpu, o.count, o.utilisation, o.memory_gib)?,
        hours: o.hours,
    };
    let serve = serving(o)?;
    let sites = sites(o)?;
    let l = life::life(Some(&train), serve.as_ref(), &sites).map_err(usage)?;
    let inputs = Inputs {
        training: &train,
        serving: serve.as_ref(),
        sites: &sites,
    };
    let text = if o.if_manifest {
        crate::report::life::if_manifest(&inputs, &l)
    } else if o.json {
        crate::report::life::json(&inputs, &l)
    } else {
        crate::report::life::text(&inputs, &l)
    };
    crate::outln!("{text}")?;
    Ok(0)
}
