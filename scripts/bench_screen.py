#!/usr/bin/env python3
"""Whole-process cost of carbontop's live screen (DESIGN.md §8: under 0.4% of one core and
12 MiB at 1 s, first frame within 50 ms).

Runs the release binary on a pseudo-terminal of the given size, measures the time until the
first frame is written, then the CPU time (utime+stime from /proc) and peak RSS (VmHWM) over a
fixed duration, then quits with `q` and checks the terminal was handed back.

    scripts/bench_screen.py [--secs 30] [--interval 1s] [--size 80x24] [--mode watch|replay]
"""
import argparse
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "carbontop")
TRACE = os.path.join(ROOT, "fixtures", "traces", "a40x4-cifar100.csv")


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / hz


def proc_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=30)
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--size", default="80x24")
    ap.add_argument("--mode", choices=["watch", "replay"], default="watch")
    a = ap.parse_args()
    cols, rows = (int(x) for x in a.size.split("x"))
    subprocess.run(["cargo", "build", "--release", "--locked", "-q"], cwd=ROOT, check=True)

    if a.mode == "watch":
        args = [BIN, "watch", "--no-gpu", "--interval", a.interval]
    else:
        # The recording ticks every second; --speed scales it to the interval asked for.
        speed = 1.0 / (float(a.interval.rstrip("ms")) / (1000 if a.interval.endswith("ms") else 1))
        args = [BIN, "replay", "--speed", str(speed), TRACE]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, XDG_CONFIG_HOME="/nonexistent", TERM="xterm-256color")
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                         close_fds=True, start_new_session=True)
    os.close(slave)
    out = bytearray()
    first_frame = first_data = None
    end = t0 + a.secs
    cpu_at_frame = None
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                out += os.read(master, 65536)
            except OSError:
                break
        now = time.monotonic()
        if first_frame is None and b"Energy" in out:
            first_frame = now - t0
        # The first frame with data: a power figure in the legend ("total 12.3 W").
        if first_data is None and b"total\xc2\xa0" in out and b"\xc2\xa0W" in out:
            first_data = now - t0
            cpu_at_frame = proc_cpu_s(p.pid)
    cpu = proc_cpu_s(p.pid)
    hwm = proc_hwm_kib(p.pid)
    os.write(master, b"q")
    try:
        while p.poll() is None:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                out += os.read(master, 65536)
    except OSError:
        pass
    p.wait(timeout=10)
    restored = out.rfind(b"\x1b[?1049l") > out.find(b"\x1b[?1049h") >= 0
    steady = cpu - (cpu_at_frame or 0.0)
    steady_secs = a.secs - (first_data or 0.0)
    print(f"machine: {os.cpu_count()} cores; {a.mode} screen {cols}x{rows} at {a.interval} for {a.secs:.0f} s")
    print(f"first frame after {1000 * (first_frame or float('nan')):.0f} ms, "
          f"first frame with data after {1000 * (first_data or float('nan')):.0f} ms (incl. process start)")
    print(f"CPU time {cpu:.3f} s = {100 * cpu / a.secs:.3f}% of one core "
          f"(after the first frame: {100 * steady / steady_secs:.3f}%)")
    print(f"peak RSS {hwm / 1024:.1f} MiB")
    print(f"terminal restored on q: {'yes' if restored else 'NO'}")
    return 0 if restored else 1


if __name__ == "__main__":
    sys.exit(main())
