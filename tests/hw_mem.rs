//! Memory power end to end: a fake sysfs with a RAPL package and its DRAM sub-zone.

mod common;
use common::*;

#[test]
fn rapl_dram_is_memory_measured_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sysfs");
    let powercap = root.join("class/powercap");
    // A package whose counter stands still, and its DRAM sub-zone, which the child moves by
    // 1 J and then 2 J: memory gets the 3 J, the CPU none of it.
    for (zone, name, start) in [
        ("intel-rapl:0", "package-0", 5_000_000u64),
        ("intel-rapl:0:1", "dram", 7_000_000),
    ] {
        let z = powercap.join(zone);
        std::fs::create_dir_all(&z).unwrap();
        std::fs::write(z.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(z.join("max_energy_range_uj"), "262143328850\n").unwrap();
        std::fs::write(z.join("energy_uj"), format!("{start}\n")).unwrap();
    }
    let f = powercap.join("intel-rapl:0:1/energy_uj");
    let script = format!(
        "sleep 0.35; echo 8000000 > {f}.tmp && mv {f}.tmp {f}; sleep 0.35; \
         echo 10000000 > {f}.tmp && mv {f}.tmp {f}; sleep 0.35",
        f = f.display()
    );
    let out = dir.path().join("out");
    let o = run_on_sysfs(&root, &out, &script);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("RAPL DRAM (measured), 1 zone"), "{err}");
    assert!(err.contains("RAPL (measured), 1 package zone"), "{err}");

    let (h, rows) = read_csv(&out.join("samples.csv"));
    let (mem, el) = (col(&h, "mem_power_w"), col(&h, "elapsed_s"));
    let mut mem_j = 0.0;
    for k in 1..rows.len() {
        if !rows[k][mem].is_empty() {
            mem_j += num(&rows[k][mem]) * (num(&rows[k][el]) - num(&rows[k - 1][el]));
        }
    }
    // The source takes its average over the ticks' own instants, the span the meter multiplies
    // it by: the counter's joules come back exactly, however late a tick runs (a busy machine).
    assert!(close(mem_j, 3.0, 1e-3), "memory {mem_j} J, want 3 J");
    assert_eq!(cpu_joules(&h, &rows), 0.0, "DRAM is not CPU energy");
}

#[test]
fn without_rapl_memory_is_estimated_per_module() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["run", "--headless", "--interval", "100ms", "--sysfs-root"])
        .arg(fixture("sysfs/smbios-eight-dimms"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .args(["--", "sleep", "0.3"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // Eight modules in the fixture's SMBIOS on bare metal; a VM (this test's host, maybe)
    // ignores them for CodeCarbon's size heuristic.
    assert!(
        err.contains("estimate, 8 DIMMs × 5 W (SMBIOS) [band 1.5–5.3 W/DIMM]")
            || err.contains("CodeCarbon size heuristic"),
        "{err}"
    );
    assert!(!err.contains("W/GiB"), "{err}");
}
