//! samples.csv as `replay` and `report` read it: any bytes give samples or a named error, never
//! a panic; the samples it accepts, integrated by the ledger, give energy and carbon that never
//! decrease and are never NaN.
#![no_main]

use carbontop::engine::{Ledger, LedgerConfig};
use carbontop::report::samples::SamplesReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) =
        SamplesReader::from_reader("fuzz.csv", Box::new(std::io::Cursor::new(data.to_vec())))
    else {
        return;
    };
    let mut ledger = Ledger::new(LedgerConfig {
        pue: carbontop::units::Pue::saturating(1.2),
        net_kwh_per_gb: 0.06894,
        embodied_kg: 2650.0,
        ..Default::default()
    });
    let (mut kwh, mut g) = (0.0f64, 0.0f64);
    let mut rows = 0;
    while let Some(next) = r.next_sample() {
        rows += 1;
        if rows > 10_000 {
            break;
        }
        let Ok(s) = next else { continue };
        let _ = (
            r.recorded_energy_kwh(),
            r.recorded_embodied_g(),
            r.cap_change(),
        );
        let t = ledger.push(s);
        assert!(t.energy_kwh.is_finite() && t.co2e_g.is_finite(), "{t:?}");
        assert!(
            t.energy_kwh >= kwh && t.co2e_g >= g,
            "energy or carbon went down: {t:?}"
        );
        kwh = t.energy_kwh;
        g = t.co2e_g;
    }
});
