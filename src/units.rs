//! Units as types at module borders (DESIGN.md §2): power, IT and facility energy, carbon and
//! grid intensity. A meter that mixes IT and facility energy, or passes an intensity where
//! watts are meant, is wrong by a factor nobody sees; here it does not compile:
//!
//! ```compile_fail
//! use carbontop::units::{FacilityKwh, ItKwh};
//! // IT and facility energy do not add: one of them is missing the PUE.
//! let _ = ItKwh(1.0) + FacilityKwh(1.0);
//! ```
//!
//! ```compile_fail
//! use carbontop::units::{GPerKwh, ItKwh};
//! // Carbon is facility energy × intensity: IT energy must go through the PUE first.
//! let _ = ItKwh(1.0) * GPerKwh(400.0);
//! ```
//!
//! ```compile_fail
//! use carbontop::units::{GPerKwh, Watts};
//! fn draw(_: Watts) {}
//! draw(GPerKwh(400.0));
//! ```
//!
//! The only ways between them are the formulas of DESIGN.md §5:
//!
//! ```
//! use carbontop::units::{GPerKwh, GramsCo2e, ItKwh, Pue, Watts};
//! let it = Watts(100.0).over_secs(3600.0); // 0.1 kWh
//! let facility = it * Pue::new(1.5).unwrap(); // E_facility = E_it × PUE
//! let c: GramsCo2e = facility * GPerKwh(400.0); // C = E × I
//! assert!((c.0 - 60.0).abs() < 1e-9);
//! ```

use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// Joules per kilowatt-hour (exact).
pub const J_PER_KWH: f64 = 3.6e6;

macro_rules! quantity {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        /// The bare number, as f64 writes it (CSV cells, full-precision lines).
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Add for $name {
            type Output = $name;
            fn add(self, o: $name) -> $name {
                $name(self.0 + o.0)
            }
        }

        impl Sub for $name {
            type Output = $name;
            fn sub(self, o: $name) -> $name {
                $name(self.0 - o.0)
            }
        }

        impl AddAssign for $name {
            fn add_assign(&mut self, o: $name) {
                self.0 += o.0;
            }
        }

        /// Scaling by a plain number (a share, a count) keeps the unit.
        impl Mul<f64> for $name {
            type Output = $name;
            fn mul(self, k: f64) -> $name {
                $name(self.0 * k)
            }
        }

        impl Div<f64> for $name {
            type Output = $name;
            fn div(self, k: f64) -> $name {
                $name(self.0 / k)
            }
        }

        /// The ratio of two amounts of the same unit is a plain number.
        impl Div for $name {
            type Output = f64;
            fn div(self, o: $name) -> f64 {
                self.0 / o.0
            }
        }

        impl std::iter::Sum for $name {
            fn sum<I: Iterator<Item = $name>>(it: I) -> $name {
                $name(it.map(|x| x.0).sum())
            }
        }
    };
}

quantity!(
    /// Power (W).
    Watts
);
quantity!(
    /// Energy drawn by the IT equipment (kWh): what the meters read, before PUE.
    ItKwh
);
quantity!(
    /// Energy drawn by the facility (kWh): IT energy × PUE, what carbon is counted on.
    FacilityKwh
);
quantity!(
    /// Carbon (grams of CO2 equivalent).
    GramsCo2e
);
quantity!(
    /// Grid carbon intensity (gCO2e per kWh).
    GPerKwh
);

impl Watts {
    /// IT energy of this power held for `secs` seconds.
    pub fn over_secs(self, secs: f64) -> ItKwh {
        ItKwh(self.0 * secs / J_PER_KWH)
    }
}

impl ItKwh {
    pub fn from_joules(j: f64) -> ItKwh {
        ItKwh(j / J_PER_KWH)
    }
}

impl FacilityKwh {
    /// E_facility = E_it × PUE, from IT joules (in the Ledger's order of operations, so the
    /// recorded figures stay bit for bit what they were).
    pub fn from_it_joules(j: f64, pue: Pue) -> FacilityKwh {
        FacilityKwh(j * pue.0 / J_PER_KWH)
    }

    pub fn joules(self) -> f64 {
        self.0 * J_PER_KWH
    }
}

/// An energy, for what formats one (IT or facility; a bare number where a row holds it).
pub trait Energy: Copy {
    fn kwh(self) -> f64;
}

impl Energy for ItKwh {
    fn kwh(self) -> f64 {
        self.0
    }
}

impl Energy for FacilityKwh {
    fn kwh(self) -> f64 {
        self.0
    }
}

impl Energy for f64 {
    fn kwh(self) -> f64 {
        self
    }
}

/// An amount of carbon, for what formats one.
pub trait Carbon: Copy {
    fn grams(self) -> f64;
}

impl Carbon for GramsCo2e {
    fn grams(self) -> f64 {
        self.0
    }
}

impl Carbon for f64 {
    fn grams(self) -> f64 {
        self
    }
}

/// A power, for what formats one.
pub trait Power: Copy {
    fn watts(self) -> f64;
}

impl Power for Watts {
    fn watts(self) -> f64 {
        self.0
    }
}

impl Power for f64 {
    fn watts(self) -> f64 {
        self
    }
}

/// Power usage effectiveness: facility energy over IT energy, ≥ 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
#[serde(transparent)]
pub struct Pue(f64);

impl Pue {
    /// A PUE, if it is one (finite, ≥ 1).
    pub fn new(x: f64) -> Option<Pue> {
        (x.is_finite() && x >= 1.0).then_some(Pue(x))
    }

    /// A PUE from a figure already checked where it was read (config, a recording), kept
    /// at 1 where it is not one, so facility energy is never below IT energy.
    pub fn saturating(x: f64) -> Pue {
        Pue::new(x).unwrap_or_default()
    }
}

impl std::fmt::Display for Pue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Default for Pue {
    /// A workstation: no facility overhead (DESIGN.md §5).
    fn default() -> Self {
        Pue(1.0)
    }
}

/// E_facility = E_it × PUE.
impl Mul<Pue> for ItKwh {
    type Output = FacilityKwh;
    fn mul(self, p: Pue) -> FacilityKwh {
        FacilityKwh(self.0 * p.0)
    }
}

/// Facility power = IT power × PUE (watts stay watts; the screen labels which it shows).
impl Mul<Pue> for Watts {
    type Output = Watts;
    fn mul(self, p: Pue) -> Watts {
        Watts(self.0 * p.0)
    }
}

/// C = E_facility × I.
impl Mul<GPerKwh> for FacilityKwh {
    type Output = GramsCo2e;
    fn mul(self, i: GPerKwh) -> GramsCo2e {
        GramsCo2e(self.0 * i.0)
    }
}

/// The intensity that explains a carbon figure: C / E.
impl Div<FacilityKwh> for GramsCo2e {
    type Output = GPerKwh;
    fn div(self, e: FacilityKwh) -> GPerKwh {
        GPerKwh(self.0 / e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formulas_and_their_units() {
        let it = Watts(150.0).over_secs(3600.0);
        assert!((it.0 - 0.15).abs() < 1e-15);
        let f = it * Pue::new(1.2).unwrap();
        assert!((f.0 - 0.18).abs() < 1e-15);
        let c = f * GPerKwh(500.0);
        assert!((c.0 - 90.0).abs() < 1e-12);
        assert!(((c / f).0 - 500.0).abs() < 1e-9);
        assert_eq!(Pue::new(0.9), None);
        assert_eq!(Pue::new(f64::NAN), None);
        assert_eq!(ItKwh::from_joules(3.6e6), ItKwh(1.0));
        let total: GramsCo2e = [GramsCo2e(1.0), GramsCo2e(2.5)].into_iter().sum();
        assert_eq!(total, GramsCo2e(3.5));
        assert_eq!(GramsCo2e(3.0) / GramsCo2e(1.5), 2.0);
    }
}
