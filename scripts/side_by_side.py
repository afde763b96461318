#!/usr/bin/env python3
"""carbontop and CodeCarbon 3.3.2 on the same run: the README's ratios for CPU, memory and total.

carbontop runs the bundled training example; inside it, CodeCarbon's OfflineEmissionsTracker
(machine mode, 1 s, the same country) measures the same process the way its users start it.
Both write CodeCarbon's emissions.csv; this prints each one's CPU, memory and total energy and
carbon, and carbontop's ratio to CodeCarbon for each. `--tracking-mode process` compares the
command's own figures: carbontop's `run --tracking-mode process` against CodeCarbon's
`tracking_mode="process"` (which tracks the Python process it runs in, the same one).

    python3 scripts/side_by_side.py [--zone FR] [--epochs 15] [--tracking-mode process]

Needs CodeCarbon 3.3.2 (installed into target/bench-venv on first use, from PyPI) and a built
carbontop (target/release or target/debug).
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "bench-venv")

WRAPPER = r'''
import runpy, sys
from codecarbon import OfflineEmissionsTracker
out, country, mode, script = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
t = OfflineEmissionsTracker(country_iso_code=country, measure_power_secs=1,
                            output_dir=out, log_level="error", tracking_mode=mode)
t.start()
sys.argv = [script] + sys.argv[5:]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    t.stop()
'''

# ISO alpha-2 → alpha-3 for the zones this script is run with.
ALPHA3 = {"FR": "FRA", "DE": "DEU", "GB": "GBR", "US": "USA", "IT": "ITA", "SE": "SWE"}


def python():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "codecarbon==3.3.2"], check=True)
    return py


def binary():
    for kind in ("release", "debug"):
        b = os.path.join(ROOT, "target", kind, "carbontop")
        if os.path.exists(b):
            return b
    sys.exit("build carbontop first (cargo build --release)")


def row(path):
    with open(path) as f:
        return list(csv.DictReader(f))[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zone", default="FR")
    ap.add_argument("--epochs", default="15")
    ap.add_argument("--tracking-mode", default="machine", choices=["machine", "process"])
    a = ap.parse_args()
    py = python()
    with tempfile.TemporaryDirectory() as d:
        wrapper = os.path.join(d, "wrap.py")
        with open(wrapper, "w") as f:
            f.write(WRAPPER)
        cc_dir = os.path.join(d, "cc")
        os.mkdir(cc_dir)
        out = os.path.join(d, "ct")
        cmd = [binary(), "run", "--headless", "--quiet", "--zone", a.zone, "--out", out,
               "--tracking-mode", a.tracking_mode, "--",
               py, wrapper, cc_dir, ALPHA3.get(a.zone, a.zone), a.tracking_mode,
               os.path.join(ROOT, "examples", "train.py"), "--epochs", a.epochs]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        ct, cc = row(os.path.join(out, "emissions.csv")), row(os.path.join(cc_dir, "emissions.csv"))
    f = lambda r, k: float(r[k] or 0)
    print(f"{'':14}{'carbontop':>14}{'CodeCarbon':>14}{'ratio':>8}")
    for label, k in [("CPU kWh", "cpu_energy"), ("memory kWh", "ram_energy"),
                     ("GPU kWh", "gpu_energy"), ("total kWh", "energy_consumed"),
                     ("kgCO2e", "emissions"), ("CPU W", "cpu_power"), ("memory W", "ram_power")]:
        x, y = f(ct, k), f(cc, k)
        ratio = f"{x / y:8.2f}" if y else "       —"
        print(f"{label:14}{x:14.6g}{y:14.6g}{ratio}")
    print(f"duration s    {f(ct, 'duration'):14.1f}{f(cc, 'duration'):14.1f}")
    print(f"tracking_mode {ct['tracking_mode']:>14}{cc['tracking_mode']:>14}")
    print("carbontop's total includes the network's energy (no column of its own in the format)")


if __name__ == "__main__":
    main()
