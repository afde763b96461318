//! Thermal design power of common CPUs, for the CPU estimate when RAPL is absent.
//!
//! Values are the manufacturers' published TDP (Intel ARK, AMD product pages), the same source
//! CodeCarbon's `cpu_power.csv` is built from, so carbontop's estimate is comparable with
//! CodeCarbon's. A model not listed here falls back to CodeCarbon's 4 W per thread
//! (`engine::constants::unknown_cpu_tdp_w`), or `--cpu-tdp W` overrides both.

/// (model tokens, TDP in W). Every token must appear in the CPU's brand string.
pub const CPU_TDP_W: &[(&str, f64)] = &[
    // AMD EPYC (server)
    ("epyc 7742", 225.0),
    ("epyc 7702", 200.0),
    ("epyc 7763", 280.0),
    ("epyc 7713", 225.0),
    ("epyc 7543", 225.0),
    ("epyc 7513", 200.0),
    ("epyc 7413", 180.0),
    ("epyc 7313", 155.0),
    ("epyc 7b12", 240.0),
    ("epyc 7b13", 240.0),
    ("epyc 7r13", 240.0),
    ("epyc 7r32", 280.0),
    ("epyc 9654", 360.0),
    ("epyc 9554", 360.0),
    ("epyc 9454", 290.0),
    ("epyc 9354", 280.0),
    ("epyc 9754", 360.0),
    ("epyc 9r14", 360.0),
    // AMD desktop / workstation
    ("ryzen 9 7950x", 170.0),
    ("ryzen 9 5950x", 105.0),
    ("ryzen 9 5900x", 105.0),
    ("ryzen 7 5800x", 105.0),
    ("ryzen 5 5600x", 65.0),
    ("ryzen threadripper 3990x", 280.0),
    ("ryzen threadripper pro 5995wx", 280.0),
    // Intel Xeon (server)
    ("xeon platinum 8480", 350.0),
    ("xeon platinum 8468", 350.0),
    ("xeon platinum 8380", 270.0),
    ("xeon platinum 8358", 250.0),
    ("xeon platinum 8375c", 300.0),
    ("xeon platinum 8275cl", 240.0),
    ("xeon platinum 8259cl", 210.0),
    ("xeon platinum 8175m", 240.0),
    ("xeon platinum 8168", 205.0),
    ("xeon gold 6248r", 205.0),
    ("xeon gold 6248", 150.0),
    ("xeon gold 6230", 125.0),
    ("xeon gold 6148", 150.0),
    ("xeon gold 6130", 125.0),
    ("xeon e5 2686 v4", 145.0),
    ("xeon e5 2698 v4", 135.0),
    ("xeon e5 2690 v4", 135.0),
    // Intel desktop
    ("core i9 13900k", 125.0),
    ("core i9 12900k", 125.0),
    ("core i9 9900k", 95.0),
    ("core i7 12700k", 125.0),
    ("core i7 8700k", 95.0),
    ("core i5 12600k", 125.0),
];

/// Splits a brand string into lowercase alphanumeric tokens, dropping (R)/(TM) marks.
fn tokens(s: &str) -> Vec<String> {
    let lower = s
        .to_ascii_lowercase()
        .replace("(r)", " ")
        .replace("(tm)", " ");
    lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The TDP of the listed model whose tokens all appear in `brand` (the most specific match).
pub fn lookup(brand: &str) -> Option<(&'static str, f64)> {
    let have = tokens(brand);
    CPU_TDP_W
        .iter()
        .filter(|(model, _)| model.split(' ').all(|t| have.iter().any(|h| h == t)))
        .max_by_key(|(model, _)| model.split(' ').count())
        .map(|&(m, w)| (m, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_real_brand_strings() {
        assert_eq!(
            lookup("AMD EPYC 7763 64-Core Processor"),
            Some(("epyc 7763", 280.0))
        );
        assert_eq!(
            lookup("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz").map(|m| m.1),
            Some(150.0)
        );
        // 6248R is a different part: the token must match exactly.
        assert_eq!(
            lookup("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz").map(|m| m.1),
            Some(205.0)
        );
        assert_eq!(lookup("AMD EPYC"), None);
        assert_eq!(lookup(""), None);
    }
}
