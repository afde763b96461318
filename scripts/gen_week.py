#!/usr/bin/env python3
"""A synthetic week at 1 s (604,800 rows) in carbontop's samples.csv format, for benchmarks.
CPU power follows a 1 h sine, intensity a 2-day sine, accuracy a saturating curve; energy and
carbon are integrated exactly as the Ledger does (interval averages), so `report` must agree."""
import datetime
import math
import sys

HDR = ("timestamp,elapsed_s,gpu_power_w,cpu_power_w,mem_power_w,net_rx_bytes,net_tx_bytes,"
       "net_power_w,total_power_w,energy_kwh,intensity_g_per_kwh,intensity_source,co2e_g,"
       "embodied_co2e_g,epoch,step,accuracy,loss,power_cap_w")
t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
e = c = 0.0
with open(sys.argv[1], "w") as f:
    f.write(HDR + "\n")
    for i in range(604_800):
        cpu = round(50 + 20 * math.sin(i / 600), 3)
        mem = 6.0
        tot = cpu + mem
        inten = round(300 + 100 * math.sin(i / 43_200), 1)
        if i:
            de = tot / 3.6e6
            e += de
            c += de * inten
        acc = min(90.0, 10 + 80 * (1 - math.exp(-i / 200_000)))
        ts = (t0 + datetime.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        f.write(f"{ts},{i},,{cpu},{mem},,,,{tot:.3f},{e:.9f},{inten},fixed,{c:.6f},,"
                f"{i // 20_000},{i},{acc:.3f},,\n")
