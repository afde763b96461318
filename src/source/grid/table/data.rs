//! The embedded data files (`data/grid/`, attributions in its README.md), parsed once at first
//! use. A row that does not parse is left out and recorded in `Table::problems`; a unit test
//! keeps that list empty, so nothing here can panic at run time.

use super::{Basis, Country, Entry, Source};
use crate::engine::constants::WORLD_INTENSITY_G_PER_KWH;
use std::collections::HashMap;
use std::sync::OnceLock;

const ISO3166: &str = include_str!("../../../../data/grid/iso3166.csv");
const COUNTRIES: &str = include_str!("../../../../data/grid/country_intensity.csv");
const USA_STATES: &str = include_str!("../../../../data/grid/usa_states.json");
const CANADA: &str = include_str!("../../../../data/grid/canada_provinces.json");
const GCP: &str = include_str!("../../../../data/grid/cloud_regions.csv");
const CLOUD_PLACES: &str = include_str!("../../../../data/grid/cloud_places.csv");
const BALANCING: &str = include_str!("../../../../data/grid/us_balancing_authorities.csv");

/// eGRID's unit: 1 lb = 0.45359237 kg (exact, by definition), so lbs/MWh × 0.45359237 = g/kWh.
pub const LB_PER_MWH_TO_G_PER_KWH: f64 = 0.45359237;

/// eGRID2023: the year of the data behind `usa_states.json` (its `_source.year`).
const EGRID_YEAR: u16 = 2023;
/// Google Cloud's region figures in `cloud_regions.csv` are its 2023 data (they match
/// GoogleCloudPlatform/region-carbon-info `data/yearly/2023.csv` row for row).
const GOOGLE_YEAR: u16 = 2023;
/// CodeCarbon 3.3.2 ships the provincial mix as `data/private_infra/2023/canada_energy_mix.json`;
/// the year of generation behind it is not stated there, so the data set's year is shown.
const CANADA_YEAR: u16 = 2023;

/// Life-cycle emission factors, gCO2e/kWh, to turn a generation mix into an intensity on the same
/// basis as OWID/Ember's (which applies the same IPCC medians). IPCC AR5 WG3 Annex III
/// (Schlömer et al. 2014), Table A.III.2, medians: coal (pulverised) 820, gas (combined cycle)
/// 490, biomass (dedicated) 230, hydro 24, nuclear 12, wind (onshore) 11, solar PV (utility) 48,
/// ocean (tidal and wave) 17. AR5 gives no oil figure: 650 is the UK Parliamentary Office of
/// Science and Technology's (POSTnote 268, 2006), as Electricity Maps uses for oil; "other"
/// (unspecified thermal) takes Electricity Maps' 700 for unknown sources
/// (electricitymaps-contrib config/defaults.yaml, lifecycle). No province has tidal or other
/// generation in the embedded data.
///
/// CodeCarbon itself prices only coal 995.7, petroleum 816.7 and natural gas 743.8 (from the
/// energy-usage package, after EIA) and counts every other source as zero, a fossil-only
/// figure: carbontop's provincial values are therefore higher for hydro-rich provinces.
pub const LIFE_CYCLE_FACTORS: &[(&str, f64)] = &[
    ("coal", 820.0),
    ("naturalGas", 490.0),
    ("petroleum", 650.0),
    ("biomass", 230.0),
    ("hydro", 24.0),
    ("nuclear", 12.0),
    ("wind", 11.0),
    ("solar", 48.0),
    ("tidal", 17.0),
    ("other", 700.0),
];

/// ISO 3166-2:CA codes of the provinces and territories, by the names in the data file.
const PROVINCES: &[(&str, &str, &str)] = &[
    ("alberta", "AB", "Alberta"),
    ("british columbia", "BC", "British Columbia"),
    ("manitoba", "MB", "Manitoba"),
    ("new brunswick", "NB", "New Brunswick"),
    (
        "newfoundland and labrador",
        "NL",
        "Newfoundland and Labrador",
    ),
    ("nova scotia", "NS", "Nova Scotia"),
    ("northwest territories", "NT", "Northwest Territories"),
    ("nunavut", "NU", "Nunavut"),
    ("ontario", "ON", "Ontario"),
    ("prince edward island", "PE", "Prince Edward Island"),
    ("quebec", "QC", "Quebec"),
    ("saskatchewan", "SK", "Saskatchewan"),
    ("yukon", "YT", "Yukon"),
];

/// How a balancing-authority row places a provider's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasKind {
    /// An EIA-930 balancing-authority code (`CISO`): WattTime's name for most single-authority
    /// regions, and the last part of Electricity Maps' US zones (`US-CAL-CISO`).
    Eia,
    /// A WattTime region name (`CAISO_NORTH`).
    WattTime,
    /// Any WattTime region starting with this (`CAISO_`).
    WattTimePrefix,
}

/// A provider's zone placed in a US state (or, where it spans many, the United States).
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// Upper case.
    pub code: String,
    pub kind: AliasKind,
    /// The table zone it falls back to (`US-CA`, or `US` for several states).
    pub zone: String,
    pub name: String,
}

#[derive(Debug, Default)]
pub struct Table {
    pub entries: Vec<Entry>,
    /// Upper-case zone code (and a country's alpha-3) → index in `entries`.
    pub index: HashMap<String, usize>,
    pub aliases: Vec<Alias>,
    /// Rows that did not parse or did not fit (each one line).
    pub problems: Vec<String>,
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.index.get(key).and_then(|&i| self.entries.get(i))
    }

    fn add(&mut self, e: Entry) {
        let mut keys = vec![e.zone.to_ascii_uppercase()];
        if let Some(a3) = &e.alpha3 {
            keys.push(a3.to_ascii_uppercase());
        }
        for k in keys {
            if self.index.contains_key(&k) {
                self.problems.push(format!("{k}: listed twice"));
                return;
            }
            self.index.insert(k, self.entries.len());
        }
        self.entries.push(e);
    }
}

/// The table, parsed at first use.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(parse_all)
}

fn parse_all() -> Table {
    let mut t = Table::default();
    countries(&mut t);
    us_states(&mut t);
    canada(&mut t);
    gcp(&mut t);
    cloud_places(&mut t);
    t.add(world());
    balancing(&mut t);
    t
}

/// The last resort, when no zone is known.
pub fn world() -> Entry {
    Entry {
        zone: "WORLD".into(),
        alpha3: None,
        name: "World average".into(),
        region: None,
        country: Country {
            iso2: String::new(),
            iso3: "WORLD".into(),
            name: "World".into(),
        },
        g_per_kwh: WORLD_INTENSITY_G_PER_KWH,
        year: 2022,
        source: Source::EmberWorld,
        basis: Basis::LifeCycle,
        stands_in: None,
    }
}

fn csv_rows(text: &'static str) -> csv::Reader<&'static [u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes())
}

/// A header's column, or a problem.
fn column(h: &csv::StringRecord, name: &str, file: &str, problems: &mut Vec<String>) -> usize {
    h.iter().position(|c| c == name).unwrap_or_else(|| {
        problems.push(format!("{file}: no column {name}"));
        usize::MAX
    })
}

fn countries(t: &mut Table) {
    let mut alpha2: HashMap<String, String> = HashMap::new();
    let mut r = csv_rows(ISO3166);
    for rec in r.records() {
        match rec {
            Ok(rec) => match (rec.get(0), rec.get(1)) {
                (Some(a2), Some(a3)) if a2.len() == 2 && a3.len() == 3 => {
                    alpha2.insert(a3.to_owned(), a2.to_owned());
                }
                _ => t.problems.push(format!("iso3166.csv: bad row {rec:?}")),
            },
            Err(e) => t.problems.push(format!("iso3166.csv: {e}")),
        }
    }
    let mut r = csv_rows(COUNTRIES);
    let Ok(h) = r.headers().cloned() else {
        t.problems.push("country_intensity.csv: no header".into());
        return;
    };
    let f = "country_intensity.csv";
    let (c3, cn, cg, cy) = (
        column(&h, "iso3", f, &mut t.problems),
        column(&h, "country_name", f, &mut t.problems),
        column(&h, "g_per_kwh", f, &mut t.problems),
        column(&h, "year", f, &mut t.problems),
    );
    for rec in r.records() {
        let Ok(rec) = rec else {
            t.problems.push(format!("{f}: unreadable row"));
            continue;
        };
        let parsed = country_row(&rec, [c3, cn, cg, cy], &alpha2);
        match parsed {
            Some(e) => t.add(e),
            None => t.problems.push(format!("{f}: bad row {rec:?}")),
        }
    }
}

/// One row of country_intensity.csv (columns iso3, country_name, g_per_kwh, year).
fn country_row(
    rec: &csv::StringRecord,
    [c3, cn, cg, cy]: [usize; 4],
    alpha2: &HashMap<String, String>,
) -> Option<Entry> {
    let a3 = rec.get(c3)?;
    let a2 = alpha2.get(a3)?;
    let name = rec.get(cn)?;
    let g: f64 = rec.get(cg)?.parse().ok()?;
    let year: u16 = rec.get(cy)?.parse().ok()?;
    Some(Entry {
        zone: a2.clone(),
        alpha3: Some(a3.to_owned()),
        name: name.to_owned(),
        region: None,
        country: Country {
            iso2: a2.clone(),
            iso3: a3.to_owned(),
            name: name.to_owned(),
        },
        g_per_kwh: g,
        year,
        source: Source::Owid,
        basis: Basis::LifeCycle,
        stands_in: None,
    })
}

/// "district of columbia" → "District of Columbia".
fn title_case(s: &str) -> String {
    s.split(' ')
        .enumerate()
        .map(|(i, w)| {
            if i > 0 && matches!(w, "of" | "and") {
                return w.to_owned();
            }
            let mut c = w.chars();
            c.next().map_or(String::new(), |first| {
                first.to_uppercase().chain(c).collect::<String>()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn country(t: &Table, a2: &str) -> Option<Country> {
    t.get(a2).map(|e| e.country.clone())
}

fn us_states(t: &mut Table) {
    let f = "usa_states.json";
    let v: serde_json::Value = match serde_json::from_str(USA_STATES) {
        Ok(v) => v,
        Err(e) => {
            t.problems.push(format!("{f}: {e}"));
            return;
        }
    };
    let Some(usa) = country(t, "US") else {
        t.problems.push(format!("{f}: no United States row"));
        return;
    };
    let Some(obj) = v.as_object() else {
        t.problems.push(format!("{f}: not an object"));
        return;
    };
    for (key, row) in obj {
        // `_unit` and `_source` describe the file; `usa` is eGRID's national figure, left out:
        // the country's row is OWID's life-cycle one.
        if key.starts_with('_') || key == "usa" {
            continue;
        }
        let code = row.get("regionCode").and_then(|c| c.as_str());
        let lbs = row.get("emissions").and_then(serde_json::Value::as_f64);
        match (code, lbs) {
            (Some(code), Some(lbs)) if code.len() == 2 => t.add(Entry {
                zone: format!("US-{}", code.to_ascii_uppercase()),
                alpha3: None,
                name: title_case(key),
                region: Some(title_case(key)),
                country: usa.clone(),
                g_per_kwh: lbs * LB_PER_MWH_TO_G_PER_KWH,
                year: EGRID_YEAR,
                source: Source::Egrid,
                basis: Basis::Combustion,
                stands_in: None,
            }),
            _ => t.problems.push(format!("{f}: bad row {key}")),
        }
    }
}

/// The intensity of a generation mix (percent by source), life-cycle factors weighted by share
/// of the row's own total; None if a source has no factor.
pub fn mix_intensity(mix: &serde_json::Map<String, serde_json::Value>) -> Option<f64> {
    let total = mix.get("total")?.as_f64()?;
    if total <= 0.0 {
        return None;
    }
    let mut g = 0.0;
    for (k, v) in mix {
        if k == "total" {
            continue;
        }
        let share = v.as_f64()?;
        let factor = LIFE_CYCLE_FACTORS.iter().find(|(s, _)| s == k)?.1;
        g += share * factor;
    }
    Some(g / total)
}

fn canada(t: &mut Table) {
    let f = "canada_provinces.json";
    let v: serde_json::Value = match serde_json::from_str(CANADA) {
        Ok(v) => v,
        Err(e) => {
            t.problems.push(format!("{f}: {e}"));
            return;
        }
    };
    let Some(can) = country(t, "CA") else {
        t.problems.push(format!("{f}: no Canada row"));
        return;
    };
    let Some(obj) = v.as_object() else {
        t.problems.push(format!("{f}: not an object"));
        return;
    };
    for (key, mix) in obj {
        let place = PROVINCES.iter().find(|(k, ..)| k == key);
        let g = mix.as_object().and_then(mix_intensity);
        match (place, g) {
            (Some(&(_, code, name)), Some(g)) => t.add(Entry {
                zone: format!("CA-{code}"),
                alpha3: None,
                name: name.into(),
                region: Some(name.into()),
                country: can.clone(),
                g_per_kwh: g,
                year: CANADA_YEAR,
                source: Source::CanadaMix,
                basis: Basis::LifeCycle,
                stands_in: None,
            }),
            _ => t.problems.push(format!("{f}: bad row {key}")),
        }
    }
}

fn gcp(t: &mut Table) {
    let f = "cloud_regions.csv";
    let mut r = csv_rows(GCP);
    let Ok(h) = r.headers().cloned() else {
        t.problems.push(format!("{f}: no header"));
        return;
    };
    let cols: Vec<usize> = [
        "provider",
        "region",
        "countryIsoCode",
        "state",
        "city",
        "impact",
    ]
    .iter()
    .map(|c| column(&h, c, f, &mut t.problems))
    .collect();
    let by_a3: HashMap<String, Country> = t
        .entries
        .iter()
        .filter_map(|e| Some((e.alpha3.clone()?, e.country.clone())))
        .collect();
    for rec in r.records() {
        let Ok(rec) = rec else {
            t.problems.push(format!("{f}: unreadable row"));
            continue;
        };
        let get = |i: usize| cols.get(i).and_then(|&c| rec.get(c)).unwrap_or("");
        let place = [get(4), get(3)]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let (Some(country), Ok(g)) = (by_a3.get(get(2)), get(5).parse::<f64>()) else {
            t.problems.push(format!("{f}: bad row {rec:?}"));
            continue;
        };
        if get(0) != "gcp" || get(1).is_empty() {
            t.problems.push(format!("{f}: bad row {rec:?}"));
            continue;
        }
        t.add(Entry {
            zone: format!("gcp:{}", get(1)),
            alpha3: None,
            name: format!("Google Cloud {}", get(1)),
            region: Some(if place.is_empty() || place == country.name {
                country.name.clone()
            } else {
                format!("{place}, {}", country.name)
            }),
            country: country.clone(),
            g_per_kwh: g,
            year: GOOGLE_YEAR,
            source: Source::Google,
            basis: Basis::Operational,
            stands_in: None,
        });
    }
}

fn cloud_places(t: &mut Table) {
    let f = "cloud_places.csv";
    let mut r = csv_rows(CLOUD_PLACES);
    for rec in r.records() {
        let Ok(rec) = rec else {
            t.problems.push(format!("{f}: unreadable row"));
            continue;
        };
        let (Some(provider), Some(region), Some(zone), Some(location)) =
            (rec.get(0), rec.get(1), rec.get(2), rec.get(3))
        else {
            t.problems.push(format!("{f}: bad row {rec:?}"));
            continue;
        };
        let brand = match provider {
            "aws" => "AWS",
            "azure" => "Azure",
            _ => {
                t.problems.push(format!("{f}: unknown provider {provider}"));
                continue;
            }
        };
        let Some(place) = t.get(zone).cloned() else {
            t.problems.push(format!(
                "{f}: {provider}:{region} stands in {zone}, not a zone"
            ));
            continue;
        };
        t.add(Entry {
            zone: format!("{provider}:{region}"),
            alpha3: None,
            name: format!("{brand} {region}"),
            region: Some(location.to_owned()),
            stands_in: Some((place.zone.clone(), place.name.clone())),
            ..place
        });
    }
}

fn balancing(t: &mut Table) {
    let f = "us_balancing_authorities.csv";
    let mut r = csv_rows(BALANCING);
    for rec in r.records() {
        let Ok(rec) = rec else {
            t.problems.push(format!("{f}: unreadable row"));
            continue;
        };
        let kind = match rec.get(1) {
            Some("eia") => AliasKind::Eia,
            Some("watttime") => AliasKind::WattTime,
            Some("watttime-prefix") => AliasKind::WattTimePrefix,
            _ => {
                t.problems.push(format!("{f}: bad kind in {rec:?}"));
                continue;
            }
        };
        match (rec.get(0), rec.get(2), rec.get(3)) {
            (Some(code), Some(zone), Some(name)) if t.get(zone).is_some() => {
                t.aliases.push(Alias {
                    code: code.to_ascii_uppercase(),
                    kind,
                    zone: zone.to_owned(),
                    name: name.to_owned(),
                });
            }
            _ => t.problems.push(format!("{f}: bad row {rec:?}")),
        }
    }
}
