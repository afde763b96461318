//! Grid carbon intensity (DESIGN.md §6): a fixed value, the embedded per-country table, or a
//! live provider (Electricity Maps, GB Carbon Intensity, WattTime) polled on its own thread and
//! falling back to the table.

pub mod emaps;
pub mod http;
pub mod live;
pub mod series;
pub mod table;
pub mod uk;
pub mod watttime;

use crate::sample::{Intensity, SourceKind};
use chrono::{DateTime, Utc};
use http::{FetchError, Http, Secret};
use std::time::Duration;

pub trait GridSource: Send {
    /// The intensity valid at `at`. Never blocks on the network.
    fn intensity(&mut self, at: DateTime<Utc>) -> Intensity;
    /// What the sampler records for a tick at `at`: `None` while the figure is not known yet
    /// (a live provider's first answer pending; the Session holds the row until it comes).
    fn reading(&mut self, at: DateTime<Utc>) -> Option<Intensity> {
        Some(self.intensity(at))
    }
    /// Where the figure comes from, for the summary.
    fn describe(&self) -> String;
    fn take_warning(&mut self) -> Option<String> {
        None
    }
}

/// `--intensity G`: one figure for the whole run.
pub struct FixedIntensity(pub f64);

impl GridSource for FixedIntensity {
    fn intensity(&mut self, _at: DateTime<Utc>) -> Intensity {
        Intensity {
            g_per_kwh: crate::units::GPerKwh(self.0),
            source: SourceKind::Fixed.into(),
        }
    }

    fn describe(&self) -> String {
        format!("fixed {} gCO2e/kWh (--intensity)", self.0)
    }
}

/// What one poll of a live provider brought back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// Slots: current, history and forecast.
    pub points: Vec<series::Point>,
    /// Things worth saying once (a forecast not in the plan, a null value).
    pub notes: Vec<String>,
    /// Extra facts (WattTime's percentile).
    pub detail: Option<String>,
}

/// One live API.
pub trait Provider: Send {
    /// The `intensity_source` it writes (`emaps`, `uk`, `watttime-moer`).
    fn label(&self) -> SourceKind;
    fn describe(&self) -> String;
    /// What its figures count (life-cycle, operational, marginal).
    fn basis(&self) -> table::Basis;
    /// How often its data changes: it is never asked more often by default.
    fn cadence(&self) -> Duration;
    fn fetch(&mut self, http: &Http, now: DateTime<Utc>) -> Result<Answer, FetchError>;
}

/// Why the grid source could not be set up: a bad zone, provider, URL or missing credentials
/// (usage errors), or a client or thread that would not start. Each text is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    /// `--provider` / `provider` names none.
    #[error("{0:?} is not a provider: use auto, emaps, uk, watttime or table")]
    UnknownProvider(String),
    /// A zone no embedded table knows, with the nearest ones.
    #[error(
        "--zone {}: not a zone in the embedded intensity tables{}; `carbontop zones` lists \
         them, or give --intensity G",
        .zone.escape_debug(),
        did_you_mean(.suggestions)
    )]
    NotInTable {
        zone: String,
        suggestions: Vec<String>,
    },
    /// `--provider uk` with a zone outside GB.
    #[error("--zone {0}: not a GB zone for the GB Carbon Intensity API")]
    NotGb(String),
    /// `GB-N` with N outside 1–17.
    #[error("--zone {0}: GB region ids run from 1 to 17")]
    GbRegion(String),
    /// `GB-…` that is neither a region id nor an outward postcode.
    #[error(
        "--zone {0}: give GB (national), GB-<region id 1-17> or GB-<outward postcode, e.g. RG10>; \
         the GB API does not cover Northern Ireland"
    )]
    GbZoneShape(String),
    /// `--provider emaps` without a token.
    #[error(
        "--provider emaps needs a token: set ELECTRICITYMAPS_API_KEY or \
         electricitymaps_api_key in the config file"
    )]
    EmapsToken,
    /// `--provider emaps` without a place.
    #[error("--provider emaps needs --zone or --lat/--lon")]
    EmapsPlace,
    /// `--provider watttime` without a login.
    #[error(
        "--provider watttime needs WATTTIME_USERNAME and WATTTIME_PASSWORD \
                            (or watttime_username/watttime_password in the config file)"
    )]
    WattTimeLogin,
    /// `--provider watttime` without a region.
    #[error("--provider watttime needs --zone REGION (a WattTime region, e.g. CAISO_NORTH)")]
    WattTimeRegion,
    /// `--grid-url` is not a URL.
    #[error("--grid-url {url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// `--grid-url` is not http or https.
    #[error("--grid-url {0}: only http and https URLs")]
    NotHttp(String),
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The poller thread could not be started.
    #[error("cannot start the grid poller: {0}")]
    Poller(String),
}

fn did_you_mean(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", s.join(", "))
    }
}

/// `--provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderKind {
    /// GB zones → the GB API; an Electricity Maps token → Electricity Maps; else the table.
    #[default]
    Auto,
    Emaps,
    Uk,
    WattTime,
    Table,
}

impl std::str::FromStr for ProviderKind {
    type Err = GridError;
    fn from_str(s: &str) -> Result<Self, GridError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "emaps" | "electricitymaps" => Ok(Self::Emaps),
            "uk" | "gb" => Ok(Self::Uk),
            "watttime" => Ok(Self::WattTime),
            "table" => Ok(Self::Table),
            _ => Err(GridError::UnknownProvider(s.to_owned())),
        }
    }
}

/// Everything the grid choice depends on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GridSettings {
    pub provider: ProviderKind,
    pub zone: Option<String>,
    pub intensity: Option<f64>,
    pub grid_url: Option<String>,
    pub lat_lon: Option<(f64, f64)>,
    pub grid_poll: Option<Duration>,
    pub emaps_token: Option<Secret>,
    pub watttime_user: Option<String>,
    pub watttime_password: Option<Secret>,
}

impl GridSettings {
    /// The zone as the screen and the metrics name it: a table zone by its own code
    /// (`gcp:europe-west1`, `FR` for `fra`), a provider's zone upper case, WORLD when none is
    /// given.
    pub fn zone_label(&self) -> String {
        self.zone.as_deref().map_or("WORLD".into(), |z| {
            table::lookup(z).map_or_else(|| z.trim().to_uppercase(), |e| e.zone.clone())
        })
    }

    /// Whose zone names `--zone` is read in first: WattTime's for `--provider watttime`.
    pub fn names(&self) -> table::Names {
        match self.provider {
            ProviderKind::WattTime => table::Names::WattTime,
            _ => table::Names::Table,
        }
    }

    /// The country of the grid these settings price, (ISO alpha-3, name), for emissions.csv:
    /// the zone's (a US state's is USA), else WORLD's (no zone, or one placed nowhere). With
    /// `--provider uk` and no zone, Great Britain's.
    pub fn country(&self) -> (String, String) {
        let (iso3, name) = match (self.zone.as_deref(), self.provider) {
            (Some(z), _) => table::country_in(z, self.names()),
            (None, ProviderKind::Uk) => table::country_of("GB"),
            (None, _) => table::country_of("WORLD"),
        };
        (iso3.to_owned(), name.to_owned())
    }
}

/// Request timeout for every provider.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The chosen source, the live state handle (for forecasts) and notices.
pub struct BuiltGrid {
    pub source: Box<dyn GridSource>,
    pub live: Option<live::GridHandle>,
    pub notices: Vec<String>,
}

/// Whether Electricity Maps may know the zone by this name: a country or Canadian province
/// (its codes are ISO's) or a zone the tables do not have (`US-CAL-CISO`, `DK-DK2`). A US state
/// (`US-CA`; its zones are balancing authorities), a cloud region or WORLD stays with the table
/// under `--provider auto`.
fn emaps_may_know(zone: &str) -> bool {
    table::lookup(zone).is_none_or(|e| {
        e.stands_in.is_none() && matches!(e.source, table::Source::Owid | table::Source::CanadaMix)
    })
}

fn is_gb(zone: Option<&str>) -> bool {
    zone.is_some_and(|z| uk::Target::from_zone(z).is_ok())
}

/// Chooses the grid source for these settings; errors are usage errors (one line).
pub fn build(g: &GridSettings) -> Result<BuiltGrid, GridError> {
    let mut notices = Vec::new();
    if let Some(v) = g.intensity {
        if !matches!(g.provider, ProviderKind::Auto | ProviderKind::Table) {
            notices.push("--intensity given: the provider is not asked".into());
        }
        return Ok(BuiltGrid {
            source: Box::new(FixedIntensity(v)),
            live: None,
            notices,
        });
    }
    let zone = g.zone.as_deref();
    let kind = match g.provider {
        ProviderKind::Auto if is_gb(zone) => ProviderKind::Uk,
        ProviderKind::Auto
            if g.emaps_token.is_some()
                && (zone.is_some_and(emaps_may_know) || g.lat_lon.is_some()) =>
        {
            ProviderKind::Emaps
        }
        ProviderKind::Auto => ProviderKind::Table,
        k => k,
    };
    // A live provider's fallback: its zone's place in the tables (a WattTime region or an
    // Electricity Maps sub-zone in its US state or country), the world mean only when the zone
    // fits nowhere; the GB API without a zone is Great Britain's.
    let fallback = match (kind, zone) {
        (ProviderKind::Uk, None) => table::fallback_for(Some("GB"), g.names()),
        _ => table::fallback_for(zone, g.names()),
    };
    let provider: Box<dyn Provider> = match kind {
        ProviderKind::Table | ProviderKind::Auto => {
            return Ok(BuiltGrid {
                source: Box::new(table::TableIntensity::new(zone)?),
                live: None,
                notices,
            });
        }
        ProviderKind::Uk => {
            let target = match zone {
                None => uk::Target::National,
                Some(z) => uk::Target::from_zone(z)?,
            };
            Box::new(uk::Uk::new(target))
        }
        ProviderKind::Emaps => {
            let token = g.emaps_token.clone().ok_or(GridError::EmapsToken)?;
            let target = match (g.lat_lon, zone) {
                (Some((lat, lon)), _) => emaps::Target::LatLon(lat, lon),
                (None, Some(z)) => emaps::Target::Zone(z.to_owned()),
                (None, None) => {
                    return Err(GridError::EmapsPlace);
                }
            };
            Box::new(emaps::Emaps::new(target, Some(token)))
        }
        ProviderKind::WattTime => {
            let (Some(user), Some(pw)) = (g.watttime_user.clone(), g.watttime_password.clone())
            else {
                return Err(GridError::WattTimeLogin);
            };
            let region = zone.ok_or(GridError::WattTimeRegion)?;
            Box::new(watttime::WattTime::new(region.to_owned(), user, pw))
        }
    };
    let base = g.grid_url.clone().unwrap_or_else(|| {
        match kind {
            ProviderKind::Uk => uk::DEFAULT_BASE,
            ProviderKind::WattTime => watttime::DEFAULT_BASE,
            _ => emaps::DEFAULT_BASE,
        }
        .to_owned()
    });
    let http = Http::new(&base, TIMEOUT)?;
    let mut fallback_desc = fallback.describe();
    if fallback.entry.basis != provider.basis() {
        fallback_desc.push_str(&format!(
            " [{}, not the provider's {} basis]",
            fallback.entry.basis.label(),
            provider.basis().label()
        ));
    }
    let src = live::LiveGrid::start(
        provider,
        http,
        live::Fallback {
            g_per_kwh: fallback.entry.g_per_kwh,
            label: fallback.entry.short(),
        },
        &fallback_desc,
        live::PollPlan { fixed: g.grid_poll },
    )?;
    Ok(BuiltGrid {
        live: Some(src.handle()),
        source: Box::new(src),
        notices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gs() -> GridSettings {
        GridSettings::default()
    }

    #[test]
    fn auto_picks_by_zone_and_token() {
        // No zone, no token: the table's world mean.
        let b = build(&gs()).unwrap();
        assert!(b.live.is_none());
        assert!(b.source.describe().starts_with("table: WORLD"));
        // A token and a zone Electricity Maps does not name so (a US state, a cloud region):
        // the table.
        for z in ["US-CA", "gcp:europe-west1", "aws:us-east-1", "WORLD"] {
            let g = GridSettings {
                zone: Some(z.into()),
                emaps_token: Secret::new(Some("t".into())),
                ..gs()
            };
            let b = build(&g).unwrap();
            assert!(b.live.is_none(), "{z}");
            assert!(b.source.describe().starts_with("table: "), "{z}");
        }
        // A token but no zone: still the table.
        let g = GridSettings {
            emaps_token: Secret::new(Some("t".into())),
            ..gs()
        };
        assert!(build(&g).unwrap().live.is_none());
        // GB → the GB API (pointed at a closed port: nothing is reached in this test).
        let g = GridSettings {
            zone: Some("GB".into()),
            grid_url: Some("http://127.0.0.1:9".into()),
            grid_poll: Some(Duration::from_secs(3600)),
            ..gs()
        };
        let b = build(&g).unwrap();
        assert!(b.live.is_some());
        assert!(
            b.source.describe().starts_with("GB Carbon Intensity API"),
            "{}",
            b.source.describe()
        );
        // A token and a zone → Electricity Maps.
        let g = GridSettings {
            zone: Some("DE".into()),
            emaps_token: Secret::new(Some("t".into())),
            grid_url: Some("http://127.0.0.1:9".into()),
            grid_poll: Some(Duration::from_secs(3600)),
            ..gs()
        };
        let b = build(&g).unwrap();
        assert!(b.source.describe().starts_with("Electricity Maps"));
        // Its fallback is Germany's row, on the provider's own (life-cycle) basis.
        let d = b.source.describe();
        assert!(d.contains("table: DE Germany 380.9 gCO2e/kWh (2023"), "{d}");
        assert!(!d.contains("not the provider's"), "{d}");
        // Electricity Maps' own zones: a province by its ISO code; a US balancing authority,
        // whose fallback is its state's eGRID figure, on another basis, and says so.
        for (z, fallback) in [
            ("CA-QC", "table: CA-QC Quebec 27.4"),
            (
                "US-CAL-CISO",
                "table: US-CAL-CISO (California Independent System Operator) → US-CA California",
            ),
        ] {
            let b = build(&GridSettings {
                zone: Some(z.into()),
                ..g.clone()
            })
            .unwrap();
            let d = b.source.describe();
            assert!(
                d.starts_with(&format!("Electricity Maps v3, zone {z}")),
                "{d}"
            );
            assert!(d.contains(fallback), "{d}");
        }
        let d = build(&GridSettings {
            zone: Some("US-CAL-CISO".into()),
            ..g
        })
        .unwrap()
        .source
        .describe();
        assert!(
            d.ends_with("[combustion at the plant, not the provider's life-cycle basis]"),
            "{d}"
        );
    }

    #[test]
    fn live_fallbacks_are_the_zones_place_never_the_world_when_known() {
        let g = GridSettings {
            provider: ProviderKind::WattTime,
            watttime_user: Some("u".into()),
            watttime_password: Secret::new(Some("p".into())),
            grid_url: Some("http://127.0.0.1:9".into()),
            grid_poll: Some(Duration::from_secs(3600)),
            ..gs()
        };
        for (z, want) in [
            ("CAISO_NORTH", "→ US-CA California"),
            ("ERCOT_WEST", "→ US-TX Texas"),
            ("SC", "→ US-SC South Carolina"),
            ("MISO_NOWHERE", "→ US United States"),
        ] {
            let b = build(&GridSettings {
                zone: Some(z.into()),
                ..g.clone()
            })
            .unwrap();
            let d = b.source.describe();
            assert!(
                d.contains(&format!("table: {z} (")) && d.contains(want),
                "{d}"
            );
            assert!(d.contains("not the provider's marginal basis"), "{d}");
        }
        // The GB API without a zone falls back to Great Britain, not the world.
        let d = build(&GridSettings {
            provider: ProviderKind::Uk,
            grid_url: Some("http://127.0.0.1:9".into()),
            grid_poll: Some(Duration::from_secs(3600)),
            ..gs()
        })
        .unwrap()
        .source
        .describe();
        assert!(d.contains("table: GB United Kingdom"), "{d}");
        // Settings name the country emissions.csv writes.
        let c = |zone: Option<&str>, provider| {
            GridSettings {
                zone: zone.map(Into::into),
                provider,
                ..gs()
            }
            .country()
        };
        let us = ("USA".to_owned(), "United States".to_owned());
        assert_eq!(c(Some("SC"), ProviderKind::WattTime), us);
        assert_eq!(c(Some("SC"), ProviderKind::Table).0, "SYC");
        assert_eq!(c(Some("aws:us-east-1"), ProviderKind::Auto), us);
        assert_eq!(
            c(None, ProviderKind::Auto),
            ("WORLD".into(), "World".into())
        );
        assert_eq!(c(None, ProviderKind::Uk).0, "GBR");
        // The screen's label: a table zone by its own code.
        let label = |z: &str| {
            GridSettings {
                zone: Some(z.into()),
                ..gs()
            }
            .zone_label()
        };
        assert_eq!(label(" GCP:Europe-West1 "), "gcp:europe-west1");
        assert_eq!(label("fra"), "FR");
        assert_eq!(label("caiso_north"), "CAISO_NORTH");
    }

    #[test]
    fn explicit_providers_say_what_they_lack() {
        let e = build(&GridSettings {
            provider: ProviderKind::Emaps,
            zone: Some("DE".into()),
            ..gs()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("ELECTRICITYMAPS_API_KEY"), "{e}");
        let e = build(&GridSettings {
            provider: ProviderKind::WattTime,
            zone: Some("CAISO_NORTH".into()),
            watttime_user: Some("u".into()),
            ..gs()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("WATTTIME_PASSWORD"), "{e}");
        let e = build(&GridSettings {
            provider: ProviderKind::Uk,
            zone: Some("FR".into()),
            ..gs()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.starts_with("--zone FR"), "{e}");
        let e = build(&GridSettings {
            provider: ProviderKind::Uk,
            grid_url: Some("file:///etc".into()),
            ..gs()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.starts_with("--grid-url"), "{e}");
    }

    #[test]
    fn fixed_intensity_wins() {
        let b = build(&GridSettings {
            provider: ProviderKind::Uk,
            intensity: Some(100.0),
            ..gs()
        })
        .unwrap();
        assert_eq!(b.source.describe(), "fixed 100 gCO2e/kWh (--intensity)");
        assert_eq!(b.notices.len(), 1);
        assert_eq!("EMAPS".parse::<ProviderKind>(), Ok(ProviderKind::Emaps));
        assert!("x".parse::<ProviderKind>().is_err());
    }

    #[test]
    fn errors_are_typed_and_keep_their_texts() {
        let e = build(&GridSettings {
            provider: ProviderKind::Emaps,
            ..gs()
        })
        .err()
        .unwrap();
        assert_eq!(e, GridError::EmapsToken);
        assert_eq!(
            e.to_string(),
            "--provider emaps needs a token: set ELECTRICITYMAPS_API_KEY or \
             electricitymaps_api_key in the config file"
        );
        let e = build(&GridSettings {
            provider: ProviderKind::WattTime,
            ..gs()
        })
        .err()
        .unwrap();
        assert_eq!(e, GridError::WattTimeLogin);
        assert_eq!(
            e.to_string(),
            "--provider watttime needs WATTTIME_USERNAME and WATTTIME_PASSWORD \
             (or watttime_username/watttime_password in the config file)"
        );
        let e = build(&GridSettings {
            zone: Some("XX".into()),
            ..gs()
        })
        .err()
        .unwrap();
        assert!(matches!(&e, GridError::NotInTable { zone, .. } if zone == "XX"));
        assert_eq!(
            e.to_string(),
            format!(
                "--zone XX: not a zone in the embedded intensity tables (did you mean {}?); \
                 `carbontop zones` lists them, or give --intensity G",
                table::suggest("XX", 5).join(", ")
            )
        );
        let e = build(&GridSettings {
            zone: Some("gcp:europe-west7".into()),
            ..gs()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.starts_with(
                "--zone gcp:europe-west7: not a zone in the embedded intensity tables (did you \
                 mean gcp:europe-west1, gcp:europe-west2, gcp:europe-west3, gcp:europe-west4, \
                 gcp:europe-west6?)"
            ),
            "{e}"
        );
        // One line, whatever was typed.
        let e = build(&GridSettings {
            zone: Some("a\nb".into()),
            ..gs()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(!e.contains('\n') && e.starts_with("--zone a\\nb:"), "{e}");
        assert_eq!(
            "bing".parse::<ProviderKind>().unwrap_err().to_string(),
            "\"bing\" is not a provider: use auto, emaps, uk, watttime or table"
        );
        assert_eq!(
            uk::Target::from_zone("GB-18"),
            Err(GridError::GbRegion("GB-18".into()))
        );
    }
}
