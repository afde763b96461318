#!/usr/bin/env python3
"""Generates fixtures/traces/a40x4-cifar100.csv: a 4-GPU training run in samples.csv form.

Built from real measurements (fixtures/zeus, see its README): each A40 draws the average power
Zeus measured for CIFAR-100/ShuffleNetV2 at batch 1024 under a 300 W cap, for the measured epoch
time; between epochs a short evaluation phase idles the GPUs; validation accuracy follows the
epochs at which Zeus's run first reached each target; grid intensity follows the shape of Zeus's
WattTime signal (one half-hour slot per 30 s of trace), scaled to the US annual mean (369.5 g/kWh).

The columns are computed with carbontop's formulas (DESIGN.md §5) independently of the Rust code,
so replaying this file must reproduce its energy_kwh and co2e_g: a cross-check of the Ledger.
Deterministic: run it again and the file is byte-identical.

`--cap W` (a limit Zeus measured: 100, 125, …, 300) writes the same run under that power cap to
fixtures/traces/a40x4-cifar100-capW.csv, for comparisons (`report a.csv b.csv`).
"""
import csv
import math
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZEUS = ROOT / "fixtures" / "zeus"
N_GPUS = 4
CAP_W = float(sys.argv[sys.argv.index("--cap") + 1]) if "--cap" in sys.argv else 300.0
OUT = ROOT / "fixtures" / "traces" / (
    "a40x4-cifar100.csv" if CAP_W == 300.0 else f"a40x4-cifar100-cap{CAP_W:.0f}.csv")
PUE = 1.2  # AWS preset: replay must recover it from the file
EPOCHS = 30
EVAL_S = 3
IDLE_W = 72.0
CPU_TRAIN_W, CPU_EVAL_W = 118.0, 64.0
MEM_W = 256 * 0.3725  # 256 GiB × Green Algorithms 0.3725 W/GiB
NET_KWH_PER_GB = 0.06894
J_PER_KWH = 3.6e6

rng = random.Random(20261123)

# Power and epoch time measured by Zeus at the cap.
with open(ZEUS / "summary_power_a40.csv") as f:
    row = next(r for r in csv.DictReader(f)
               if (r["dataset"], r["network"], r["batch_size"], r["optimizer"], r["power_limit"])
               == ("cifar100", "shufflenetv2", "1024", "adadelta", f"{CAP_W:.0f}"))
EPOCH_S = float(row["time_per_epoch"])
TRAIN_W = float(row["average_power"])

# Accuracy path: (epoch, accuracy %) points, interpolated per epoch.
with open(ZEUS / "accuracy_cifar100_shufflenetv2_b1024.csv") as f:
    pts = [(0, 1.0)] + [(int(r["target_epoch"]), float(r["target_metric"]) * 100)
                        for r in csv.DictReader(f) if r["target_epoch"] != "nan"]


def accuracy_at(epoch):
    for (e0, a0), (e1, a1) in zip(pts, pts[1:]):
        if e0 <= epoch <= e1:
            return a0 + (a1 - a0) * (epoch - e0) / (e1 - e0)
    return pts[-1][1]


with open(ZEUS / "carbon_hist.csv") as f:
    signal = [float(r["value"]) for r in csv.DictReader(f)]
scale = 369.5 / (sum(signal) / len(signal))

# Phases: 2 s idle warm-up, then per epoch training (measured time) and evaluation.
phases = [("idle", 2.0)]
for e in range(1, EPOCHS + 1):
    phases += [("train", EPOCH_S), ("eval", float(EVAL_S))]
total_s = sum(d for _, d in phases)

start = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)
header = ["timestamp", "elapsed_s", "gpu_power_w", "cpu_power_w", "mem_power_w", "net_rx_bytes",
          "net_tx_bytes", "net_power_w", "total_power_w", "energy_kwh", "intensity_g_per_kwh",
          "intensity_source", "co2e_g", "embodied_co2e_g", "epoch", "step", "accuracy", "loss",
          "power_cap_w"]
for i in range(N_GPUS):
    header += [f"gpu{i}_{c}" for c in ("power_w", "energy_j", "util_pct", "mem_used_mib", "cap_w")]
header += ["cap_change"]  # power-cap changes during the row's interval: none in this run
header += ["process_cpu_w", "process_gpu_w"]  # recorded by `record`: no command, so unknown


def phase_at(t):
    acc = 0.0
    epoch_done = 0
    for name, d in phases:
        if t < acc + d:
            return name, epoch_done, t - acc
        acc += d
        if name == "eval":
            epoch_done += 1
    return "eval", epoch_done, 0.0


rows = []
t = 0.0
energy_kwh = co2e = 0.0
gpu_j = [0.0] * N_GPUS
rx = tx = 0
prev_t = None
k = 0
steps_per_epoch = 49  # 50,000 images / 1024
while t <= total_s:
    name, epochs_done, into = phase_at(t)
    dt = 0.0 if prev_t is None else t - prev_t
    gpus = []
    for i in range(N_GPUS):
        if name == "train":
            ramp = min(1.0, (into + 1) / 3.0) if epochs_done == 0 else 1.0
            p = IDLE_W + (TRAIN_W - IDLE_W) * ramp + rng.gauss(0, 6.0)
            util = min(100.0, 93.0 + rng.gauss(0, 2.0))
        else:
            p = IDLE_W + rng.gauss(0, 2.0)
            util = 0.0 if name == "idle" else 18.0 + rng.gauss(0, 3.0)
        p = round(p, 3)
        gpu_j[i] += p * dt
        gpus.append((p, gpu_j[i], round(util, 1), 1200.0 if name == "idle" else 14336.0, CAP_W))
    cpu = round((CPU_TRAIN_W if name == "train" else CPU_EVAL_W) + rng.gauss(0, 3.0), 3)
    nbytes = int(rng.uniform(2e4, 6e4) * dt) if name == "train" else int(5e3 * dt)
    rx += nbytes
    tx += nbytes // 3
    net_w = (nbytes + nbytes // 3) / 1e9 * NET_KWH_PER_GB * J_PER_KWH / dt if dt > 0 else None
    gpu_w = sum(g[0] for g in gpus)
    total_w = gpu_w + cpu + MEM_W + (net_w or 0.0)
    e_kwh = total_w * dt * PUE / J_PER_KWH
    intensity = round(signal[min(int(t // 30), len(signal) - 1)] * scale, 2)
    energy_kwh += e_kwh
    co2e += e_kwh * intensity
    epoch = epochs_done if epochs_done > 0 else None
    acc = round(accuracy_at(epochs_done), 2) if epochs_done > 0 else None
    loss = round(4.6 * math.exp(-0.06 * epochs_done) + 0.9, 4) if epochs_done > 0 else None
    step = epochs_done * steps_per_epoch + (int(into / EPOCH_S * steps_per_epoch) if name == "train" else 0)
    ts = start + timedelta(seconds=t)
    row = [ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z", repr(t), repr(gpu_w),
           repr(cpu), repr(MEM_W), str(rx), str(tx), "" if net_w is None else repr(net_w),
           repr(total_w), repr(energy_kwh), repr(intensity), "fixture", repr(co2e), "",
           "" if epoch is None else str(epoch), str(step), "" if acc is None else repr(acc),
           "" if loss is None else repr(loss), repr(CAP_W * N_GPUS)]
    for g in gpus:
        row += [repr(g[0]), repr(g[1]), repr(g[2]), repr(g[3]), repr(g[4])]
    row += ["", "", ""]
    rows.append(row)
    prev_t = t
    k += 1
    t = round(k * 1.0 + rng.uniform(-0.004, 0.004), 3)

OUT.parent.mkdir(parents=True, exist_ok=True)
with open(OUT, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
print(f"{OUT}: {len(rows)} rows, {energy_kwh:.6f} kWh, {co2e:.3f} gCO2e")
