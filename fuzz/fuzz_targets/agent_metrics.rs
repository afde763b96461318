//! What `watch --agent` reads from an agent's /metrics: any text gives a node or an error,
//! never a panic; the figures it keeps are finite and not negative.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(node) = carbontop::serve::agents::parse("127.0.0.1:9184", &text) {
        let n = &node.fig;
        let figures = [
            n.facility_w,
            n.facility_j,
            n.co2e_g,
            n.intensity.unwrap_or(0.0),
            n.embodied_g.unwrap_or(0.0),
        ];
        let by_component = n.power_w.values().chain(n.it_j.values());
        for v in figures.iter().chain(by_component) {
            assert!(v.is_finite() && *v >= 0.0, "{n:?}");
        }
        assert!(n.progress.values().all(|v| v.is_finite()));
        if let Some(c) = n.comms_share() {
            assert!(c.is_finite());
        }
        if let Some((_, g)) = n.co2e_per_progress() {
            assert!(g.is_finite());
        }
    }
});
