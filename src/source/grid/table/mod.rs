//! The embedded per-country annual grid intensity table: the offline default.
//!
//! Source: Our World in Data, `carbon_intensity_elec` (gCO2e/kWh, lifecycle), compiled from Ember
//! and the Energy Institute Statistical Review of World Energy; licence CC BY 4.0. Country values
//! are for 2023; the WORLD row is Ember's 2022 world average (436 g/kWh), the last resort when no
//! zone is known.

use super::GridSource;
use crate::engine::constants::WORLD_INTENSITY_G_PER_KWH;
use crate::sample::{Intensity, SourceKind};
use chrono::{DateTime, Utc};

/// (ISO alpha-2, ISO alpha-3, name, gCO2e/kWh, year)
pub const TABLE: &[(&str, &str, &str, f64, u16)] = &[
    ("AU", "AUS", "Australia", 548.7, 2023),
    ("BR", "BRA", "Brazil", 98.3, 2023),
    ("CA", "CAN", "Canada", 170.0, 2023),
    ("CN", "CHN", "China", 582.3, 2023),
    ("DE", "DEU", "Germany", 381.0, 2023),
    ("FR", "FRA", "France", 56.0, 2023),
    ("GB", "GBR", "United Kingdom", 237.6, 2023),
    ("IN", "IND", "India", 713.4, 2023),
    ("JP", "JPN", "Japan", 485.4, 2023),
    ("KR", "KOR", "South Korea", 430.6, 2023),
    ("NO", "NOR", "Norway", 30.1, 2023),
    ("PL", "POL", "Poland", 661.9, 2023),
    ("SE", "SWE", "Sweden", 40.7, 2023),
    ("US", "USA", "United States", 369.5, 2023),
    ("ZA", "ZAF", "South Africa", 707.7, 2023),
];

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableEntry {
    pub code: &'static str,
    /// ISO alpha-3 (CodeCarbon's country_iso_code); `WORLD` for the world row.
    pub code3: &'static str,
    pub name: &'static str,
    pub g_per_kwh: f64,
    pub year: u16,
}

pub const WORLD: TableEntry = TableEntry {
    code: "WORLD",
    code3: "WORLD",
    name: "World average",
    g_per_kwh: WORLD_INTENSITY_G_PER_KWH,
    year: 2022,
};

/// Looks a zone up by ISO alpha-2 or alpha-3 code (case-insensitive). A provider zone such as
/// `US-CAL-CISO` or `DK-DK2` falls back to its country (`US`, `DK`). `WORLD` is the world row.
pub fn lookup(zone: &str) -> Option<TableEntry> {
    let z = zone.trim();
    if z.eq_ignore_ascii_case("WORLD") {
        return Some(WORLD);
    }
    let country = z.split('-').next().unwrap_or(z);
    TABLE
        .iter()
        .find(|(a2, a3, ..)| a2.eq_ignore_ascii_case(country) || a3.eq_ignore_ascii_case(country))
        .map(|&(code, code3, name, g, year)| TableEntry {
            code,
            code3,
            name,
            g_per_kwh: g,
            year,
        })
}

/// The codes the table knows, for error messages.
pub fn known_codes() -> String {
    let mut v: Vec<&str> = TABLE.iter().map(|r| r.0).collect();
    v.push("WORLD");
    v.join(", ")
}

pub struct TableIntensity {
    entry: TableEntry,
    zone_given: bool,
}

impl TableIntensity {
    /// `zone` None → the WORLD row.
    pub fn new(zone: Option<&str>) -> Result<Self, super::GridError> {
        match zone {
            None => Ok(Self {
                entry: WORLD,
                zone_given: false,
            }),
            Some(z) => lookup(z)
                .map(|entry| Self {
                    entry,
                    zone_given: true,
                })
                .ok_or_else(|| super::GridError::NotInTable(z.to_owned())),
        }
    }

    pub fn entry(&self) -> &TableEntry {
        &self.entry
    }
}

impl GridSource for TableIntensity {
    fn intensity(&mut self, _at: DateTime<Utc>) -> Intensity {
        Intensity {
            g_per_kwh: crate::units::GPerKwh(self.entry.g_per_kwh),
            source: SourceKind::Table.into(),
        }
    }

    fn describe(&self) -> String {
        let hint = if self.zone_given {
            ""
        } else {
            "; no --zone given: set it for your grid"
        };
        format!(
            "table: {} {} {} gCO2e/kWh ({} annual mean, OWID/Ember, CC BY 4.0){hint}",
            self.entry.code, self.entry.name, self.entry.g_per_kwh, self.entry.year
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha2_alpha3_and_provider_zones() {
        assert_eq!(lookup("FR").map(|e| e.g_per_kwh), Some(56.0));
        assert_eq!(lookup("fra").map(|e| e.g_per_kwh), Some(56.0));
        assert_eq!(lookup("US-CAL-CISO").map(|e| e.code), Some("US"));
        assert_eq!(lookup("world").map(|e| e.g_per_kwh), Some(436.0));
        assert_eq!(lookup("XX"), None);
    }

    #[test]
    fn unknown_zone_error_names_it() {
        let err = TableIntensity::new(Some("XX")).err().unwrap().to_string();
        assert!(err.starts_with("--zone XX:"), "{err}");
        let mut t = TableIntensity::new(None).unwrap();
        assert_eq!(t.intensity(Utc::now()).g_per_kwh.0, 436.0);
    }
}
