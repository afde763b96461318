//! Every constant the engine uses, with its source (DESIGN.md §5, "Constants to start from").
//! Config and command-line flags may override the ones marked "overridable".

/// Memory power per GiB, for memory a job *requested* (the pre-run estimate; DESIGN.md §5 keeps it
/// off a machine's installed memory). Green Algorithms (Lannelongue, Grealey & Inouye, "Green
/// Algorithms: Quantifying the Carbon Footprint of Computation", Adv. Sci. 2021): 0.3725 W per GB.
pub const MEMORY_W_PER_GIB: f64 = 0.3725;

/// Power of one memory module (DIMM) on x86, W. CodeCarbon 3.x `RAM_SLOT_POWER_X86 = 5`
/// (`codecarbon/external/ram.py`; methodology: "5 Watts for each RAM slot").
pub const DIMM_W_X86: f64 = 5.0;
/// Power of one memory module on ARM, W (CodeCarbon 3.x `_calculate_ram_power`: 1.5 W, "ARM
/// systems typically use lower power memory").
pub const DIMM_W_ARM: f64 = 1.5;
/// CodeCarbon 3.x's floor on the size heuristic's memory power: two x86 DIMMs (10 W) or 3 W on ARM.
pub const MEMORY_MIN_W_X86: f64 = 2.0 * DIMM_W_X86;
/// See [`MEMORY_MIN_W_X86`].
pub const MEMORY_MIN_W_ARM: f64 = 3.0;
/// Low end of the measured power of one DDR4 module under load, W: Tom's Hardware, "Intel Core
/// i7-5960X (Haswell-E) review: Measuring DDR4 power consumption" (2014): 4 GB DDR4-2133 and
/// DDR4-2666 modules at 1.49–1.52 W each (8 GB: 2.98–3.06 W).
pub const DIMM_W_LOW: f64 = 1.5;
/// High end of the measured power of one module under full load, W: TecChannel/ChannelPartner,
/// "Xeon-Server optimal konfigurieren" (Asus RS700-E6, SPECpower_ssj2008 at 100 %): twelve 4 GB
/// DDR3 RDIMMs drew 32 W more than six, 5.3 W per module. No measured figure was found for
/// high-capacity DDR4/DDR5 LRDIMMs or 3DS RDIMMs, which may draw more.
pub const DIMM_W_HIGH: f64 = 32.0 / 6.0;

/// Internet path: energy intensity of moving data across the internet's access and core
/// networks, kWh per GB (GB = 10^9 bytes), overridable with `--net-kwh-per-gb`. This is energy
/// spent by other people's equipment along the path, never power of the measuring machine: it
/// is the comms footprint, shown apart (DESIGN.md §5).
///
/// Point value: Aslan, Mayers, Koomey & France, "Electricity Intensity of Internet Data
/// Transmission: Untangling the Estimates", J. Industrial Ecology 22(4) 2018: 0.06 kWh/GB in
/// 2015 for core and fixed-line access networks, halving about every 2 years since 2000;
/// carried to 2024: 0.06 × 2^(−9/2) ≈ 0.00265 kWh/GB. Extrapolating a trend past its data is
/// itself uncertain, hence the wide range below.
pub const NETWORK_KWH_PER_GB: f64 = 0.00265;
/// Low end of the published range: Cloud Carbon Footprint / Impact Framework `e-net`,
/// 0.001 kWh/GB; Malmodin (Ericsson, 2020–2024) finds the network's power nearly independent
/// of its traffic, so the marginal intensity of more bytes is lower still.
pub const NETWORK_KWH_PER_GB_LOW: f64 = 0.001;
/// High end: CUMULATOR (Trébaol, EPFL 2020), after the Shift Project's 2019 1-byte model,
/// 6.894e-8 kWh/kB = 0.06894 kWh/GB, which carbontop used before (about 26× the point value:
/// where sources disagree by more than 2× the range is shown, DESIGN.md §5).
pub const NETWORK_KWH_PER_GB_HIGH: f64 = 0.06894;
// The range holds its point value.
const _: () = assert!(
    NETWORK_KWH_PER_GB_LOW < NETWORK_KWH_PER_GB && NETWORK_KWH_PER_GB < NETWORK_KWH_PER_GB_HIGH
);

/// One link class of the port power model: the power at line rate (W, point and published
/// range) of one server NIC port plus the switch port at the other end of its cable, both
/// moving traffic at full speed. Typical (not maximum) figures from vendors' datasheets:
/// NIC figures are per port of dual-port cards with passive copper (DAC) or short-reach optics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortClass {
    pub gbps: f64,
    pub w: f64,
    pub low_w: f64,
    pub high_w: f64,
}

/// The port power model's classes, by line rate. Sources (typical power):
/// - 1 GbE: Intel I350 server adapters, about 1 W per port; access-switch ports about 1 W
///   (Lanzisera, Nordman & Brown, "Data network equipment energy use and savings potential in
///   buildings", LBNL 2010). 2 W, range 1–4 W.
/// - 10 GbE: NIC 1.7 W per SFP+ port (Intel X710-DA2, about 3.3 W for two) to 5.5 W per
///   10GBASE-T port (Intel X550-T2); switch port 5 W (Arista 7124SX data sheet: "typical power
///   consumption 5W/port"), about 1.5 W on current 10G ASICs. 7.5 W, range 3–11 W.
/// - 40 GbE: switch port under 14 W (Arista 7250QX-64: "typical power consumption under 14W
///   per 40GbE port"), NIC about 4 W per port (ConnectX-3 Pro class). 16 W, range 8–20 W.
/// - 100 GbE: NIC about 8–10 W per port (ConnectX-5/6 Dx dual-port cards, 15–20 W typical),
///   switch port about 5–12 W (32-port 100G 1U switches, 150–400 W typical). 20 W, range
///   10–30 W.
/// - 400 GbE: NIC about 20 W (ConnectX-7 single-port), switch port with optics about 20 W.
///   40 W, range 25–60 W.
///
/// The 1 GbE and 100–400 GbE figures are approximate readings of the named datasheets, not
/// re-checked here; the 10 and 40 GbE switch figures are quoted from Arista's data sheets.
/// Between classes the power is interpolated on a log–log scale; below 1 Gb/s it scales with
/// the speed, above 400 Gb/s at the 400 GbE class's W per Gb/s.
pub const PORT_CLASSES: [PortClass; 5] = [
    PortClass {
        gbps: 1.0,
        w: 2.0,
        low_w: 1.0,
        high_w: 4.0,
    },
    PortClass {
        gbps: 10.0,
        w: 7.5,
        low_w: 3.0,
        high_w: 11.0,
    },
    PortClass {
        gbps: 40.0,
        w: 16.0,
        low_w: 8.0,
        high_w: 20.0,
    },
    PortClass {
        gbps: 100.0,
        w: 20.0,
        low_w: 10.0,
        high_w: 30.0,
    },
    PortClass {
        gbps: 400.0,
        w: 40.0,
        low_w: 25.0,
        high_w: 60.0,
    },
];

/// The link class assumed where the link speed is unknown (virtual NICs report −1 or nothing
/// in `/sys/class/net/IFACE/speed`): 10 GbE, the common cloud VM and server NIC; overridable
/// with `--net-link-gbps`.
pub const ASSUMED_LINK_GBPS: f64 = 10.0;

/// The port power at line rate (W: point, low, high) of one link of `gbps`.
pub fn port_class_w(gbps: f64) -> (f64, f64, f64) {
    class_w(&PORT_CLASSES, known_or(gbps, ASSUMED_LINK_GBPS))
}

/// A link speed as read, or the assumed one where it is unknown (−1, 0, not a number).
fn known_or(gbps: f64, assumed: f64) -> f64 {
    if gbps.is_finite() && gbps > 0.0 {
        gbps
    } else {
        assumed
    }
}

/// The power of a link of `g` Gb/s by the class table `c`: log–log between classes, in
/// proportion to the speed below the first and above the last.
fn class_w(c: &[PortClass], g: f64) -> (f64, f64, f64) {
    let first = c[0];
    let last = c[c.len() - 1];
    if g <= first.gbps {
        let k = g / first.gbps;
        return (first.w * k, first.low_w * k, first.high_w * k);
    }
    if g >= last.gbps {
        let k = g / last.gbps;
        return (last.w * k, last.low_w * k, last.high_w * k);
    }
    let i = c
        .iter()
        .position(|x| x.gbps >= g)
        .unwrap_or(c.len() - 1)
        .max(1);
    let (a, b) = (c[i - 1], c[i]);
    if g == b.gbps {
        return (b.w, b.low_w, b.high_w);
    }
    let t = (g / a.gbps).ln() / (b.gbps / a.gbps).ln();
    let lerp = |x: f64, y: f64| (x.ln() + t * (y.ln() - x.ln())).exp();
    (
        lerp(a.w, b.w),
        lerp(a.low_w, b.low_w),
        lerp(a.high_w, b.high_w),
    )
}

/// The RDMA link classes (InfiniBand, RoCE: NCCL's inter-node transport) of the port model:
/// the power at line rate of one host channel adapter port plus its share of a switch port.
/// What could be checked against NVIDIA's documents (typical power, passive copper cables):
/// - ConnectX-7 single-port OSFP NDR adapter MCX75310AAS-NEAT: 24.9 W; the same card at
///   NDR200 (MCX75310AAS-HEAT): 16.7 W; OCP 3.0 400G card: 24.4 W ("Typical power with passive
///   cables in PCIe Gen 5.0 x16", NVIDIA ConnectX-7 Adapter Cards User Manual, Specifications).
/// - ConnectX-5 (nearest card found: 2 × 25GbE OCP MCX542A-ACAN): 12.95 W typical, 15.55 W
///   maximum (NVIDIA ConnectX-5 EN OCP 2.0 User Manual, Specifications): an EDR card's lower
///   bound.
/// - Optics, where a link has them instead of copper: an HDR cable "can require 6W per port"
///   (NVIDIA DGX SuperPOD cabling design guide, "Port power"); an NDR 400G OSFP module 8–9 W
///   (NVIDIA MMA4Z00-NS400 / MMS4X00-NS400 product pages); a QM97xx switch cage up to 17 W
///   ("Class 8 (17W) OSFP112", QM97X0 user manual, Interfaces).
///
/// The switch side could not be checked here (the SB7800, QM8700 and QM9700 manuals'
/// Specifications pages were not readable): its share is an assumption of 4 W (EDR), 6 W
/// (HDR) and 8–11 W (NDR) per port, about a 36-, 40- or 64-port switch's typical system power
/// over its ports, and the ranges are wide enough to hold it from none to twice that, plus
/// optics at both ends at the high end:
///
/// - EDR 100 Gb/s: 17 W (ConnectX-5 class adapter ~13 W + ~4 W switch), range 10–25 W.
/// - HDR 200 Gb/s: 23 W (a 200G ConnectX adapter ~17 W + ~6 W switch), range 15–35 W.
/// - NDR 400 Gb/s: 35 W (ConnectX-7 24.9 W + ~10 W switch), range 24–60 W.
///
/// Between classes and beyond them, as `port_class_w`.
pub const RDMA_PORT_CLASSES: [PortClass; 3] = [
    PortClass {
        gbps: 100.0,
        w: 17.0,
        low_w: 10.0,
        high_w: 25.0,
    },
    PortClass {
        gbps: 200.0,
        w: 23.0,
        low_w: 15.0,
        high_w: 35.0,
    },
    PortClass {
        gbps: 400.0,
        w: 35.0,
        low_w: 24.0,
        high_w: 60.0,
    },
];

/// The RDMA line rate assumed where a port's `rate` is unreadable: HDR 200 Gb/s, the common
/// InfiniBand generation of GPU clusters built 2020–2024.
pub const ASSUMED_RDMA_GBPS: f64 = 200.0;

/// The power at line rate (W: point, low, high) of one RDMA port of `gbps`.
pub fn rdma_class_w(gbps: f64) -> (f64, f64, f64) {
    class_w(&RDMA_PORT_CLASSES, known_or(gbps, ASSUMED_RDMA_GBPS))
}

/// The port model: every byte a machine moves crosses its NIC port and the switch port at the
/// other end of the cable, and a port moving bits at its line rate draws its power at line
/// rate. So the energy of `bytes` is bytes × 8 × (P_line / line rate), and the power over an
/// interval is P_line × min(1, bits per second / line rate): never more than the ports draw at
/// line rate, whatever the counters say (DESIGN.md §5). This attributes the ports' power to
/// traffic in proportion to it; ports draw most of it even idle, which is the machine's baseline
/// and not traffic's. Switches beyond the first port (aggregation, spine) are not counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortModel {
    /// The line rate assumed for links whose speed is unknown (Gb/s).
    pub assumed_gbps: f64,
    /// The power at line rate of each link (W), overriding the class table (`--net-port-w`).
    pub port_w: Option<f64>,
}

impl Default for PortModel {
    fn default() -> Self {
        Self {
            assumed_gbps: ASSUMED_LINK_GBPS,
            port_w: None,
        }
    }
}

/// The ports a machine's traffic crosses: their line rate and their power at line rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortBound {
    pub gbps: f64,
    /// Power at line rate (W): point, low and high.
    pub w: f64,
    pub low_w: f64,
    pub high_w: f64,
    /// Whether any link's speed was assumed.
    pub assumed: bool,
}

impl PortModel {
    /// The bound of `links`: each link at its own speed, or the assumed class where unknown;
    /// no link known at all (a replay, or no interface counted): one link of the assumed class.
    pub fn bound(&self, links: Option<crate::sample::Links>) -> PortBound {
        let l = links.unwrap_or_default();
        let mut b = PortBound {
            gbps: 0.0,
            w: 0.0,
            low_w: 0.0,
            high_w: 0.0,
            assumed: false,
        };
        if l.known > 0 && l.known_gbps > 0.0 {
            // Links of one machine are alike as a rule (bonds, rails): each at the mean speed.
            self.add_links(&mut b, l.known, l.known_gbps / f64::from(l.known));
        }
        let unknown = if b.gbps > 0.0 {
            l.unknown
        } else {
            l.unknown.max(1)
        };
        self.add_links(&mut b, unknown, self.assumed_gbps);
        b.assumed = unknown > 0;
        b
    }

    /// The bound of a machine's RDMA ports: `known` of them at `known_gbps` in all, the rest
    /// at the assumed RDMA rate, each at its RDMA class's power (`RDMA_PORT_CLASSES`).
    pub fn bound_rdma(&self, ports: u16, known: u16, known_gbps: f64) -> PortBound {
        let mut b = PortBound {
            gbps: 0.0,
            w: 0.0,
            low_w: 0.0,
            high_w: 0.0,
            assumed: false,
        };
        let mut add = |n: u16, gbps: f64| {
            if n == 0 {
                return;
            }
            let (w, lo, hi) = rdma_class_w(gbps);
            let n = f64::from(n);
            b.gbps += n * gbps;
            b.w += n * w;
            b.low_w += n * lo;
            b.high_w += n * hi;
        };
        let known = known.min(ports);
        if known > 0 && known_gbps > 0.0 {
            add(known, known_gbps / f64::from(known));
        }
        let unknown = ports - if known_gbps > 0.0 { known } else { 0 };
        add(unknown, ASSUMED_RDMA_GBPS);
        b.assumed = unknown > 0;
        b
    }

    /// Adds `n` links of `gbps` to the bound.
    fn add_links(&self, b: &mut PortBound, n: u16, gbps: f64) {
        if n == 0 {
            return;
        }
        let (w, lo, hi) = match self.port_w {
            Some(w) => (w, w, w),
            None => port_class_w(gbps),
        };
        let n = f64::from(n);
        b.gbps += n * gbps;
        b.w += n * w;
        b.low_w += n * lo;
        b.high_w += n * hi;
    }
}

impl PortBound {
    /// The band's ends as factors of the point value ((1, 1) for a model of no power).
    pub fn factors(&self) -> (f64, f64) {
        if self.w > 0.0 {
            (self.low_w / self.w, self.high_w / self.w)
        } else {
            (1.0, 1.0)
        }
    }

    /// The ports' power (W) for `bytes` moved over `dt_s` seconds, with the band's ends:
    /// P_line × min(1, bits/s ÷ line rate).
    pub fn power_w(&self, bytes: u64, dt_s: f64) -> (f64, f64, f64) {
        if dt_s.is_nan() || dt_s <= 0.0 || self.gbps <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let u = (bytes as f64 * 8.0 / dt_s / (self.gbps * 1e9)).min(1.0);
        (self.w * u, self.low_w * u, self.high_w * u)
    }
}

/// CPU power without RAPL: TDP × (IDLE + (1 − IDLE) × load³). CodeCarbon 3.x CPU load model
/// (as summarised in DESIGN.md §5).
pub const CPU_IDLE_SHARE: f64 = 0.1;
/// CodeCarbon 3.x: a CPU model missing from the TDP table is counted at 4 W per hardware thread
/// (`DEFAULT_POWER_PER_CORE = 4` in `codecarbon/core/cpu.py`, × `psutil.cpu_count()`).
pub const CPU_UNKNOWN_W_PER_THREAD: f64 = 4.0;
/// CodeCarbon 3.x's constant mode (no utilisation available): half the TDP
/// (`CONSUMPTION_PERCENTAGE_CONSTANT = 0.5`, `codecarbon/external/hardware.py`). Used for the band.
pub const CPU_CONSTANT_SHARE: f64 = 0.5;

/// World-average life-cycle grid intensity, gCO2e/kWh: Ember, Global Electricity Review 2023
/// (2022 data), as published by Our World in Data (CC BY 4.0); the same basis as the embedded
/// country table (`source::grid::table`). The last resort, used only when no zone is given or a
/// zone fits no table. CodeCarbon's world default is 475 g/kWh (IEA, Global Energy & CO2 Status
/// Report 2019), so a run without a zone reads about 8% lower here than in CodeCarbon.
pub const WORLD_INTENSITY_G_PER_KWH: f64 = 436.0;

/// The band of an embedded table intensity (an annual mean) as the intensity of the hours a
/// run actually draws power, as factors of the table's value: ±30%. Miller, Novan & Jenn,
/// "Hourly accounting of carbon emissions from electricity consumption", Environmental Research
/// Letters 17 044073 (2022), https://doi.org/10.1088/1748-9326/ac6147: across thousands of US
/// facilities, annual-average accounting over- or under-estimated hourly-accounted emissions by
/// up to 30%, and hardly at all in others. No per-zone figure of the hourly spread was found in
/// a form that could be cited for all 300-odd table zones, so this one figure is applied to
/// every zone alike (a labelled assumption): it also holds the source-to-source gap for the
/// world mean (Ember 2022's 436 vs IEA 2019's 475 g/kWh, +9%) and a year's change in most
/// countries' annual figure. A run of a few hours on a grid rich in solar or wind can stray
/// further from the annual mean than this. Live providers' values carry no such band.
pub const GRID_TABLE_BAND: (f64, f64) = (0.7, 1.3);

/// CO2 a tree absorbs in a year, kg. Green Algorithms reference values (Lannelongue et al. 2021,
/// "11 kg CO2 per tree per year", i.e. 917 g per tree-month): tree-days = kgCO2e / (11 / 365).
pub const TREE_KG_CO2_PER_YEAR: f64 = 11.0;
/// An average European passenger car, gCO2e per km. Green Algorithms reference values (EU 175,
/// US 251 g/km).
pub const CAR_G_PER_KM_EU: f64 = 175.0;
/// An average US passenger car, gCO2e per km (Green Algorithms).
pub const CAR_G_PER_KM_US: f64 = 251.0;

/// Days of a tree's absorption that offset `g` grams of CO2e (Green Algorithms).
pub fn tree_days(g: f64) -> f64 {
    g / 1000.0 / (TREE_KG_CO2_PER_YEAR / 365.0)
}

/// Kilometres driven by an average EU car for `g` grams of CO2e (Green Algorithms).
pub fn car_km(g: f64) -> f64 {
    g / CAR_G_PER_KM_EU
}

/// Embodied emissions of one GPU, kgCO2e (manufacturing). BLOOM paper (Luccioni, Viguier &
/// Ligozat, "Estimating the Carbon Footprint of BLOOM", JMLR 2023): 150 kg per GPU.
pub const EMBODIED_KG_PER_GPU: f64 = 150.0;
/// Embodied emissions of one server without its GPUs, kgCO2e (BLOOM paper: 2,500 kg).
pub const EMBODIED_KG_PER_SERVER: f64 = 2500.0;
/// Expected hardware lifetime for the amortisation, years (BLOOM paper: 6 years).
pub const HARDWARE_LIFETIME_YEARS: f64 = 6.0;

/// Embodied emissions (TE, kgCO2e) with the spread of the published figures: the point value
/// carbontop uses and the lowest and highest figure a cited source gives for the same thing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbodiedKg {
    pub kg: f64,
    pub low: f64,
    pub high: f64,
}

impl EmbodiedKg {
    /// One figure, no spread (a server, or the user's own `--embodied-kg`).
    pub const fn exact(kg: f64) -> Self {
        EmbodiedKg {
            kg,
            low: kg,
            high: kg,
        }
    }

    /// The band as factors of the point value (low/kg, high/kg), or `None` when there is no
    /// spread to show (DESIGN.md §5: show the range where sources disagree).
    pub fn band_factors(&self) -> Option<(f64, f64)> {
        (self.kg > 0.0 && (self.high - self.low) > 1e-9 * self.kg)
            .then(|| (self.low / self.kg, self.high / self.kg))
    }

    fn add(self, o: EmbodiedKg) -> Self {
        EmbodiedKg {
            kg: self.kg + o.kg,
            low: self.low + o.low,
            high: self.high + o.high,
        }
    }
}

/// One row of the embodied table: a class of GPU, the names that select it, its figures and
/// where they come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuEmbodied {
    /// Lower-case fragments of the model name (NVML's `NVIDIA A100-SXM4-80GB`, `estimate`'s
    /// `NVIDIA A100 SXM`); the first row with a fragment in the name wins.
    pub matches: &'static [&'static str],
    pub class: &'static str,
    pub te: EmbodiedKg,
    pub source: &'static str,
}

/// Embodied emissions per GPU card, cradle to gate, by model (overridable with
/// `--embodied-kg` / `embodied_kg`). Published figures for the same card disagree by 2× and
/// more, so each row carries its band:
/// - BLOOM paper (Luccioni et al., JMLR 2023): 150 kg per A100 (SXM4 80 GB, Jean Zay nodes).
/// - Chien et al., "Reducing the Carbon Impact of Generative AI Inference (today and in 2035)",
///   HotCarbon '23: 318 kg per A100, an eighth of an 8-GPU instance's hardware (host included).
/// - ADEME / Hubblo parametric GPU model (Lees-Perasso, Ekchajzer, Roussilhe & De Latour, "Life
///   cycle assessments of GPUs for artificial intelligence", ADEME 2026): 181 kg for an A100
///   PCIe 40 GB, inside the band above.
/// - EcoInfo (CNRS) Ecodiag: 60 kg for a "powerful GPU" (graphics card), relative uncertainty
///   hypot(0.6, 0.6) ≈ 0.85, so 9–111 kg.
///
/// No model-specific LCA has been published for the other data-centre parts (H100, H200, L40S,
/// MI300X, …): they take BLOOM's 150 kg with the whole published range, Ecodiag's 60 kg to
/// Chien's 318 kg.
pub const GPU_EMBODIED: &[GpuEmbodied] = &[
    GpuEmbodied {
        matches: &["a100"],
        class: "NVIDIA A100",
        te: EmbodiedKg {
            kg: 150.0,
            low: 150.0,
            high: 318.0,
        },
        source: "BLOOM (Luccioni et al. 2023) 150 kg; Chien et al. HotCarbon'23 318 kg",
    },
    GpuEmbodied {
        matches: &["geforce", "rtx", "titan", "quadro"],
        class: "graphics card",
        te: EmbodiedKg {
            kg: 60.0,
            low: 9.0,
            high: 111.0,
        },
        source: "EcoInfo Ecodiag 60 kg ± 85%",
    },
    GpuEmbodied {
        matches: &[""],
        class: "data-centre GPU",
        te: EmbodiedKg {
            kg: EMBODIED_KG_PER_GPU,
            low: 60.0,
            high: 318.0,
        },
        source: "BLOOM 150 kg; range Ecodiag 60 kg – Chien et al. 318 kg",
    },
];

/// The embodied row for a GPU model name (never fails: the last row takes any name).
pub fn gpu_embodied(model: &str) -> &'static GpuEmbodied {
    let m = model.to_ascii_lowercase();
    GPU_EMBODIED
        .iter()
        .find(|r| r.matches.iter().any(|f| m.contains(f)))
        .unwrap_or(&GPU_EMBODIED[GPU_EMBODIED.len() - 1])
}

/// TE of a machine: its GPUs by model and `servers` servers without GPUs (BLOOM's 2,500 kg).
pub fn machine_embodied<S: AsRef<str>>(gpu_models: &[S], servers: usize) -> EmbodiedKg {
    gpu_models.iter().fold(
        EmbodiedKg::exact(servers as f64 * EMBODIED_KG_PER_SERVER),
        |acc, m| acc.add(gpu_embodied(m.as_ref()).te),
    )
}

/// Embodied carbon attributed to a run (g): the Software Carbon Intensity's
/// M = TE × (run time / expected lifetime) (Green Software Foundation SCI spec; lifetime from
/// the BLOOM paper), for TE in kg.
pub fn embodied_g_of(te_kg: f64, run_secs: f64) -> f64 {
    let life_s = HARDWARE_LIFETIME_YEARS * 365.25 * 86_400.0;
    te_kg * 1000.0 * run_secs.max(0.0) / life_s
}

/// Error of NVML's power and energy readings, relative: "accurate to within +/- 5% of current
/// power draw" (NVIDIA, NVML API Reference, `nvmlDeviceGetPowerUsage`). The band of GPU energy.
pub const NVML_POWER_ERROR: f64 = 0.05;
/// Error band carbontop gives RAPL's package and DRAM energy, relative. Khan, Hirki, Niemi,
/// Nurminen & Ou, "RAPL in Action: Experiences in Using RAPL for Power Measurements" (ACM
/// TOMPECS 3(2), 2018) found both tracking a plug meter closely from Haswell on (correlation
/// 0.99), but not on every workload and P-state; ±5% is the envelope taken here, as NVML's.
pub const RAPL_ERROR: f64 = 0.05;

/// Joules per kilowatt-hour (exact).
pub const J_PER_KWH: f64 = 3.6e6;

/// Bytes per GB as the network constants count them (decimal).
pub const BYTES_PER_GB: f64 = 1e9;

/// PUE presets. Green Algorithms v3 reference values (Uptime Institute 2024 survey for the
/// unknown data centre; providers' own published figures for the clouds).
pub const PUE_PRESETS: &[(&str, f64)] = &[
    ("local", 1.0),
    ("gcp", 1.12),
    ("aws", 1.2),
    ("azure", 1.12),
    ("datacenter", 1.56),
];

/// CPU power estimate (W) from a TDP and a machine load in 0..=1 (CodeCarbon 3.x load curve).
pub fn cpu_estimate_power_w(tdp_w: f64, load: f64) -> f64 {
    let load = load.clamp(0.0, 1.0);
    tdp_w * (CPU_IDLE_SHARE + (1.0 - CPU_IDLE_SHARE) * load.powi(3))
}

/// TDP (W) assumed for a CPU model missing from the table (CodeCarbon 3.x: 4 W per thread).
pub fn unknown_cpu_tdp_w(threads: usize) -> f64 {
    CPU_UNKNOWN_W_PER_THREAD * threads.max(1) as f64
}

/// Memory power estimate (W) for `bytes` of memory at `w_per_gib` (Green Algorithms; for memory
/// a job requested, not a machine's installed memory).
pub fn memory_power_w(bytes: u64, w_per_gib: f64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 * w_per_gib
}

/// The band of the CPU estimate at machine load `load` (0–1), as factors of
/// [`cpu_estimate_power_w`]'s value: the spread of CodeCarbon's own CPU models for the same TDP
/// and load — its 3.x curve 0.1 + 0.9 × load³, its linear model max(load, 0.1)
/// (`CPU._calculate_power_from_cpu_load`, the 2.x load model) and its constant mode 0.5 —
/// with the low end scaled by `tdp_low_factor` (≤ 1: a lower TDP that is as plausible, e.g. a
/// VM's own threads at 4 W each instead of the host CPU's whole TDP).
pub fn cpu_estimate_band(load: f64, tdp_low_factor: f64) -> (f64, f64) {
    let load = load.clamp(0.0, 1.0);
    let curve = CPU_IDLE_SHARE + (1.0 - CPU_IDLE_SHARE) * load.powi(3);
    let models = [curve, load.max(CPU_IDLE_SHARE), CPU_CONSTANT_SHARE];
    let lo = models.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = models.iter().copied().fold(0.0, f64::max);
    (lo / curve * tdp_low_factor.clamp(0.0, 1.0), hi / curve)
}

/// CodeCarbon 3.x's guess of the number of memory modules from the memory size in GiB
/// (`RAM._estimate_dimm_count`, `codecarbon/external/ram.py`), reproduced exactly, its jumps
/// included (192 GiB → 12 modules but 256 GiB → 8, as 256/8 fits 32 GiB modules):
/// ≤ 2 GiB: 1; ≤ 16: 2; ≤ 64: 4; ≤ 128: 8; above, ⌈size / s⌉ capped at 32 for the largest
/// common module size s ∈ {128, 64, 32, 16, 8, 4} GiB with s ≤ size / 8.
pub fn dimm_count_from_size(gib: f64) -> usize {
    if gib <= 2.0 {
        1
    } else if gib <= 16.0 {
        2
    } else if gib <= 64.0 {
        4
    } else if gib <= 128.0 {
        8
    } else {
        [128.0, 64.0, 32.0, 16.0, 8.0, 4.0]
            .iter()
            .find(|&&s| s <= gib / 8.0)
            .map_or(8, |&s| ((gib / s).ceil() as usize).min(32))
    }
}

/// Memory power (W) of `dimms` modules at `w_per_dimm` each, with CodeCarbon 3.x's taper
/// (`RAM._calculate_ram_power`): full power for the first 4 modules, 90 % for the 5th–8th, 80 %
/// for the 9th–16th, 70 % beyond.
pub fn memory_modules_power_w(dimms: usize, w_per_dimm: f64) -> f64 {
    let tiers = [(4, 1.0), (4, 0.9), (8, 0.8), (usize::MAX, 0.7)];
    let mut left = dimms;
    let mut w = 0.0;
    for (n, share) in tiers {
        let k = left.min(n);
        w += k as f64 * w_per_dimm * share;
        left -= k;
    }
    w
}

/// Energy (J) to move `bytes` over the network at `kwh_per_gb`.
pub fn network_energy_j(bytes: u64, kwh_per_gb: f64) -> f64 {
    bytes as f64 / BYTES_PER_GB * kwh_per_gb * J_PER_KWH
}

/// A physical bound on a figure the user configures or carbontop infers: beyond it the figure
/// describes no machine, and what is computed from it would be nonsense or infinite (issue 20:
/// `--cpu-tdp 1e308` gave 300-digit figures). Each bound below says why it is where it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// What the figure is, for the message ("a CPU TDP").
    pub what: &'static str,
    pub unit: &'static str,
    pub min: f64,
    /// Whether `min` itself is allowed (0 W is no TDP; 0 kg leaves embodied carbon out).
    pub min_ok: bool,
    pub max: f64,
}

impl Bound {
    /// `v` when it is within the bound; else why not, in words that say the range (the caller
    /// quotes the value and where it was given).
    pub fn check(&self, v: f64) -> Result<f64, String> {
        let above_min = v > self.min || (self.min_ok && v == self.min);
        if v.is_finite() && above_min && v <= self.max {
            Ok(v)
        } else {
            Err(format!("{} is {}", self.what, self.range()))
        }
    }

    /// A value as an error quotes it: `1e308`, not its 309 digits.
    pub fn show(v: f64) -> String {
        if v != 0.0 && v.is_finite() && !(1e-6..1e15).contains(&v.abs()) {
            format!("{v:e}")
        } else {
            v.to_string()
        }
    }

    /// "from 0 to 10 W/GiB", "above 0 and at most 8000 W".
    pub fn range(&self) -> String {
        let u = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        if self.min_ok {
            format!("from {} to {}{u}", self.min, self.max)
        } else {
            format!("above {} and at most {}{u}", self.min, self.max)
        }
    }
}

/// PUE: 1 is no overhead; the Uptime Institute's surveys put the worst data centres near 2.5
/// (2007's industry average) and today's average at 1.56, so a PUE above 3 is no facility's.
/// Bounds `--pue`, `pue`, and the PUE a replay infers from a recording.
pub const PUE_BOUND: Bound = Bound {
    what: "a PUE",
    unit: "",
    min: 1.0,
    min_ok: true,
    max: 3.0,
};

/// `--cpu-tdp` is the machine's CPUs together: no CPU's TDP reaches 1,000 W per socket (the
/// largest, EPYC 9965 and Xeon 6980P, are 500 W) and servers have at most 8 sockets.
/// `--net-link-gbps`: the fastest Ethernet port standardised is 1.6 Tb/s (IEEE 802.3dj).
pub const LINK_GBPS_BOUND: Bound = Bound {
    what: "a link speed",
    unit: "Gb/s",
    min: 0.0,
    min_ok: false,
    max: 1600.0,
};

/// `--net-port-w`: a NIC port and its switch port at line rate draw tens of watts at 400 GbE
/// with optics (the port model's table); 200 W is beyond any pair of ports.
pub const PORT_W_BOUND: Bound = Bound {
    what: "a port's power",
    unit: "W",
    min: 0.0,
    min_ok: true,
    max: 200.0,
};

pub const CPU_TDP_BOUND: Bound = Bound {
    what: "a CPU TDP",
    unit: "W",
    min: 0.0,
    min_ok: false,
    max: 8000.0,
};

/// `memory_w_per_gib`: DDR4/DDR5 draw about 0.3–0.4 W per GiB (Green Algorithms' 0.3725);
/// even the oldest DIMMs drew under 2 W/GiB, so 10 W/GiB is memory no machine has.
pub const MEMORY_W_PER_GIB_BOUND: Bound = Bound {
    what: "memory power",
    unit: "W/GiB",
    min: 0.0,
    min_ok: true,
    max: 10.0,
};

/// `--net-kwh-per-gb`: today's published figures span 0.001–0.069 kWh/GB; the highest ever
/// published is 136 kWh/GB, for the Internet of 2000 (reviewed by Aslan et al., J. Ind. Ecol.
/// 2018). Above 200 no estimate exists.
pub const NET_KWH_PER_GB_BOUND: Bound = Bound {
    what: "a network energy intensity",
    unit: "kWh/GB",
    min: 0.0,
    min_ok: true,
    max: 200.0,
};

/// `--embodied-kg`: one server is about 2,500 kg (BLOOM) and a GPU 60–318 kg, so an 8-GPU
/// machine is under 5 t; 100 t per machine is twenty of them.
pub const EMBODIED_KG_BOUND: Bound = Bound {
    what: "a machine's embodied carbon",
    unit: "kg",
    min: 0.0,
    min_ok: true,
    max: 100_000.0,
};

/// `--intensity` (gCO2e/kWh): 0 is an all-renewable or nuclear grid; the dirtiest (lignite)
/// plants emit about 1,100–1,200 g/kWh over their life cycle, and marginal rates (WattTime's
/// MOER) stay below 1,000, so no grid averages 2,000.
pub const INTENSITY_BOUND: Bound = Bound {
    what: "a grid intensity",
    unit: "gCO2e/kWh",
    min: 0.0,
    min_ok: true,
    max: 2000.0,
};

/// `--cap-step`: how far a key press moves a GPU's power cap. No GPU's cap range spans more
/// than about 1,000 W (a B200's is 200–1,000 W).
pub const CAP_STEP_BOUND: Bound = Bound {
    what: "a cap step",
    unit: "W",
    min: 0.0,
    min_ok: false,
    max: 1000.0,
};

/// `--epochs`: the longest published trainings run a few thousand epochs; a million is no
/// run's, and the forecast's time to the end would overflow long before 1e308.
pub const EPOCHS_BOUND: Bound = Bound {
    what: "a number of epochs",
    unit: "",
    min: 0.0,
    min_ok: false,
    max: 1e6,
};

/// `estimate --hours`: a century of running is beyond any hardware's life (6 years here).
pub const HOURS_BOUND: Bound = Bound {
    what: "a run time",
    unit: "h",
    min: 0.0,
    min_ok: false,
    max: 876_600.0,
};

/// `estimate --serve-days`: a century of deployment is beyond any hardware's life.
pub const DAYS_BOUND: Bound = Bound {
    what: "a deployment time",
    unit: "days",
    min: 0.0,
    min_ok: false,
    max: 36_525.0,
};

/// `estimate --queries-per-day`, `--queries`: a trillion a day is a thousand times the largest
/// search engine's published daily queries (Google, about 8.5 billion a day in 2024).
pub const QUERIES_BOUND: Bound = Bound {
    what: "a query count",
    unit: "queries",
    min: 0.0,
    min_ok: false,
    max: 1e12,
};

/// `estimate --wh-per-query`: a query answered by a whole 8-GPU server for an hour is about
/// 10 kWh; published LLM figures are 0.3–3 Wh (Epoch AI 2025; de Vries, Joule 2023).
pub const WH_PER_QUERY_BOUND: Bound = Bound {
    what: "an energy per query",
    unit: "Wh",
    min: 0.0,
    min_ok: false,
    max: 10_000.0,
};

/// `--site transport=`: the Impact Framework's energy transport factor (nn-c divides the
/// intensity by it); below a half, more is lost than delivered.
pub const TRANSPORT_BOUND: Bound = Bound {
    what: "an energy transport factor",
    unit: "",
    min: 0.5,
    min_ok: true,
    max: 1.0,
};

/// `estimate --memory-gib` (per 8-GPU server): the largest servers hold 32 TiB.
pub const SERVER_MEMORY_GIB_BOUND: Bound = Bound {
    what: "a server's memory",
    unit: "GiB",
    min: 0.0,
    min_ok: true,
    max: 65_536.0,
};

/// A duration (`--duration`, `--grid-poll`, `--governor-profile`): above 0 and at most about
/// 31 years (1e9 s), longer than any run or hardware life.
pub const MAX_DURATION_S: f64 = 1e9;

/// Replay speed: from 1/1,000 of real time (a 1 s row every 17 min) to a million times (a
/// year in 30 s; `max` is faster still). Beyond them a row's wait is no useful time.
pub const SPEED_BOUND: Bound = Bound {
    what: "a replay speed",
    unit: "×",
    min: 0.001,
    min_ok: true,
    max: 1e6,
};

/// Looks up a PUE preset by name (case-insensitive).
pub fn pue_preset(name: &str) -> Option<f64> {
    PUE_PRESETS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_curve_spans_idle_to_tdp() {
        assert_eq!(cpu_estimate_power_w(100.0, 0.0), 10.0);
        assert_eq!(cpu_estimate_power_w(100.0, 1.0), 100.0);
        assert!((cpu_estimate_power_w(100.0, 0.5) - 21.25).abs() < 1e-12);
        // Out-of-range loads are clamped, never extrapolated.
        assert_eq!(cpu_estimate_power_w(100.0, 7.0), 100.0);
    }

    #[test]
    fn memory_and_network_constants() {
        assert!((memory_power_w(16 << 30, MEMORY_W_PER_GIB) - 5.96).abs() < 1e-12);
        // 1 GB at 0.06894 kWh/GB = 248,184 J.
        assert!(
            (network_energy_j(1_000_000_000, NETWORK_KWH_PER_GB_HIGH) - 248_184.0).abs() < 1e-6
        );
        assert_eq!(unknown_cpu_tdp_w(2), 8.0);
        assert!((DIMM_W_HIGH - 5.333_333_333_333_333).abs() < 1e-12);
        assert_eq!(pue_preset("AWS"), Some(1.2));
        assert_eq!(pue_preset("nowhere"), None);
    }

    #[test]
    fn the_port_model_is_bounded_by_the_ports_at_line_rate() {
        let m = PortModel::default();
        // A virtual NIC (speed unknown): the stated 10 GbE class.
        let vm = m.bound(Some(crate::sample::Links {
            known: 0,
            known_gbps: 0.0,
            unknown: 1,
        }));
        assert_eq!((vm.gbps, vm.w, vm.assumed), (10.0, 7.5, true));
        // 1 GB in one second is 8 Gb/s: 80% of the line, 6 W; the same at 30 Gb/s (faster than
        // the line, as a veth allows) is held at the ports' 7.5 W.
        let (w, lo, hi) = vm.power_w(1_000_000_000, 1.0);
        assert!((w - 6.0).abs() < 1e-12 && (lo - 2.4).abs() < 1e-12 && (hi - 8.8).abs() < 1e-12);
        assert_eq!(vm.power_w(30_000_000_000 / 8, 1.0).0, 7.5);
        assert_eq!(vm.power_w(u64::MAX, 1e-9).0, 7.5);
        assert_eq!(vm.power_w(1, 0.0).0, 0.0);
        // 1 GB over 10 minutes: about 10 mW, where 0.069 kWh/GB said 414 W.
        assert!((vm.power_w(1_000_000_000, 600.0).0 - 0.01).abs() < 1e-12);
        // Two known 100 GbE links: 200 Gb/s, 40 W at line rate.
        let two = m.bound(Some(crate::sample::Links {
            known: 2,
            known_gbps: 200.0,
            unknown: 0,
        }));
        assert_eq!((two.gbps, two.w, two.assumed), (200.0, 40.0, false));
        // Nothing known (a replay): one link of the assumed class; --net-port-w overrides.
        assert_eq!(m.bound(None).w, 7.5);
        let o = PortModel {
            assumed_gbps: 25.0,
            port_w: Some(12.0),
        };
        assert_eq!((o.bound(None).gbps, o.bound(None).w), (25.0, 12.0));
    }

    #[test]
    fn rdma_ports_are_bounded_by_their_ib_class_at_line_rate() {
        let m = PortModel::default();
        // Two HDR ports: 400 Gb/s, 46 W at line rate.
        let b = m.bound_rdma(2, 2, 400.0);
        assert_eq!(
            (b.gbps, b.w, b.low_w, b.high_w, b.assumed),
            (400.0, 46.0, 30.0, 70.0, false)
        );
        // A 10 Gb/s NCCL burst for 1 s on them: a fortieth of line rate.
        let (w, _, _) = b.power_w(10_000_000_000 / 8, 1.0);
        assert!((w - 46.0 / 40.0).abs() < 1e-9, "{w}");
        // Far more bytes than the links carry: never above the ports at line rate.
        assert_eq!(b.power_w(u64::MAX / 2, 1.0).0, 46.0);
        // Rate unknown: HDR assumed, and said.
        let u = m.bound_rdma(1, 0, 0.0);
        assert_eq!((u.gbps, u.w, u.assumed), (200.0, 23.0, true));
        // NDR and in between.
        assert_eq!(rdma_class_w(400.0), (35.0, 24.0, 60.0));
        let mid = rdma_class_w(300.0).0;
        assert!(23.0 < mid && mid < 33.0, "{mid}");
    }

    #[test]
    fn port_classes_interpolate_monotonically_inside_their_bands() {
        let mut prev = 0.0;
        for g in [
            0.1, 1.0, 2.5, 10.0, 25.0, 40.0, 50.0, 100.0, 200.0, 400.0, 800.0,
        ] {
            let (w, lo, hi) = port_class_w(g);
            assert!(w >= prev && lo <= w && w <= hi, "{g}: {lo} {w} {hi}");
            prev = w;
        }
        assert_eq!(port_class_w(10.0), (7.5, 3.0, 11.0));
        assert_eq!(port_class_w(-1.0), port_class_w(ASSUMED_LINK_GBPS));
        assert_eq!(port_class_w(800.0).0, 80.0);
    }

    #[test]
    fn embodied_amortises_over_six_years() {
        // One server with 8 A100s for its whole life: all of 3,700 kg.
        let life = 6.0 * 365.25 * 86_400.0;
        let te = machine_embodied(&["A100"; 8], 1).kg;
        assert!((embodied_g_of(te, life) - 3_700_000.0).abs() < 1e-6);
        // One GPU for one hour.
        let one = embodied_g_of(EMBODIED_KG_PER_GPU, 3600.0);
        assert!((one - 150_000.0 / (6.0 * 365.25 * 24.0)).abs() < 1e-9);
        assert_eq!(embodied_g_of(100.0, -5.0), 0.0);
    }

    #[test]
    fn embodied_table_picks_the_model_and_sums_the_band() {
        assert_eq!(gpu_embodied("NVIDIA A100-SXM4-80GB").class, "NVIDIA A100");
        assert_eq!(gpu_embodied("NVIDIA A100 PCIe").te.high, 318.0);
        assert_eq!(gpu_embodied("NVIDIA GeForce RTX 4090").te.kg, 60.0);
        assert_eq!(
            gpu_embodied("NVIDIA H100 80GB HBM3").class,
            "data-centre GPU"
        );
        assert_eq!(gpu_embodied("").te.kg, 150.0);
        // 2 A100s, a H100 and one server: 150+150+150+2500; low 150+150+60+2500; high 318·2+318+2500.
        let m = machine_embodied(&["NVIDIA A100-SXM4-40GB", "A100", "H100"], 1);
        assert_eq!((m.kg, m.low, m.high), (2950.0, 2860.0, 3454.0));
        let (lo, hi) = m.band_factors().unwrap();
        assert!((lo - 2860.0 / 2950.0).abs() < 1e-12 && (hi - 3454.0 / 2950.0).abs() < 1e-12);
        // A server alone has one figure: no band.
        assert_eq!(machine_embodied::<&str>(&[], 1).band_factors(), None);
        assert_eq!(EmbodiedKg::exact(0.0).band_factors(), None);
    }

    #[test]
    fn memory_modules_as_codecarbon_counts_them() {
        // CodeCarbon 3.3.2's RAM()._estimate_dimm_count and _calculate_ram_power (x86), run on
        // these sizes: (GiB, modules, W).
        let cc = [
            (1.0, 1, 10.0),
            (2.0, 1, 10.0),
            (3.8, 2, 10.0),
            (8.0, 2, 10.0),
            (15.6, 2, 10.0),
            (16.0, 2, 10.0),
            (23.54, 4, 20.0),
            (32.0, 4, 20.0),
            (64.0, 4, 20.0),
            (96.0, 8, 38.0),
            (128.0, 8, 38.0),
            (192.0, 12, 54.0),
            (256.0, 8, 38.0),
            (384.0, 12, 54.0),
            (512.0, 8, 38.0),
            (768.0, 12, 54.0),
            (1024.0, 8, 38.0),
            (1536.0, 12, 54.0),
            (2048.0, 16, 70.0),
            (4096.0, 32, 126.0),
        ];
        for (gib, n, w) in cc {
            assert_eq!(dimm_count_from_size(gib), n, "{gib} GiB");
            let got = memory_modules_power_w(n, DIMM_W_X86).max(MEMORY_MIN_W_X86);
            assert!(
                (got - w).abs() < 1e-9,
                "{gib} GiB: {got} W, CodeCarbon {w} W"
            );
        }
        assert_eq!(memory_modules_power_w(0, DIMM_W_X86), 0.0);
        assert!((memory_modules_power_w(40, 1.0) - (4.0 + 3.6 + 6.4 + 24.0 * 0.7)).abs() < 1e-9);
    }

    #[test]
    fn cpu_band_spans_codecarbons_models() {
        // Full load: the curve and the linear model say TDP, constant mode half of it.
        assert_eq!(cpu_estimate_band(1.0, 1.0), (0.5, 1.0));
        // Idle: the curve's 10 % is the lowest; constant mode's 50 % is 5× it.
        let (lo, hi) = cpu_estimate_band(0.0, 1.0);
        assert!((lo - 1.0).abs() < 1e-12 && (hi - 5.0).abs() < 1e-12);
        // Half load: curve 0.2125, linear 0.5, constant 0.5.
        let (lo, hi) = cpu_estimate_band(0.5, 0.25);
        assert!((lo - 0.25).abs() < 1e-12 && (hi - 0.5 / 0.2125).abs() < 1e-12);
    }

    #[test]
    fn equivalents() {
        // 11 kg is one tree-year.
        assert!((tree_days(11_000.0) - 365.0).abs() < 1e-9);
        assert!((car_km(175.0) - 1.0).abs() < 1e-12);
    }
}
