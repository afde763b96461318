#!/usr/bin/env python3
"""Every cost-of-watching figure of DESIGN.md §8 / issue 9, in one run, with its budget:

  - in-process (criterion, benches/engine.rs): Ledger samples/s, the screen model's ticks/s,
    one samples.csv row, one frame at 80x24 and 200x60;
  - whole process (kernel accounting: utime+stime and VmHWM from /proc): `record --headless` at
    1 s and 100 ms, the screen (`replay` at 1 s and 100 ms, `watch` at 1 s) with its first frame,
    and `report --png --emissions` on a generated week at 1 s (604,800 rows);
  - the peer, CodeCarbon 3.3 (PyPI, OfflineEmissionsTracker at a 1 s interval), measured the
    same way in the same run, side by side with carbontop's headless run, so the ratio holds on
    a noisy machine. It is installed into target/bench-venv on first use (needs PyPI);
    `--no-peer` skips it.

    python3 scripts/bench_all.py [--quick] [--no-peer] [--headless-only] [--headless-secs S]

--quick shortens every duration (for a smoke test; the figures get coarser). --headless-only
measures only `record --headless` at 1 s beside the peer (issue 18's cost-of-measuring check);
--headless-secs sets how long (default 120 s: two minutes, start-up included in the budget).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "carbontop")
VENV = os.path.join(ROOT, "target", "bench-venv")
HZ = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """utime + stime (+ waited-for children), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in v[11:15]) / HZ


def hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Watched:
    """A process whose steady-state CPU share is measured from `ready` to the end."""

    def __init__(self, name, args, ready, env=None):
        self.name = name
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env=env, cwd=ROOT)
        self.ready = ready
        self.ready_at = None
        self.cpu_at_ready = None

    def poll_ready(self):
        if self.ready_at is None and self.ready():
            self.ready_at = time.monotonic()
            self.cpu_at_ready = cpu_s(self.p.pid)

    def finish(self):
        end = time.monotonic()
        cpu, hwm = cpu_s(self.p.pid), hwm_mib(self.p.pid)
        self.p.terminate()
        out = self.p.communicate(timeout=60)[0].decode(errors="replace")
        if self.ready_at is None:
            raise SystemExit(f"{self.name} never got ready:\n{out[-2000:]}")
        return {
            "startup_ms": 1000 * (self.ready_at - self.t0),
            "startup_cpu_s": self.cpu_at_ready,
            "cpu_pct": 100 * (cpu - self.cpu_at_ready) / (end - self.ready_at),
            "rss_mib": hwm,
            # The whole life, start-up included, over the whole wall time.
            "cpu_total_pct": 100 * cpu / (end - self.t0),
            "cpu_total_s": cpu,
            "wall_s": end - self.t0,
            "out": out,
        }


def run_headless(interval, secs, peer):
    """carbontop record --headless (and CodeCarbon beside it when `peer`)."""
    d = tempfile.mkdtemp()
    csv = os.path.join(d, "r", "samples.csv")

    def rows():
        try:
            with open(csv) as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    ct = Watched("carbontop", [BIN, "record", "--headless", "--quiet", "--no-gpu", "--interval",
                               interval, "--out", os.path.join(d, "r")], lambda: rows() >= 2)
    cc = None
    if peer:
        marker = os.path.join(d, "cc-started")
        cc = Watched("codecarbon", [os.path.join(VENV, "bin", "python"),
                                    os.path.join(ROOT, "scripts", "peer_codecarbon.py"), marker],
                     lambda: os.path.exists(marker))
    end = time.monotonic() + secs
    while time.monotonic() < end:
        for w in (ct, cc):
            if w:
                w.poll_ready()
        time.sleep(0.001 if ct.ready_at is None else 0.05)
    return ct.finish(), (cc.finish() if cc else None)


def ensure_peer():
    py = os.path.join(VENV, "bin", "python")
    if os.path.exists(py) and subprocess.run([py, "-c", "import codecarbon"],
                                             capture_output=True).returncode == 0:
        return True
    print("installing CodeCarbon 3.3.2 into target/bench-venv …", flush=True)
    if subprocess.run([sys.executable, "-m", "venv", VENV]).returncode != 0:
        return False
    return subprocess.run([py, "-m", "pip", "install", "-q", "codecarbon==3.3.2"]).returncode == 0


def screen(mode, interval, size, secs):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_screen.py"),
                          "--mode", mode, "--interval", interval, "--size", size,
                          "--secs", str(secs)], capture_output=True, text=True, cwd=ROOT).stdout
    num = lambda pat: float(re.search(pat, out).group(1))
    return {
        "first_frame_ms": num(r"first frame after (\d+) ms"),
        "first_data_ms": num(r"with data after (\d+) ms"),
        "cpu_pct": num(r"after the first frame: ([\d.]+)%"),
        "rss_mib": num(r"peak RSS ([\d.]+) MiB"),
        "restored": "restored on q: yes" in out,
    }


def report_week():
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "bench_report.sh")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         cwd=ROOT).stdout
    m = re.search(r"([\d.]+) s wall.*peak RSS (\d+) KiB", out)
    return {"wall_s": float(m.group(1)), "rss_mib": int(m.group(2)) / 1024}


def criterion(quick):
    t = "1" if quick else "3"
    subprocess.run(["cargo", "bench", "--locked", "-q", "--bench", "engine", "--",
                    "--warm-up-time", "1", "--measurement-time", t], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    base = os.path.join(ROOT, "target", "criterion")

    def ns(name):
        with open(os.path.join(base, name, "new", "estimates.json")) as f:
            return json.load(f)["mean"]["point_estimate"]

    return {
        "ledger_per_s": 10_000 / (ns("ledger/push 10k samples (4 GPUs, RAPL, net)") / 1e9),
        "model_per_s": 10_000 / (ns("dashboard/push 10k ticks") / 1e9),
        "row_us": ns("samples.csv_ write one row (flushed)") / 1e3,
        "frame_80_ms": ns("render one frame 80x24") / 1e6,
        "frame_200_ms": ns("render one frame 200x60") / 1e6,
    }


def headless_budget(secs, peer, add, rows):
    """Issue 18: `record --headless` at 1 s under 0.05% of one core over two minutes, start-up
    included, beside CodeCarbon 3.3.2 in the same run."""
    h, cc = run_headless("1s", secs, peer)
    add(f"headless 1 s over {h['wall_s']:.0f} s incl. start-up: CPU",
        f"{h['cpu_total_pct']:.4f}% of one core ({h['cpu_total_s']:.2f} s)", "< 0.05%",
        h["cpu_total_pct"] < 0.05)
    add("headless 1 s once started: CPU", f"{h['cpu_pct']:.4f}% of one core")
    add("headless 1 s: peak RSS", f"{h['rss_mib']:.1f} MiB", "< 10 MiB", h["rss_mib"] < 10)
    if cc:
        add("CodeCarbon 3.3.2 1 s, same run, incl. start-up: CPU",
            f"{cc['cpu_total_pct']:.3f}% of one core ({cc['cpu_total_s']:.2f} s)")
        add("CodeCarbon: peak RSS", f"{cc['rss_mib']:.1f} MiB")
    print("\n| what | figure | budget | |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0 if all(r[3] != "MISSED" for r in rows) else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--headless-only", action="store_true")
    ap.add_argument("--headless-secs", type=float, default=None)
    a = ap.parse_args()
    long_s, short_s = (8, 6) if a.quick else (30, 20)
    subprocess.run(["cargo", "build", "--release", "--locked", "-q"], cwd=ROOT, check=True)
    peer = not a.no_peer and ensure_peer()
    if not a.no_peer and not peer:
        print("CodeCarbon 3.3.2 could not be installed: carbontop measured alone", flush=True)
    print(f"machine: {os.cpu_count()} cores; {'quick' if a.quick else 'full'} run", flush=True)

    rows = []  # (what, figure, budget, ok)

    def add(what, fig, budget="", ok=None):
        rows.append((what, fig, budget, "" if ok is None else ("ok" if ok else "MISSED")))
        print(f"  {what}: {fig}  {budget}", flush=True)

    if a.headless_only:
        return headless_budget(a.headless_secs or (20 if a.quick else 120), peer, add, rows)

    c = criterion(a.quick)
    add("Ledger throughput", f"{c['ledger_per_s'] / 1e6:.2f} M samples/s (4 GPUs, RAPL, net)")
    add("screen model", f"{c['model_per_s'] / 1e6:.2f} M ticks/s")
    add("samples.csv row (flushed)", f"{c['row_us']:.1f} µs")
    add("render one frame 80×24", f"{c['frame_80_ms']:.2f} ms")
    add("render one frame 200×60", f"{c['frame_200_ms']:.2f} ms")

    h1, cc = run_headless("1s", long_s, peer)
    add("headless 1 s: CPU", f"{h1['cpu_pct']:.3f}% of one core", "< 0.1%", h1["cpu_pct"] < 0.1)
    add("headless 1 s: peak RSS", f"{h1['rss_mib']:.1f} MiB", "< 10 MiB", h1["rss_mib"] < 10)
    add("headless: first sample written", f"{h1['startup_ms']:.0f} ms", "< 100 ms",
        h1["startup_ms"] < 100)
    # /proc counts in clock ticks (10 ms): 0 means under one tick.
    start_ms = 1000 * h1["startup_cpu_s"]
    add("headless: CPU to start", f"{start_ms:.0f} ms" if start_ms else "< 10 ms (one clock tick)")
    if cc:
        add("CodeCarbon 3.3.2 1 s: CPU", f"{cc['cpu_pct']:.3f}% of one core "
            f"({cc['cpu_pct'] / max(h1['cpu_pct'], 1e-9):.0f}× carbontop)")
        add("CodeCarbon: peak RSS", f"{cc['rss_mib']:.1f} MiB "
            f"({cc['rss_mib'] / h1['rss_mib']:.0f}× carbontop)")
        add("CodeCarbon: CPU to start", f"{cc['startup_cpu_s']:.2f} s (carbontop: "
            + (f"{start_ms:.0f} ms)" if start_ms else "< 10 ms)"))
    h100, _ = run_headless("100ms", short_s, False)
    add("headless 100 ms: CPU", f"{h100['cpu_pct']:.3f}% of one core", "< 1%",
        h100["cpu_pct"] < 1)

    w = screen("watch", "1s", "80x24", short_s)
    add("screen (watch 80×24) first frame with data", f"{w['first_data_ms']:.0f} ms", "< 50 ms",
        w["first_data_ms"] < 50)
    r1 = screen("replay", "1s", "80x24", short_s)
    add("screen 1 s (replay 80×24): CPU", f"{r1['cpu_pct']:.3f}% of one core", "< 0.4%",
        r1["cpu_pct"] < 0.4)
    add("screen 1 s: peak RSS", f"{r1['rss_mib']:.1f} MiB", "< 12 MiB", r1["rss_mib"] < 12)
    r100 = screen("replay", "100ms", "200x60", short_s)
    add("screen 100 ms (replay 200×60): CPU", f"{r100['cpu_pct']:.3f}% of one core")
    add("terminal restored on q", "yes" if all(x["restored"] for x in (w, r1, r100)) else "NO")

    rep = report_week()
    add("report --png --emissions, a week at 1 s", f"{rep['wall_s']:.2f} s, {rep['rss_mib']:.0f} MiB",
        "< 5 s, bounded", rep["wall_s"] < 5)

    print("\n| what | figure | budget | |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0 if all(r[3] != "MISSED" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
