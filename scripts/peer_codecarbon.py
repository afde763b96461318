#!/usr/bin/env python3
"""The peer for scripts/bench_all.py: CodeCarbon's offline tracker at a 1 s interval, as a
user would start it around a training run. Touches MARKER once the tracker has started, then
sleeps until it is terminated (bench_all.py measures it from /proc meanwhile).

    target/bench-venv/bin/python scripts/peer_codecarbon.py MARKER
"""
import pathlib
import sys
import time

from codecarbon import OfflineEmissionsTracker

tracker = OfflineEmissionsTracker(
    country_iso_code="FRA",
    measure_power_secs=1,
    save_to_file=False,
    log_level="error",
    tracking_mode="machine",
)
tracker.start()
pathlib.Path(sys.argv[1]).touch()
while True:
    time.sleep(3600)
