//! A MIG instance's share of its card (issue 19). NVML measures power and energy per card
//! only, never per MIG instance, so a job that holds instances is charged the card's figures ×
//! its compute slices over the card's: what it reserved, as schedulers bill MIG time. That is
//! an estimate: partition-level power cannot be told from slice counts alone, and light models
//! of it are often far off (Vamja, Ray, George, Devi, "On the Partitioning of GPU Power among
//! Multi-Instances", arXiv:2501.17752, 2025, measured on A100).
//!
//! The band is physical. Over an interval the card drew E (its counter or power readings), of
//! which at least its idle draw I is spent whatever runs on it, shared by slices. The job's
//! instances, holding s of the card, drew at least their share of the idle (the other instances
//! doing all the work): low = s·I; and at most everything but the others' share of the idle
//! (theirs idle, the job doing all the work): high = E − (1 − s)·I. Both lie within [0, E]: an
//! instance never draws more than its card. I is bounded below by [`IDLE_FLOOR_SHARE`] of the
//! card's default power limit (never above E); a lower I only widens the band.

use crate::sample::MigShare;

/// The card's idle draw as a share of its default power limit, taken low on purpose: an idle
/// data-centre GPU in persistence mode shows 12–20 % of its limit in nvidia-smi (A100-SXM4
/// about 50–60 W of 400 W, H100-SXM about 70–120 W of 700 W; NVIDIA's datasheets give the
/// limits, the idle figures are commonly reported readings, not a datasheet value). A floor
/// below every such reading keeps the band true where the card idles higher; with no limit
/// known, the floor is 0 and the band is [0, E].
pub const IDLE_FLOOR_SHARE: f64 = 0.10;

/// The job's share of the card (0–1), slices over the card's.
pub fn share(m: &MigShare) -> f64 {
    if m.of == 0 {
        return 1.0;
    }
    (f64::from(m.slices) / f64::from(m.of)).clamp(0.0, 1.0)
}

/// The job's energy from the card's `card_j` over `dt_s` seconds: (point, low, high) in J.
pub fn charge(m: &MigShare, card_j: f64, dt_s: f64) -> (f64, f64, f64) {
    let s = share(m);
    let idle_j = m
        .card_limit_w
        .filter(|w| w.is_finite() && *w > 0.0)
        .map_or(0.0, |w| IDLE_FLOOR_SHARE * w * dt_s.max(0.0))
        .min(card_j.max(0.0));
    (s * card_j, s * idle_j, card_j - (1.0 - s) * idle_j)
}

/// How an output names the job's part of a card: `MIG 3g.40gb (3 of 7 slices, estimated)`,
/// or `MIG 3g.40gb + 2g.20gb (5 of 7 slices, estimated)` for two instances of one card.
pub fn label(m: &MigShare) -> String {
    let profiles = if m.profiles.is_empty() {
        "instance".to_owned()
    } else {
        m.profiles.join(" + ")
    };
    format!(
        "MIG {profiles} ({} of {} slices, estimated)",
        m.slices, m.of
    )
}

/// The same in a narrow panel: `MIG 3g.40gb · 3/7 slices, est.`.
pub fn short_label(m: &MigShare) -> String {
    let profiles = if m.profiles.is_empty() {
        "instance".to_owned()
    } else {
        m.profiles.join("+")
    };
    format!("MIG {profiles} · {}/{} slices, est.", m.slices, m.of)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(slices: u32, limit: Option<f64>) -> MigShare {
        MigShare {
            slices,
            of: 7,
            profiles: vec!["3g.40gb".into()],
            card_limit_w: limit,
        }
    }

    #[test]
    fn three_of_seven_slices_are_charged_three_sevenths_within_the_physical_band() {
        // A 700 W card drawing 350 W for 2 s: 700 J; idle floor 70 W × 2 s = 140 J.
        let (p, lo, hi) = charge(&m(3, Some(700.0)), 700.0, 2.0);
        assert!((p - 300.0).abs() < 1e-9);
        assert!((lo - 60.0).abs() < 1e-9, "{lo}");
        assert!((hi - (700.0 - 4.0 / 7.0 * 140.0)).abs() < 1e-9, "{hi}");
        assert!(0.0 <= lo && lo <= p && p <= hi && hi <= 700.0);
        assert_eq!(label(&m(3, None)), "MIG 3g.40gb (3 of 7 slices, estimated)");
    }

    #[test]
    fn the_band_never_leaves_the_cards_energy() {
        // The card below its idle floor (a power reading lower than the floor): I is the card's.
        let (p, lo, hi) = charge(&m(7, Some(400.0)), 10.0, 1.0);
        assert_eq!((p, lo, hi), (10.0, 10.0, 10.0));
        // No limit known: [0, E].
        let (_, lo, hi) = charge(&m(2, None), 100.0, 1.0);
        assert_eq!((lo, hi), (0.0, 100.0));
        // A nonsense count is clamped, never more than the card.
        let bad = MigShare {
            slices: 9,
            of: 7,
            ..m(0, None)
        };
        assert_eq!(charge(&bad, 100.0, 1.0).0, 100.0);
        assert_eq!(share(&MigShare::default()), 1.0);
    }
}
