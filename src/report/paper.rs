//! `report --format markdown|latex` and `report --model-card`: a run's figures as a paper's
//! appendix or a reproducibility checklist gives them (a paragraph, a table of what was
//! measured and how, the citation of every constant), and Hugging Face's `co2_eq_emissions`
//! model-card metadata. Every figure is the run's Snapshot's; this module only formats.

use crate::engine::Snapshot;
use crate::engine::meter::Band;
use crate::report::run_file::RunFile;
use crate::source::grid::table;

/// What a paper's table shows of one run.
pub struct Paper<'a> {
    /// The recording's name as given (shown as its file name only, never a machine's path).
    pub file: &'a str,
    pub snap: &'a Snapshot,
    pub run: Option<&'a RunFile>,
    /// The zone: `--zone`, else run.json's.
    pub zone: Option<&'a str>,
}

/// A formula in both notations (Markdown's plain Unicode, LaTeX's math).
struct Formula {
    md: &'static str,
    tex: &'static str,
}

struct Row {
    what: &'static str,
    value: String,
    how: String,
    formula: Option<Formula>,
}

/// `x` to `sig` significant digits, without exponent notation.
pub fn sig(x: f64, sig: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    let dec = (sig - 1 - mag).clamp(0, 12);
    format!("{x:.*}", dec as usize)
}

fn kg(g: f64) -> String {
    sig(g / 1000.0, 4)
}

fn band_kg(b: &Band) -> String {
    format!("{} kgCO2e ({} to {})", kg(b.g.0), kg(b.low.0), kg(b.high.0))
}

fn kwh(k: Option<crate::units::ItKwh>) -> String {
    k.map_or("n/a".into(), |k| sig(k.0, 3))
}

fn hms(s: f64) -> String {
    let t = s.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

impl Paper<'_> {
    /// The recording's file name (no directory: a path is the machine's, not the run's).
    pub fn name(&self) -> &str {
        std::path::Path::new(self.file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(self.file)
    }

    /// The GPUs and CPU, as run.json names them (else the recording's GPU count).
    pub fn hardware(&self) -> String {
        let n = self.snap.gpu_count;
        let gpus = self.run.map(|r| r.machine.gpus.as_slice()).unwrap_or(&[]);
        let mut parts = Vec::new();
        if gpus.is_empty() {
            if n > 0 {
                let s = if n == 1 { "" } else { "s" };
                parts.push(format!("{n} GPU{s} (model not recorded)"));
            }
        } else {
            let mut models: Vec<(&str, usize)> = Vec::new();
            for g in gpus {
                match models.iter_mut().find(|(m, _)| m == g) {
                    Some((_, k)) => *k += 1,
                    None => models.push((g, 1)),
                }
            }
            parts.extend(models.iter().map(|(m, k)| format!("{k} x {m}")));
        }
        if let Some(m) = self.run.map(|r| &r.machine) {
            match (&m.cpu_model, m.cpu_count) {
                (Some(c), Some(t)) => parts.push(format!("CPU {c} ({t} threads)")),
                (Some(c), None) => parts.push(format!("CPU {c}")),
                _ => {}
            }
        }
        if parts.is_empty() {
            "not recorded".into()
        } else {
            parts.join(", ")
        }
    }

    /// The table entry the zone's intensity comes from, where the run was priced from it.
    fn table_entry(&self) -> Option<&'static table::Entry> {
        let z = self.zone?;
        table::place(z, table::Names::Table).map(|r| r.entry)
    }

    /// Where the run was: the zone and its place, or that it was not recorded.
    pub fn location(&self) -> String {
        match (self.zone, self.table_entry()) {
            (Some(z), Some(e)) if e.name != z => format!("{} (zone {z})", e.name),
            (Some(z), _) => z.to_owned(),
            (None, _) => "not recorded".into(),
        }
    }

    fn source(&self) -> String {
        let label = self
            .snap
            .intensity
            .as_ref()
            .map_or("none recorded", |i| i.source.kind.label());
        let mut s = format!("provider: {label}");
        if let Some(r) = self.run.filter(|r| !r.intensity.is_empty()) {
            s += &format!(" ({})", r.intensity);
        }
        if let Some(e) = self
            .table_entry()
            .filter(|_| self.snap.table_co2e.is_some())
        {
            s += &format!(
                "; table: {} {}, {}",
                e.source.label(),
                e.year,
                e.basis.label()
            );
        }
        s
    }

    fn rows(&self) -> Vec<Row> {
        let s = self.snap;
        let span = match (s.start, s.end) {
            (Some(a), Some(b)) => format!(
                ", {} to {} UTC",
                a.format("%Y-%m-%d %H:%M:%S"),
                b.format("%H:%M:%S")
            ),
            _ => String::new(),
        };
        let mut rows = vec![
            Row {
                what: "Hardware",
                value: self.hardware(),
                how: if self.run.is_some() {
                    "as run.json beside the recording names it".into()
                } else {
                    "the recording's GPU columns".into()
                },
                formula: None,
            },
            Row {
                what: "Duration",
                value: format!("{} ({} s){span}", hms(s.elapsed_s), sig(s.elapsed_s, 4)),
                how: format!("first to last of {} samples", s.ticks),
                formula: None,
            },
            Row {
                what: "Energy",
                value: format!(
                    "{} kWh (IT: GPU {}, CPU {}, memory {}, network {} kWh)",
                    sig(s.energy_kwh.0, 4),
                    kwh(s.it.gpu_kwh),
                    sig(s.it.cpu_kwh.0, 3),
                    sig(s.it.mem_kwh.0, 3),
                    sig(s.it.net_kwh.0, 3),
                ),
                how: "measured power of each component (GPUs from NVML, CPU from RAPL or its \
                      load model, memory, network ports) summed over the samples, times PUE"
                    .into(),
                formula: Some(Formula {
                    md: "E = PUE × Σₜ P_IT(t) Δt",
                    tex: r"$E = \mathrm{PUE} \times \sum_t P_{\mathrm{IT}}(t)\,\Delta t$",
                }),
            },
            Row {
                what: "Location",
                value: self.location(),
                how: "the zone given (--zone) or recorded in run.json".into(),
                formula: None,
            },
            Row {
                what: "Carbon intensity",
                value: format!(
                    "{} gCO2e/kWh, energy-weighted mean; {}",
                    s.mean_intensity.map_or("n/a".into(), |i| sig(i.0, 4)),
                    self.source()
                ),
                how: "the intensity of each sample, weighted by its energy".into(),
                formula: Some(Formula {
                    md: "Ī = Σₜ Eₜ Iₜ / Σₜ Eₜ",
                    tex: r"$\bar I = \sum_t E_t I_t / \sum_t E_t$",
                }),
            },
            Row {
                what: "PUE",
                value: s.pue.to_string(),
                how: "given (--pue) or as recorded; 1.0 counts the IT equipment alone".into(),
                formula: None,
            },
            Row {
                what: "Operational emissions",
                value: band_kg(&s.co2e_band),
                how: "each sample's energy at that sample's intensity; the band is the sum of \
                      each component's measurement or estimate range"
                    .into(),
                formula: Some(Formula {
                    md: "C = Σₜ Eₜ × Iₜ",
                    tex: r"$C = \sum_t E_t \times I_t$",
                }),
            },
        ];
        rows.extend(self.emission_rows());
        rows
    }

    /// Embodied, total and per-point rows.
    fn emission_rows(&self) -> Vec<Row> {
        let s = self.snap;
        let mut rows = Vec::new();
        if let Some(e) = &s.embodied {
            rows.push(Row {
                what: "Embodied emissions",
                value: band_kg(e),
                how: "the hardware's manufacturing emissions (TE) amortised over its lifetime, \
                      by the share of the machine the run held (SCI's M)"
                    .into(),
                formula: Some(Formula {
                    md: "M = TE × (t / 6 y) × share",
                    tex: r"$M = \mathrm{TE} \times (t / 6\,\mathrm{y}) \times \mathrm{share}$",
                }),
            });
        }
        rows.push(Row {
            what: "Total emissions",
            value: band_kg(&s.total_band),
            how: "operational plus embodied (plus the internet path of a command's own \
                  traffic, where there was one)"
                .into(),
            formula: Some(Formula {
                md: "C + M",
                tex: r"$C + M$",
            }),
        });
        if let Some(p) = &s.per_point {
            rows.push(Row {
                what: "Cost per accuracy point",
                value: format!(
                    "{} gCO2e and {} Wh per point, over {} points gained",
                    sig(p.co2e_g.0, 4),
                    sig(p.energy_kwh.0 * 1000.0, 4),
                    sig(p.gained, 3)
                ),
                how: "operational emissions and energy over the accuracy gained from the first \
                      to the last reading"
                    .into(),
                formula: Some(Formula {
                    md: "C / (acc_end − acc_start)",
                    tex: r"$C / (\mathrm{acc}_{\mathrm{end}} - \mathrm{acc}_{\mathrm{start}})$",
                }),
            });
        }
        rows
    }

    /// The sources of the constants behind the figures above.
    pub fn citations(&self) -> Vec<String> {
        let s = self.snap;
        let mut c = Vec::new();
        if let Some(e) = self.table_entry().filter(|_| s.table_co2e.is_some()) {
            c.push(format!(
                "Grid intensity of {}: {} ({} figure, {}).",
                e.name,
                e.source.label(),
                e.year,
                e.basis.label()
            ));
        }
        if s.table_co2e.is_some() {
            c.push(
                "Band of an annual table intensity, x0.7 to x1.3: Miller, Novan & Jenn, \
                 \"Hourly accounting of carbon emissions from electricity consumption\", \
                 Environmental Research Letters 17 044073 (2022), \
                 https://doi.org/10.1088/1748-9326/ac6147."
                    .into(),
            );
            if self.zone.is_none() {
                c.push(
                    "World mean intensity, 436 gCO2e/kWh: Ember, Global Electricity Review \
                     2023 (2022 data), via Our World in Data, CC BY 4.0."
                        .into(),
                );
            }
        }
        if s.embodied.is_some() {
            c.push(
                "Embodied emissions, 150 kgCO2e per GPU and 2,500 kgCO2e per server, 6-year \
                 lifetime: Luccioni, Viguier & Ligozat, \"Estimating the Carbon Footprint of \
                 BLOOM, a 176B Parameter Language Model\", JMLR 24 (2023)."
                    .into(),
            );
            c.push(
                "Band of a GPU's embodied emissions, 60 to 318 kgCO2e: EcoInfo (CNRS) Ecodiag; \
                 Chien et al., \"Reducing the Carbon Impact of Generative AI Inference (today \
                 and in 2035)\", HotCarbon '23."
                    .into(),
            );
            c.push(
                "Amortisation M = TE x (time / lifetime) x share: Green Software Foundation, \
                 Software Carbon Intensity (SCI) Specification (ISO/IEC 21031:2024)."
                    .into(),
            );
        }
        if s.comms.is_some() {
            c.push(
                "Network ports' power at line rate: vendors' datasheets (Intel I350/X710/X550, \
                 Arista 7124SX/7250QX, NVIDIA ConnectX); internet path 0.00265 kWh/GB (0.001 to \
                 0.069): Aslan, Mayers, Koomey & France, \"Electricity Intensity of Internet \
                 Data Transmission\", J. Industrial Ecology 22(4) (2018)."
                    .into(),
            );
        }
        c.push(
            "CPU power without RAPL and memory power: CodeCarbon 3.x models (TDP x (0.1 + 0.9 x \
             load^3); 5 W per DIMM), https://github.com/mlco2/codecarbon."
                .into(),
        );
        c
    }

    /// The paragraph a methods section can take as it is (plain text).
    fn paragraph(&self) -> String {
        let s = self.snap;
        let mut p = format!(
            "We measured the training run ({}) with carbontop {}: it ran for {} on {}, \
             drawing {} kWh at the facility (PUE {}). At a mean grid intensity of {} gCO2e/kWh \
             ({}; {}), its operational emissions were {}",
            self.name(),
            env!("CARGO_PKG_VERSION"),
            hms(s.elapsed_s),
            self.hardware(),
            sig(s.energy_kwh.0, 4),
            s.pue,
            s.mean_intensity.map_or("n/a".into(), |i| sig(i.0, 4)),
            self.location(),
            self.source(),
            band_kg(&s.co2e_band),
        );
        if let Some(e) = &s.embodied {
            p += &format!(", plus {} of the hardware's embodied emissions", band_kg(e));
        }
        p += ".";
        if let Some(pp) = &s.per_point {
            p += &format!(
                " Each point of accuracy gained cost {} gCO2e.",
                sig(pp.co2e_g.0, 4)
            );
        }
        p
    }

    pub fn markdown(&self) -> String {
        let cell = |t: &str| t.replace('|', "\\|");
        let mut out = format!("{}\n\n", self.paragraph());
        out += "| Quantity | Value | How it was obtained |\n|---|---|---|\n";
        for r in self.rows() {
            let how = match &r.formula {
                Some(f) => format!("{}: `{}`", r.how, f.md),
                None => r.how.clone(),
            };
            out += &format!("| {} | {} | {} |\n", r.what, cell(&r.value), cell(&how));
        }
        out += "\nSources of the constants:\n\n";
        for c in self.citations() {
            out += &format!("- {c}\n");
        }
        out
    }

    pub fn latex(&self) -> String {
        let mut out = format!(
            "% carbontop {}: {}\n{}\n\n",
            env!("CARGO_PKG_VERSION"),
            escape(self.name()),
            escape(&self.paragraph())
        );
        out += "\\begin{table}[ht]\n\\centering\n\\small\n";
        out +=
            "\\begin{tabular}{p{0.18\\linewidth}p{0.36\\linewidth}p{0.38\\linewidth}}\n\\hline\n";
        out += "Quantity & Value & How it was obtained \\\\\n\\hline\n";
        for r in self.rows() {
            let how = match &r.formula {
                Some(f) => format!("{}: {}", escape(&r.how), f.tex),
                None => escape(&r.how),
            };
            out += &format!("{} & {} & {} \\\\\n", escape(r.what), escape(&r.value), how);
        }
        out += "\\hline\n\\end{tabular}\n";
        out += &format!(
            "\\caption{{Energy and emissions of {}, measured with carbontop.}}\n",
            escape(self.name())
        );
        out += "\\label{tab:carbontop}\n\\end{table}\n\n";
        out += "\\begin{itemize}\n";
        for c in self.citations() {
            out += &format!("\\item {}\n", escape(&c));
        }
        out += "\\end{itemize}\n";
        out
    }

    /// Hugging Face's `co2_eq_emissions` block (https://huggingface.co/docs/hub/model-cards-co2):
    /// emissions in grams, operational as CodeCarbon's (the embodied figure in a comment).
    pub fn model_card(&self, training_type: &str) -> String {
        let s = self.snap;
        let q = |t: &str| serde_json::Value::String(t.to_owned()).to_string();
        let place = match (self.zone, self.table_entry()) {
            (_, Some(e)) => e.name.clone(),
            (Some(z), None) => z.to_owned(),
            (None, None) => "unknown".into(),
        };
        let mut out = format!(
            "---\nco2_eq_emissions:\n  emissions: {}\n  source: {}\n  training_type: {}\n  \
             geographical_location: {}\n  hardware_used: {}\n",
            sig(s.co2e_g.0, 6),
            q(&format!("carbontop {}", env!("CARGO_PKG_VERSION"))),
            q(training_type),
            q(&place),
            q(&self.hardware()),
        );
        if let Some(e) = &s.embodied {
            out += &format!(
                "# operational only; the hardware's embodied share is {} g more\n",
                sig(e.g.0, 4)
            );
        }
        out += "---\n";
        out
    }
}

/// Text as LaTeX typesets it: its ten special characters escaped, and the few non-ASCII
/// symbols carbontop writes as their LaTeX commands.
pub fn escape(t: &str) -> String {
    let mut o = String::with_capacity(t.len());
    let mut open = true;
    for c in t.chars() {
        match c {
            // `--` would set as a dash, `"` as a closing quote either side.
            '-' if o.ends_with('-') => o.push_str("{}-"),
            '"' => {
                o.push_str(if open { "``" } else { "''" });
                open = !open;
            }
            '\\' => o.push_str(r"\textbackslash{}"),
            '{' => o.push_str(r"\{"),
            '}' => o.push_str(r"\}"),
            '%' | '_' | '&' | '#' | '$' => {
                o.push('\\');
                o.push(c);
            }
            '~' => o.push_str(r"\textasciitilde{}"),
            '^' => o.push_str(r"\textasciicircum{}"),
            '–' => o.push_str("--"),
            '—' => o.push_str("---"),
            '×' => o.push_str(r"$\times$"),
            '≈' => o.push_str(r"$\approx$"),
            '→' => o.push_str(r"$\rightarrow$"),
            '−' => o.push('-'),
            _ => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_every_special_literal() {
        assert_eq!(
            escape(r#"50% a_b & #1 $2 ~x ^y \z {w} --zone "q""#),
            r"50\% a\_b \& \#1 \$2 \textasciitilde{}x \textasciicircum{}y \textbackslash{}z \{w\} -{}-zone ``q''"
        );
    }

    #[test]
    fn sig_keeps_significant_digits() {
        assert_eq!(sig(0.107_42, 4), "0.1074");
        assert_eq!(sig(38.94, 4), "38.94");
        assert_eq!(sig(1234.6, 3), "1235");
        assert_eq!(sig(0.0, 3), "0");
    }
}
