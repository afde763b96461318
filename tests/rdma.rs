//! RDMA (InfiniBand/RoCE) port traffic end to end, on a fake sysfs tree (`--sysfs-root`): the
//! ports' counters (4-octet words) become cluster traffic on the port model, a counter reset
//! is counted from zero, the command is charged none of it when it holds no RDMA device, the
//! recording carries it in its `net_rdma_*` columns, and `report` reads it back.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use std::path::Path;

fn port(root: &Path, dev: &str, rate: &str) -> std::path::PathBuf {
    let d = root.join(format!("class/infiniband/{dev}/ports/1"));
    std::fs::create_dir_all(d.join("counters")).unwrap();
    std::fs::write(d.join("rate"), rate).unwrap();
    std::fs::write(d.join("counters/port_xmit_data"), "1000\n").unwrap();
    std::fs::write(d.join("counters/port_rcv_data"), "0\n").unwrap();
    d.join("counters")
}

#[test]
fn rdma_ports_are_the_machines_cluster_traffic_within_the_ib_ports_bound() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sys");
    let out = dir.path().join("out");
    let c = port(&root, "mlx5_0", "200 Gb/sec (4X HDR)\n");
    let (x, r) = (c.join("port_xmit_data"), c.join("port_rcv_data"));
    // The counters move while the command runs: 250,000,000 words (1 GB) sent, 10 GB
    // received in one step (more than the HDR line carries in a tick: held at its bound), then
    // a reset (driver reload) to 5 words, from which 5 words = 20 bytes count.
    let script = format!(
        "sleep 0.5; echo 250001000 > {x}; echo 2500000000 > {r}; sleep 0.5; \
         echo 5 > {x}; sleep 0.5",
        x = x.display(),
        r = r.display()
    );
    let o = run_on_sysfs(&root, &out, &script);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("RDMA"), "the summary shows it: {err}");
    let (h, rows) = read_csv(&out.join("samples.csv"));
    let last = rows.last().unwrap();
    let cell = |n: &str| last[col(&h, n)].clone();
    assert_eq!(cell("net_rdma_tx_bytes"), "1000000020");
    assert_eq!(cell("net_rdma_rx_bytes"), "10000000000");
    assert_eq!(
        cell("net_cmd_rdma_tx_bytes"),
        "0",
        "sh holds no RDMA device"
    );
    // Never above one HDR port and its switch port at line rate (23 W, high end 35 W).
    let p = col(&h, "net_rdma_power_w");
    let peak = rows
        .iter()
        .filter(|r| !r[p].is_empty())
        .map(|r| num(&r[p]))
        .fold(0.0, f64::max);
    assert!(peak > 0.0 && peak <= 23.0 + 1e-9, "peak {peak} W");
    for r in &rows {
        if !r[p].is_empty() {
            assert!(
                num(&r[col(&h, "net_power_w")]) + 1e-9 >= num(&r[p]),
                "{r:?}"
            );
        }
    }
    // The recording reads back with its RDMA figures.
    let j = json_of(
        bin()
            .arg("report")
            .arg(out.join("samples.csv"))
            .arg("--json"),
    );
    let run = &j["runs"][0];
    assert_eq!(run["rdma"]["tx_bytes"], 1_000_000_020u64, "{j}");
    assert!(run["rdma"]["energy_kwh"].as_f64().unwrap() > 0.0, "{j}");
}
