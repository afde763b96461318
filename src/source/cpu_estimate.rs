//! CPU power estimated from utilisation when RAPL is absent (DESIGN.md §5): the machine's load
//! between two ticks (sysinfo) through CodeCarbon 3.x's curve TDP × (0.1 + 0.9 × load³).

use crate::engine::constants::{cpu_estimate_power_w, unknown_cpu_tdp_w};
use crate::sample::{CpuReading, PowerReading};
use crate::source::{CpuSource, cpu_tdp};
use sysinfo::{CpuRefreshKind, RefreshKind, System};

/// Where the TDP came from.
#[derive(Debug, Clone, PartialEq)]
pub enum TdpOrigin {
    Flag,
    Table(&'static str),
    UnknownModel { threads: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tdp {
    pub watts: f64,
    pub origin: TdpOrigin,
}

/// Picks the TDP: `--cpu-tdp` wins, then the embedded table, then 4 W per thread.
pub fn choose_tdp(flag: Option<f64>, brand: &str, threads: usize) -> Tdp {
    if let Some(w) = flag {
        return Tdp {
            watts: w,
            origin: TdpOrigin::Flag,
        };
    }
    match cpu_tdp::lookup(brand) {
        Some((model, w)) => Tdp {
            watts: w,
            origin: TdpOrigin::Table(model),
        },
        None => Tdp {
            watts: unknown_cpu_tdp_w(threads),
            origin: TdpOrigin::UnknownModel { threads },
        },
    }
}

/// Utilisation-based CPU power.
pub struct CpuEstimate {
    sys: System,
    brand: String,
    tdp: Tdp,
    why: String,
    primed: bool,
}

impl CpuEstimate {
    /// `why` says why RAPL is not used; it goes into the description.
    pub fn new(tdp_flag: Option<f64>, why: String) -> Result<Self, String> {
        let mut sys = System::new_with_specifics(
            RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_usage()),
        )
        .map_err(|e| format!("cannot read CPU utilisation: {e}"))?;
        sys.refresh_cpu_usage();
        let brand = sys
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_owned())
            .unwrap_or_default();
        let threads = sys.cpus().len();
        let tdp = choose_tdp(tdp_flag, &brand, threads);
        Ok(Self {
            sys,
            brand,
            tdp,
            why,
            primed: false,
        })
    }

    pub fn brand(&self) -> &str {
        &self.brand
    }

    pub fn tdp(&self) -> &Tdp {
        &self.tdp
    }
}

impl CpuSource for CpuEstimate {
    fn read(&mut self) -> CpuReading {
        self.sys.refresh_cpu_usage();
        if !self.primed {
            // Utilisation is measured between two refreshes: the first tick has no interval.
            self.primed = true;
            return CpuReading::Unknown;
        }
        let load = f64::from(self.sys.global_cpu_usage()) / 100.0;
        CpuReading::Power(PowerReading::Average(crate::units::Watts(
            cpu_estimate_power_w(self.tdp.watts, load),
        )))
    }

    fn describe(&self) -> String {
        let tdp = match &self.tdp.origin {
            TdpOrigin::Flag => format!("TDP {} W (--cpu-tdp)", self.tdp.watts),
            TdpOrigin::Table(m) => format!("TDP {} W ({m}, manufacturer spec)", self.tdp.watts),
            TdpOrigin::UnknownModel { threads } => format!(
                "TDP {} W (model {:?} not in the table: 4 W × {threads} threads, as CodeCarbon; \
                 set --cpu-tdp)",
                self.tdp.watts, self.brand
            ),
        };
        format!(
            "estimate, {tdp} × (0.1 + 0.9 × load³) (CodeCarbon 3.x curve), because {}",
            self.why
        )
    }

    fn is_estimate(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tdp_precedence() {
        let t = choose_tdp(Some(65.0), "AMD EPYC 7763 64-Core Processor", 128);
        assert_eq!(t.watts, 65.0);
        let t = choose_tdp(None, "AMD EPYC 7763 64-Core Processor", 128);
        assert_eq!(t.origin, TdpOrigin::Table("epyc 7763"));
        let t = choose_tdp(None, "AMD EPYC", 2);
        assert_eq!(t.watts, 8.0);
    }

    #[test]
    fn live_estimate_reports_average_power_after_first_tick() {
        let mut e = CpuEstimate::new(Some(100.0), "test".into()).unwrap();
        assert_eq!(e.read(), CpuReading::Unknown);
        match e.read() {
            CpuReading::Power(PowerReading::Average(crate::units::Watts(w))) => {
                assert!((10.0..=100.0).contains(&w))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.describe().contains("estimate"));
    }
}
