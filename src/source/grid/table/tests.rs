use super::*;

fn g(zone: &str) -> f64 {
    lookup(zone).map_or(f64::NAN, |e| e.g_per_kwh)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn every_embedded_row_parses_into_a_sane_entry() {
    assert_eq!(problems(), &[] as &[String]);
    // AWS and Azure regions take their place's source: count the places themselves.
    let count = |f: &dyn Fn(&Entry) -> bool| {
        entries()
            .iter()
            .filter(|e| e.stands_in.is_none() && f(e))
            .count()
    };
    assert_eq!(count(&|e| e.source == Source::Owid), 213);
    // 50 states and the District of Columbia.
    assert_eq!(count(&|e| e.source == Source::Egrid), 51);
    assert_eq!(count(&|e| e.source == Source::CanadaMix), 13);
    assert_eq!(count(&|e| e.source == Source::Google), 40);
    let clouds = |p: &str| entries().iter().filter(|e| e.zone.starts_with(p)).count();
    assert!(clouds("aws:") >= 33 && clouds("azure:") >= 50);
    for e in entries() {
        // The dirtiest grids (Turkmenistan, West Virginia) stay well under 1,500; the Central
        // African Republic is 0 in OWID's data (all its 0.15 TWh low-carbon).
        assert!(
            e.g_per_kwh.is_finite() && (0.0..1500.0).contains(&e.g_per_kwh),
            "{e:?}"
        );
        assert!((2009..=2025).contains(&e.year), "{e:?}");
        assert!(!e.name.is_empty() && !e.country.name.is_empty(), "{e:?}");
        assert!(
            e.country.iso3.len() == 3 || e.zone == "WORLD",
            "{e:?} has no country code"
        );
        // Every zone finds itself, in any case, with spaces around it.
        let again = lookup(&format!("  {}\t", e.zone.to_lowercase()));
        assert_eq!(again.map(|x| &x.zone), Some(&e.zone));
        assert!(!e.describe().contains('\n'));
    }
    for a in aliases() {
        assert!(lookup(&a.zone).is_some(), "{a:?}");
    }
}

#[test]
fn countries_by_alpha2_and_alpha3_with_their_year() {
    assert!(close(g("FR"), 56.039));
    assert_eq!(lookup("fra").map(|e| e.zone.as_str()), Some("FR"));
    assert!(close(g("IT"), 330.718));
    assert_eq!(lookup("IT").map(|e| e.year), Some(2023));
    assert_eq!(lookup("GLP").map(|e| e.year), Some(2021));
    assert_eq!(lookup("EH").map(|e| e.year), Some(2009));
    let us = lookup("US").unwrap();
    assert_eq!(
        (us.country.iso3.as_str(), us.name.as_str()),
        ("USA", "United States")
    );
    assert_eq!(us.basis, Basis::LifeCycle);
    assert_eq!(lookup("KR").map(|e| e.name.as_str()), Some("South Korea"));
    assert_eq!(lookup("XX"), None);
    assert_eq!(lookup(""), None);
}

#[test]
fn us_states_are_egrid_at_the_plant() {
    let ca = lookup("us-ca").unwrap();
    assert!(close(ca.g_per_kwh, 394.769 * 0.45359237));
    assert_eq!(ca.basis, Basis::Combustion);
    assert_eq!(ca.name, "California");
    assert_eq!(country_of("US-CA"), ("USA", "United States"));
    assert_eq!(
        lookup("US-DC").map(|e| e.name.as_str()),
        Some("District of Columbia")
    );
    assert!(
        ca.describe()
            .contains("combustion at the plant; EPA eGRID2023"),
        "{}",
        ca.describe()
    );
}

#[test]
fn canadian_provinces_are_their_mix_times_life_cycle_factors() {
    // Quebec: gas 0.2, oil 0.3, biomass 0.7, solar 0.01, wind 6.7, hydro 92.1 of 100.01.
    let qc = lookup("CA-QC").unwrap();
    let want =
        (0.2 * 490.0 + 0.3 * 650.0 + 0.7 * 230.0 + 0.01 * 48.0 + 6.7 * 11.0 + 92.1 * 24.0) / 100.01;
    assert!(close(qc.g_per_kwh, want), "{}", qc.g_per_kwh);
    assert_eq!(qc.basis, Basis::LifeCycle);
    assert_eq!(qc.country.iso3, "CAN");
    // Nunavut burns oil; Quebec is hydro.
    assert!(g("CA-NU") > 600.0 && g("CA-QC") < 40.0);
    // `CA` alone is Canada, not California.
    assert_eq!(lookup("CA").map(|e| e.name.as_str()), Some("Canada"));
}

#[test]
fn cloud_regions() {
    let gcp = lookup("gcp:europe-west1").unwrap();
    assert_eq!(gcp.g_per_kwh, 122.0);
    assert_eq!(gcp.basis, Basis::Operational);
    assert_eq!(gcp.country.iso3, "BEL");
    assert_eq!(lookup("GCP:Europe-West1").map(|e| &e.zone), Some(&gcp.zone));
    assert_eq!(
        lookup("google: europe-west1").map(|e| &e.zone),
        Some(&gcp.zone)
    );
    // The data file's `me-cenrtal1` is Google's me-central1; Hong Kong is its own country.
    assert!(lookup("gcp:me-central1").is_some());
    assert_eq!(country_of("gcp:asia-east2"), ("HKG", "Hong Kong"));
    assert_eq!(country_of("gcp:us-central1"), ("USA", "United States"));

    let aws = lookup("aws:us-east-1").unwrap();
    let va = lookup("US-VA").unwrap();
    assert_eq!(aws.g_per_kwh, va.g_per_kwh);
    assert_eq!((aws.basis, aws.year), (Basis::Combustion, 2023));
    assert_eq!(
        aws.stands_in,
        Some(("US-VA".to_owned(), "Virginia".to_owned()))
    );
    assert_eq!(country_of("aws:us-east-1"), ("USA", "United States"));
    assert!(
        aws.describe().starts_with(
            "aws:us-east-1 AWS us-east-1 (US East (N. Virginia)), in US-VA Virginia: "
        ),
        "{}",
        aws.describe()
    );
    assert_eq!(g("aws:ca-central-1"), g("CA-QC"));
    assert_eq!(g("azure:westeurope"), g("NL"));
    assert_eq!(country_of("azure:westeurope"), ("NLD", "Netherlands"));
    assert_eq!(g("azure:eastus"), g("US-VA"));
    assert_eq!(
        lookup("azure:westeurope").map(|e| e.basis),
        Some(Basis::LifeCycle)
    );
}

#[test]
fn providers_zones_fall_back_to_their_state_or_country() {
    let at = |z: &str, n: Names| place(z, n).map(|r| r.entry.zone.clone());
    let t = Names::Table;
    assert_eq!(at("CAISO_NORTH", t).as_deref(), Some("US-CA"));
    assert_eq!(at("caiso_escondido", t).as_deref(), Some("US-CA"));
    assert_eq!(at("ERCOT_EASTTX", t).as_deref(), Some("US-TX"));
    assert_eq!(at("NYISO_NYC", t).as_deref(), Some("US-NY"));
    assert_eq!(at("ISONE_CT", t).as_deref(), Some("US-CT"));
    assert_eq!(at("MISO_MASON_CITY", t).as_deref(), Some("US-IA"));
    assert_eq!(at("PJM_DC", t).as_deref(), Some("US-DC"));
    assert_eq!(at("BPA", t).as_deref(), Some("US-WA"));
    // Several states and no one of them: the country, never the world.
    assert_eq!(at("MISO_SOMEWHERE", t).as_deref(), Some("US"));
    assert_eq!(at("PJM", t).as_deref(), Some("US"));
    // Electricity Maps' US zones by their balancing authority (not US-NE = Nebraska).
    assert_eq!(at("US-CAL-CISO", t).as_deref(), Some("US-CA"));
    assert_eq!(at("US-TEX-ERCO", t).as_deref(), Some("US-TX"));
    assert_eq!(at("US-NY-NYIS", t).as_deref(), Some("US-NY"));
    assert_eq!(at("US-MIDA-PJM", t).as_deref(), Some("US"));
    assert_eq!(at("US-NE-ISNE", t).as_deref(), Some("US"));
    assert_eq!(at("US-HI-OA", t).as_deref(), Some("US-HI"));
    assert_eq!(at("US-XYZ-NOPE", t).as_deref(), Some("US"));
    // Sub-zones elsewhere: the country.
    assert_eq!(at("DK-DK2", t).as_deref(), Some("DK"));
    assert_eq!(at("GB-13", t).as_deref(), Some("GB"));
    assert_eq!(at("CA-NL-NF", t).as_deref(), Some("CA-NL"));
    // `SC`: the Seychelles in the table, Santee Cooper (South Carolina) for WattTime.
    assert_eq!(at("SC", t).as_deref(), Some("SC"));
    assert_eq!(at("SC", Names::WattTime).as_deref(), Some("US-SC"));
    assert_eq!(at("DE", Names::WattTime).as_deref(), Some("DE"));
    // Nothing fits: the world, saying so.
    assert_eq!(at("NOWHERE", t), None);
    let f = fallback_for(Some("NOWHERE"), t);
    assert_eq!(f.entry.zone, "WORLD");
    assert!(f.describe().starts_with("NOWHERE (placed nowhere) → WORLD"));
    assert_eq!(country_of("NOWHERE"), ("WORLD", "World"));
    assert_eq!(country_of("CAISO_NORTH"), ("USA", "United States"));
    let r = place("CAISO_NORTH", t).unwrap();
    assert!(
        r.describe()
            .starts_with("CAISO_NORTH (California ISO sub-region) → US-CA California "),
        "{}",
        r.describe()
    );
}

#[test]
fn the_table_provider_takes_known_zones_and_names_the_nearest_otherwise() {
    assert_eq!(resolve("IT").unwrap().entry.zone, "IT");
    assert_eq!(resolve(" us-tx ").unwrap().entry.zone, "US-TX");
    assert_eq!(resolve("CAISO_NORTH").unwrap().entry.zone, "US-CA");
    assert_eq!(resolve("DK-DK2").unwrap().entry.zone, "DK");
    // A US state or Canadian province it does not know is a typo, not the country.
    for z in [
        "US-ZZ",
        "CA-XX",
        "gcp:europe-west7",
        "aws:mars-1",
        "XX",
        "",
        "   ",
    ] {
        let e = resolve(z).unwrap_err();
        assert!(
            matches!(&e, crate::source::grid::GridError::NotInTable { zone, .. } if zone == z),
            "{z}: {e}"
        );
    }
    let e = resolve("US-ZZ").unwrap_err().to_string();
    assert!(e.starts_with("--zone US-ZZ: not a zone"), "{e}");
    assert!(e.contains("did you mean US-"), "{e}");
}

#[test]
fn the_table_source_describes_its_basis() {
    let mut t = TableIntensity::new(Some("US-CA")).unwrap();
    assert!(close(t.intensity(Utc::now()).g_per_kwh.0, g("US-CA")));
    assert_eq!(
        t.describe(),
        format!(
            "table: US-CA California {} gCO2e/kWh (2023 annual mean, combustion at the plant; \
             EPA eGRID2023)",
            fmt_g(g("US-CA"))
        )
    );
    let mut w = TableIntensity::new(None).unwrap();
    assert_eq!(w.intensity(Utc::now()).g_per_kwh.0, 436.0);
    assert!(w.describe().starts_with(
        "table: WORLD World average 436 gCO2e/kWh (2022 annual mean, life-cycle; Ember"
    ));
    assert!(
        w.describe()
            .ends_with("no --zone given: set it for your grid")
    );
    let err = TableIntensity::new(Some("XX")).err().unwrap().to_string();
    assert!(err.starts_with("--zone XX:"), "{err}");
}

#[test]
fn hostile_zones_never_panic() {
    let long = "Z".repeat(1 << 16);
    for z in [
        "",
        " ",
        "-",
        "_",
        ":",
        "::",
        "US-",
        "US--",
        "-US",
        "US-CAL-",
        "gcp:",
        ":gcp",
        "\u{0}",
        "é",
        "ÉTATS-UNIS",
        "🦀-🦀",
        "a\nb",
        &long,
    ] {
        let _ = lookup(z);
        let _ = place(z, Names::Table);
        let _ = place(z, Names::WattTime);
        let _ = country_of(z);
        if let Err(e) = resolve(z) {
            assert!(!e.to_string().contains('\n'), "{z:?}");
        }
    }
}

#[test]
fn listing() {
    let it = matching(Some("italy"));
    assert!(it.iter().any(|e| e.zone == "IT"));
    assert!(it.iter().any(|e| e.zone == "gcp:europe-west8"));
    let text = listing_text(&matching(Some("US-CA")), &[]);
    assert!(
        text.lines().nth(1).is_some_and(|l| l.starts_with("US-CA ")),
        "{text}"
    );
    assert!(text.contains("combustion"), "{text}");
    let j = listing_json(&matching(Some("aws:us-east-1")), &[]);
    assert_eq!(j["zones"][0]["zone"], "aws:us-east-1");
    assert_eq!(j["zones"][0]["stands_in"], "US-VA");
    assert_eq!(j["zones"][0]["country_iso_code"], "USA");
    assert_eq!(matching(None).len(), entries().len());
    assert!(matching(Some("no such place")).is_empty());
    let caiso = matching_aliases(Some("caiso"));
    let text = listing_text(&[], &caiso);
    assert!(text.contains("CAISO_*"), "{text}");
    assert!(text.contains("→ US-CA"), "{text}");
    let j = listing_json(&[], &caiso);
    assert_eq!(j["provider_zones"][0]["falls_back_to"], "US-CA");
}
