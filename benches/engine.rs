//! In-process costs (issue 9, DESIGN.md §8): how fast the Ledger folds samples, the screen's
//! model takes a tick, a frame renders at 80×24 and 200×60, and samples.csv rows are written.
//! `cargo bench --bench engine`; `scripts/bench_all.py` runs it with the whole-process figures.
#![allow(clippy::expect_used)] // a benchmark whose setup fails has nothing to measure

use carbontop::app::replay::dashboard_of;
use carbontop::engine::{Ledger, LedgerConfig};
use carbontop::report::samples::SamplesWriter;
use carbontop::sample::{
    CpuReading, GpuReading, Intensity, NetReading, PowerReading, Progress, RaplCounter, Sample,
};
use carbontop::ui::model::{Dashboard, Mode, RunInfo};
use carbontop::ui::render::draw;
use carbontop::ui::state::UiState;
use carbontop::ui::theme;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;
use std::path::Path;

/// A realistic tick: 4 GPUs with energy counters, two RAPL packages, memory, network, grid.
fn sample(k: u64) -> Sample {
    let t = k as f64;
    Sample {
        time: chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(k as i64),
        elapsed_s: t,
        gpus: (0..4)
            .map(|i| GpuReading {
                index: i,
                power: Some(PowerReading::Instant(carbontop::units::Watts(
                    200.0 + f64::from(i),
                ))),
                energy_mj: Some(k * 200_000),
                util_pct: Some(95.0),
                mem_used_mib: Some(14_336.0),
                cap_w: Some(300.0),
                sm_clock_mhz: Some(1740.0),
                tree_share: None,
                mig: None,
            })
            .collect(),
        cpu: CpuReading::Rapl(
            (0..2)
                .map(|p| RaplCounter {
                    zone: format!("intel-rapl:{p}"),
                    energy_uj: (k * 60_000_000) % 262_143_328_850,
                    max_energy_range_uj: 262_143_328_850,
                })
                .collect(),
        ),
        mem: Some(PowerReading::Average(carbontop::units::Watts(95.4))),
        net: Some(NetReading {
            rx_bytes: k * 40_000,
            tx_bytes: k * 13_000,
            ..Default::default()
        }),
        intensity: Some(Intensity {
            g_per_kwh: carbontop::units::GPerKwh(350.0 + (k % 7) as f64),
            source: "uk".into(),
        }),
        progress: Progress {
            epoch: Some((k / 10) as f64),
            step: Some(k * 5),
            accuracy: Some(50.0 + (k as f64).sqrt()),
            loss: Some(1.0 / (1.0 + t)),
            metrics: vec![("f1".into(), 0.5)],
        },
        process: None,
        bands: Default::default(),
    }
}

fn engine(c: &mut Criterion) {
    let samples: Vec<Sample> = (0..10_000).map(sample).collect();
    let mut g = c.benchmark_group("ledger");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.bench_function("push 10k samples (4 GPUs, RAPL, net)", |b| {
        b.iter(|| {
            let mut l = Ledger::new(LedgerConfig::default());
            for s in &samples {
                black_box(l.push(s.clone()));
            }
        })
    });
    g.finish();

    // The screen's model folding the same ticks (bounded multi-tier history).
    let mut l = Ledger::new(LedgerConfig::default());
    let ticks: Vec<_> = samples
        .iter()
        .map(|s| (l.push(s.clone()), l.totals()))
        .collect();
    let info = RunInfo {
        title: "bench".into(),
        zone: "GB".into(),
        cpu_estimate: false,
        gpus: vec!["A40".into(); 4],
        cap_mode: "untouched".into(),
        samples_path: None,
        mode: Mode::Live,
    };
    let mut g = c.benchmark_group("dashboard");
    g.throughput(Throughput::Elements(ticks.len() as u64));
    g.bench_function("push 10k ticks", |b| {
        b.iter(|| {
            let mut d = Dashboard::new(
                info.clone(),
                carbontop::engine::Meter::new(
                    carbontop::engine::Basis {
                        gpu_count: 4,
                        ..Default::default()
                    },
                    true,
                ),
            );
            for (t, tot) in &ticks {
                d.push(t, *tot);
            }
            black_box(d.meter.snapshot());
        })
    });
    g.finish();

    let dir = tempfile::tempdir().expect("temp dir");
    let mut w =
        SamplesWriter::create(&dir.path().join("samples.csv"), &[0, 1, 2, 3], &[]).expect("writer");
    c.bench_function("samples.csv: write one row (flushed)", |b| {
        let mut i = 0;
        b.iter(|| {
            w.write(&ticks[i % ticks.len()].0).expect("write");
            i += 1;
        })
    });
}

fn render(c: &mut Criterion) {
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/traces/a40x4-cifar100.csv");
    let d = dashboard_of(&trace, None).expect("fixture");
    let (themes, i) = theme::resolve(None, None).expect("themes");
    let ui = UiState::new(themes, i, true, false);
    for (w, h) in [(80u16, 24u16), (200, 60)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("backend");
        c.bench_function(&format!("render one frame {w}x{h}"), |b| {
            b.iter(|| {
                t.draw(|f| draw(f, &d, &ui)).expect("draw");
            })
        });
    }
}

criterion_group!(benches, engine, render);
criterion_main!(benches);
