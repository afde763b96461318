//! The embedded annual grid intensity tables: the offline default and every live provider's
//! fallback. Copies of the data files are in `data/grid/` (attributions in its README.md),
//! embedded with `include_str!` and parsed at first use:
//!
//! - 213 countries by ISO 3166-1 alpha-2 (`FR`; alpha-3 `FRA` also accepted): Our World in
//!   Data's `carbon_intensity_elec` (Ember and Energy Institute data, CC BY 4.0), life-cycle,
//!   each for its own year (mostly 2022 and 2023).
//! - US states (`US-CA`, ISO 3166-2:US): EPA eGRID2023, emissions at the plant (combustion),
//!   not life-cycle.
//! - Canadian provinces and territories (`CA-QC`, ISO 3166-2:CA): the generation mix of
//!   CodeCarbon 3.3.2's data priced with IPCC AR5 life-cycle medians (`LIFE_CYCLE_FACTORS`).
//! - Google Cloud regions (`gcp:europe-west1`): Google's own 2023 grid figures (operational).
//! - AWS and Azure regions (`aws:us-east-1`, `azure:westeurope`): the figure of the country or
//!   US state or Canadian province they stand in, per the providers' public region lists.
//! - WORLD, the last resort when no zone is known: 436 g/kWh, Ember's 2022 world mean
//!   (Global Electricity Review 2023, via OWID, life-cycle). CodeCarbon's default is 475 g/kWh
//!   (IEA, Global Energy & CO2 Status Report 2019).
//!
//! Every value is an annual mean; the intensity at the hours of a run differs. Each carries the
//! band [`GRID_TABLE_BAND`] (×0.7–1.3, from Miller, Novan & Jenn 2022: annual-average against
//! hourly accounting of consumed electricity; one published figure applied to every zone alike,
//! see `engine::constants`), which the Ledger applies to the carbon of every tick priced from
//! the table ([`Entry::band_g`]); a live provider's value carries none.
//!
//! Live providers' sub-zones that are not table zones are placed in their US state or country
//! (`CAISO_NORTH` → `US-CA`, `US-MIDA-PJM` → `US`, `DK-DK2` → `DK`) from a cited table of US
//! balancing authorities (`data/grid/us_balancing_authorities.csv`), so a fallback is never the
//! world mean when the place is known. Every entry says its basis ([`Basis`]); the bases differ
//! (eGRID's and Google's are not life-cycle), and every description carries its label.

mod data;
mod suggest;

pub use data::{Alias, AliasKind, LB_PER_MWH_TO_G_PER_KWH, LIFE_CYCLE_FACTORS};

use super::GridSource;
use crate::engine::constants::GRID_TABLE_BAND;
use crate::sample::{Intensity, SourceKind};
use chrono::{DateTime, Utc};

/// What an intensity counts: never mixed silently, so every description names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// Whole life cycle of the generators (fuel chain, construction): OWID/Ember, the Canadian
    /// mix × IPCC AR5 factors, Electricity Maps' default.
    LifeCycle,
    /// Direct emissions at the plant, from combustion: EPA eGRID.
    Combustion,
    /// A provider's own operational (direct) figure for the grid it draws from: Google Cloud's
    /// region data, the GB Carbon Intensity API.
    Operational,
    /// The marginal generator's emissions (WattTime MOER), not an average.
    Marginal,
}

impl Basis {
    /// Short label for descriptions.
    pub fn label(self) -> &'static str {
        match self {
            Basis::LifeCycle => "life-cycle",
            Basis::Combustion => "combustion at the plant",
            Basis::Operational => "operational, provider's own",
            Basis::Marginal => "marginal",
        }
    }

    /// One word, for listings and JSON.
    pub fn key(self) -> &'static str {
        match self {
            Basis::LifeCycle => "lifecycle",
            Basis::Combustion => "combustion",
            Basis::Operational => "operational",
            Basis::Marginal => "marginal",
        }
    }
}

/// Where an entry's figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// OWID `carbon_intensity_elec` (Ember, Energy Institute), CC BY 4.0.
    Owid,
    /// EPA eGRID2023, state annual CO2e total output emission rate (STC2ERTA).
    Egrid,
    /// CodeCarbon 3.3.2's provincial generation mix × IPCC AR5 life-cycle factors.
    CanadaMix,
    /// Google Cloud's region carbon data (cloud.google.com/sustainability/region-carbon).
    Google,
    /// Ember's world mean (Global Electricity Review 2023) via OWID, CC BY 4.0.
    EmberWorld,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Owid => "OWID/Ember, CC BY 4.0",
            Source::Egrid => "EPA eGRID2023",
            Source::CanadaMix => "provincial mix (CodeCarbon 3.3.2) × IPCC AR5 factors",
            Source::Google => "Google Cloud region data",
            Source::EmberWorld => "Ember world mean via OWID, CC BY 4.0",
        }
    }
}

/// The country a zone is in, as emissions.csv names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    /// ISO 3166-1 alpha-2; empty for WORLD.
    pub iso2: String,
    /// ISO 3166-1 alpha-3 (CodeCarbon's `country_iso_code`); `WORLD` for the world row.
    pub iso3: String,
    /// OWID's short name (`United States`, `South Korea`).
    pub name: String,
}

/// One zone of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The zone code: `FR`, `US-CA`, `CA-QC`, `gcp:europe-west1`, `aws:us-east-1`, `WORLD`.
    pub zone: String,
    /// A country's ISO alpha-3 code, also accepted as its zone.
    pub alpha3: Option<String>,
    /// `France`, `California`, `Quebec`, `Google Cloud europe-west1`, `AWS us-east-1`.
    pub name: String,
    /// Below the country: the state or province, or a cloud region's site.
    pub region: Option<String>,
    pub country: Country,
    pub g_per_kwh: f64,
    /// The year the figure is for.
    pub year: u16,
    pub source: Source,
    pub basis: Basis,
    /// An AWS or Azure region: the zone (and its name) whose figure it takes.
    pub stands_in: Option<(String, String)>,
}

/// A figure as descriptions show it: whole numbers bare, else one decimal.
pub fn fmt_g(g: f64) -> String {
    if (g - g.round()).abs() < 1e-9 {
        format!("{g:.0}")
    } else {
        format!("{g:.1}")
    }
}

impl Entry {
    /// The low and high ends of the intensity at the hours of a run, as the table's band gives
    /// them around this annual mean (g/kWh).
    pub fn band_g(&self) -> (f64, f64) {
        let (lo, hi) = GRID_TABLE_BAND;
        (self.g_per_kwh * lo, self.g_per_kwh * hi)
    }

    /// `US-CA California 179.1 gCO2e/kWh (2023 annual mean, combustion at the plant; EPA
    /// eGRID2023)`.
    pub fn describe(&self) -> String {
        let place = match (&self.stands_in, &self.region) {
            (Some((z, n)), Some(r)) => format!(" ({r}), in {z} {n}:"),
            (Some((z, n)), None) => format!(", in {z} {n}:"),
            (None, Some(r)) if *r != self.name => format!(" ({r})"),
            _ => String::new(),
        };
        format!(
            "{} {}{place} {} gCO2e/kWh ({} annual mean, {}; {})",
            self.zone,
            self.name,
            fmt_g(self.g_per_kwh),
            self.year,
            self.basis.label(),
            self.source.label()
        )
    }

    /// `179.1 g/kWh, combustion at the plant` with the zone: for status lines.
    pub fn short(&self) -> String {
        format!(
            "{} {} g/kWh, {}",
            self.zone,
            fmt_g(self.g_per_kwh),
            self.basis.label()
        )
    }
}

/// A zone as given, and the entry it reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub entry: &'static Entry,
    /// How the zone given led there when it is not the entry's own code
    /// (`CAISO_NORTH (California ISO sub-region)`, `DK-DK2 (not in the table: its country)`).
    pub via: Option<String>,
}

impl Resolved {
    fn exact(entry: &'static Entry) -> Self {
        Self { entry, via: None }
    }

    pub fn describe(&self) -> String {
        match &self.via {
            Some(v) => format!("{v} → {}", self.entry.describe()),
            None => self.entry.describe(),
        }
    }
}

/// Whose names win where a code means two things (WattTime's `SC` is Santee Cooper in South
/// Carolina; the table's `SC` is the Seychelles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Names {
    /// Table zones first, then providers' zones.
    #[default]
    Table,
    /// WattTime regions and balancing authorities first.
    WattTime,
}

/// The zone as the tables key it: trimmed, upper case, `google:` read as `gcp:`.
fn key(zone: &str) -> String {
    let z = zone.trim();
    if let Some((p, r)) = z.split_once(':') {
        let p = p.trim().to_ascii_uppercase();
        let p = if p == "GOOGLE" { "GCP".to_owned() } else { p };
        return format!("{p}:{}", r.trim().to_ascii_uppercase());
    }
    z.to_ascii_uppercase()
}

/// The world row: the last resort.
pub fn world() -> &'static Entry {
    static WORLD: std::sync::OnceLock<Entry> = std::sync::OnceLock::new();
    data::table()
        .get("WORLD")
        .unwrap_or_else(|| WORLD.get_or_init(data::world))
}

/// Every entry, in table order: countries, US states, Canadian provinces, Google Cloud, AWS,
/// Azure, WORLD.
pub fn entries() -> &'static [Entry] {
    &data::table().entries
}

/// The providers' zones the tables place (balancing authorities, WattTime regions).
pub fn aliases() -> &'static [Alias] {
    &data::table().aliases
}

/// Rows of the embedded files that did not parse (empty; a unit test keeps it so).
pub fn problems() -> &'static [String] {
    &data::table().problems
}

/// A table zone by its own code (or a country's alpha-3), case-insensitive.
pub fn lookup(zone: &str) -> Option<&'static Entry> {
    data::table().get(&key(zone))
}

fn via_alias(given: &str, a: &Alias) -> Option<Resolved> {
    Some(Resolved {
        entry: data::table().get(&a.zone)?,
        via: Some(format!("{} ({})", given.trim(), a.name)),
    })
}

/// A provider's zone placed through the balancing-authority table: a WattTime region or EIA
/// code, an Electricity Maps US zone (`US-<area>-<EIA code>`), a `US-HI-OA` / `CA-NL-NF`
/// sub-zone of a state or province, or a WattTime ISO sub-region by its prefix.
fn alias(given: &str, k: &str) -> Option<Resolved> {
    if k.contains(':') || k.is_empty() {
        return None;
    }
    let t = data::table();
    let find = |code: &str, kinds: &[AliasKind]| {
        t.aliases
            .iter()
            .find(|a| a.code == code && kinds.contains(&a.kind))
    };
    if let Some(a) = find(k, &[AliasKind::WattTime, AliasKind::Eia]) {
        return via_alias(given, a);
    }
    let parts: Vec<&str> = k.split('-').collect();
    if let [country, sub, .., last] = parts.as_slice() {
        if *country == "US"
            && let Some(a) = find(last, &[AliasKind::Eia])
        {
            return via_alias(given, a);
        }
        if let Some(e) = t.get(&format!("{country}-{sub}")) {
            return Some(Resolved {
                entry: e,
                via: Some(format!("{} (in {})", given.trim(), e.name)),
            });
        }
    }
    t.aliases
        .iter()
        .filter(|a| a.kind == AliasKind::WattTimePrefix)
        .find(|a| k.len() > a.code.len() && k.starts_with(&a.code))
        .and_then(|a| via_alias(given, a))
}

/// A sub-zone the tables do not know, placed in its country by its first part (`DK-DK2`,
/// `SE_SE3`, `GB-13`).
fn country_prefix(given: &str, k: &str) -> Option<Resolved> {
    if k.contains(':') {
        return None;
    }
    let head = k.split(['-', '_']).next()?;
    if head.len() == k.len() {
        return None;
    }
    let e = lookup(head)?;
    e.alpha3.as_ref()?;
    Some(Resolved {
        entry: e,
        via: Some(format!("{} (not in the table: its country)", given.trim())),
    })
}

/// Places a zone, for fallbacks and country columns: a table zone, a provider's zone in its US
/// state or Canadian province, or a sub-zone in its country. None if nothing fits.
pub fn place(zone: &str, names: Names) -> Option<Resolved> {
    let k = key(zone);
    if k.is_empty() {
        return None;
    }
    let exact = || data::table().get(&k).map(Resolved::exact);
    match names {
        Names::Table => exact().or_else(|| alias(zone, &k)),
        Names::WattTime => alias(zone, &k).or_else(exact),
    }
    .or_else(|| country_prefix(zone, &k))
}

/// A live provider's fallback for its zone: its place, else (no zone, or one that fits
/// nowhere) the world mean, saying so.
pub fn fallback_for(zone: Option<&str>, names: Names) -> Resolved {
    match zone {
        None => Resolved::exact(world()),
        Some(z) => place(z, names).unwrap_or_else(|| Resolved {
            entry: world(),
            via: Some(format!("{} (placed nowhere)", z.trim())),
        }),
    }
}

/// The country of a zone as emissions.csv names it, (ISO alpha-3, name): a US state's is
/// (`USA`, `United States`), a cloud region's the country it stands in, WORLD's (`WORLD`,
/// `World`), as is a zone placed nowhere. Never empty.
pub fn country_of(zone: &str) -> (&'static str, &'static str) {
    country_in(zone, Names::Table)
}

/// `country_of` reading the zone with `names` first (a WattTime region).
pub fn country_in(zone: &str, names: Names) -> (&'static str, &'static str) {
    let e = place(zone, names).map_or(world(), |r| r.entry);
    (&e.country.iso3, &e.country.name)
}

/// The table provider's reading of `--zone`: a table zone or a provider's zone the tables
/// place; a sub-zone of a country without states in the tables goes to its country. Anything
/// else is an error naming the nearest zones. (In the US and Canada, whose states and
/// provinces are all here, an unknown sub-zone is more likely a typo than a place.)
pub fn resolve(zone: &str) -> Result<Resolved, super::GridError> {
    let k = key(zone);
    if let Some(e) = data::table().get(&k) {
        return Ok(Resolved::exact(e));
    }
    if let Some(r) = alias(zone, &k) {
        return Ok(r);
    }
    match country_prefix(zone, &k) {
        Some(r) if !matches!(r.entry.zone.as_str(), "US" | "CA") => Ok(r),
        _ => Err(unknown_zone(zone)),
    }
}

/// The error for a zone no table knows, with the nearest zones.
pub fn unknown_zone(zone: &str) -> super::GridError {
    super::GridError::NotInTable {
        zone: zone.to_owned(),
        suggestions: suggest::nearest(zone, 5),
    }
}

/// Up to `n` known zones nearest to `zone` (by name, prefix, then edit distance).
pub fn suggest(zone: &str, n: usize) -> Vec<String> {
    suggest::nearest(zone, n)
}

/// `carbontop zones`: every zone whose code, name, region or country contains `filter`
/// (case-insensitive), in table order.
pub fn matching(filter: Option<&str>) -> Vec<&'static Entry> {
    let f = filter.map(|f| f.trim().to_lowercase()).unwrap_or_default();
    entries()
        .iter()
        .filter(|e| {
            f.is_empty()
                || [
                    Some(&e.zone),
                    Some(&e.name),
                    e.region.as_ref(),
                    Some(&e.country.name),
                    e.alpha3.as_ref(),
                ]
                .into_iter()
                .flatten()
                .any(|s| s.to_lowercase().contains(&f))
        })
        .collect()
}

/// The providers' zones (balancing authorities, WattTime regions) whose code or name contains
/// `filter`.
pub fn matching_aliases(filter: Option<&str>) -> Vec<&'static Alias> {
    let f = filter.map(|f| f.trim().to_lowercase()).unwrap_or_default();
    aliases()
        .iter()
        .filter(|a| {
            f.is_empty() || a.code.to_lowercase().contains(&f) || a.name.to_lowercase().contains(&f)
        })
        .collect()
}

fn alias_code(a: &Alias) -> String {
    match a.kind {
        AliasKind::WattTimePrefix => format!("{}*", a.code),
        _ => a.code.clone(),
    }
}

fn alias_kind(a: &Alias) -> &'static str {
    match a.kind {
        AliasKind::Eia => "EIA-930 balancing authority",
        AliasKind::WattTime | AliasKind::WattTimePrefix => "WattTime region",
    }
}

/// The listing as text: one zone a line, then the providers' zones and where they fall back.
pub fn listing_text(entries: &[&Entry], aliases: &[&Alias]) -> String {
    let mut s = String::new();
    if !entries.is_empty() {
        s.push_str(&format!(
            "{:<28} {:>13}  {:>15}  {:<4}  {:<11}  place  [source]\n",
            "zone", "gCO2e/kWh", "band (hourly)", "year", "basis"
        ));
    }
    for e in entries {
        let place = match (&e.stands_in, &e.region) {
            (Some((z, _)), Some(r)) => format!("{} ({r}) → {z}", e.name),
            (None, Some(r)) if *r != e.name => format!("{} ({r})", e.name),
            _ => e.name.clone(),
        };
        let (lo, hi) = e.band_g();
        s.push_str(&format!(
            "{:<28} {:>7} g/kWh  {:>15}  {}  {:<11}  {place}  [{}]\n",
            e.zone,
            fmt_g(e.g_per_kwh),
            format!("{}–{}", fmt_g(lo), fmt_g(hi)),
            e.year,
            e.basis.key(),
            e.source.label()
        ));
    }
    if !aliases.is_empty() {
        if !entries.is_empty() {
            s.push('\n');
        }
        s.push_str(
            "Providers' zones (--provider watttime/emaps, or the table) and the table zone they \
             fall back to (Electricity Maps' US-<area>-<code> by its code):\n",
        );
        for a in aliases {
            s.push_str(&format!(
                "{:<28} → {:<6} {}: {}\n",
                alias_code(a),
                a.zone,
                alias_kind(a),
                a.name
            ));
        }
    }
    s
}

/// The listing as JSON: `{"zones": [...], "provider_zones": [...]}` with stable names.
pub fn listing_json(entries: &[&Entry], aliases: &[&Alias]) -> serde_json::Value {
    let zones: Vec<_> = entries
        .iter()
        .map(|e| {
            let (lo, hi) = e.band_g();
            serde_json::json!({
                "low_g_per_kwh": lo,
                "high_g_per_kwh": hi,
                "zone": e.zone,
                "name": e.name,
                "region": e.region,
                "country_iso_code": e.country.iso3,
                "country_name": e.country.name,
                "g_per_kwh": e.g_per_kwh,
                "year": e.year,
                "basis": e.basis.key(),
                "source": e.source.label(),
                "stands_in": e.stands_in.as_ref().map(|(z, _)| z),
            })
        })
        .collect();
    let provider_zones: Vec<_> = aliases
        .iter()
        .map(|a| {
            serde_json::json!({
                "zone": alias_code(a),
                "kind": alias_kind(a),
                "name": a.name,
                "falls_back_to": a.zone,
            })
        })
        .collect();
    serde_json::json!({ "zones": zones, "provider_zones": provider_zones })
}

/// `--provider table` (and the default without a live provider).
pub struct TableIntensity {
    resolved: Resolved,
    zone_given: bool,
}

impl TableIntensity {
    /// `zone` None → the WORLD row.
    pub fn new(zone: Option<&str>) -> Result<Self, super::GridError> {
        Ok(match zone {
            None => Self {
                resolved: Resolved::exact(world()),
                zone_given: false,
            },
            Some(z) => Self {
                resolved: resolve(z)?,
                zone_given: true,
            },
        })
    }

    pub fn entry(&self) -> &'static Entry {
        self.resolved.entry
    }
}

impl GridSource for TableIntensity {
    fn intensity(&mut self, _at: DateTime<Utc>) -> Intensity {
        Intensity {
            g_per_kwh: crate::units::GPerKwh(self.resolved.entry.g_per_kwh),
            source: SourceKind::Table.into(),
        }
    }

    fn describe(&self) -> String {
        let hint = if self.zone_given {
            ""
        } else {
            "; no --zone given: set it for your grid"
        };
        format!("table: {}{hint}", self.resolved.describe())
    }
}

#[cfg(test)]
mod tests;
