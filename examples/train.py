#!/usr/bin/env python3
"""A small, real, CPU-bound training run with no dependencies: carbontop's demo workload.

Trains a one-hidden-layer neural network (ReLU, softmax) with mini-batch SGD on a synthetic
5-class problem (Gaussian clusters on a noisy spiral, fixed seed), and prints one line per epoch
in the `key=value` form carbontop reads: epoch, step, loss, and validation accuracy. Pure Python,
so it keeps one core busy the way a real training loop would.

    python3 examples/train.py --epochs 12
"""
import argparse
import math
import random
import sys
import time


def make_data(n, classes, dim, rng):
    xs, ys = [], []
    for i in range(n):
        c = i % classes
        r = 1.0 + 0.15 * rng.random()
        t = 2 * math.pi * c / classes + 0.8 * rng.random()
        base = [r * math.cos(t), r * math.sin(t)]
        xs.append([base[k % 2] * (1 + 0.1 * k) + rng.gauss(0, 0.9) for k in range(dim)])
        ys.append(c)
    return xs, ys


def forward(x, w1, b1, w2, b2):
    h = [max(0.0, sum(wi * xi for wi, xi in zip(row, x)) + b) for row, b in zip(w1, b1)]
    z = [sum(wi * hi for wi, hi in zip(row, h)) + b for row, b in zip(w2, b2)]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return h, [v / s for v in e]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--samples", type=int, default=8000)
    ap.add_argument("--hidden", type=int, default=48)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    classes, dim = 5, 8
    x, y = make_data(a.samples, classes, dim, rng)
    split = int(0.8 * len(x))
    xt, yt, xv, yv = x[:split], y[:split], x[split:], y[split:]
    w1 = [[rng.gauss(0, 1 / math.sqrt(dim)) for _ in range(dim)] for _ in range(a.hidden)]
    b1 = [0.0] * a.hidden
    w2 = [[rng.gauss(0, 1 / math.sqrt(a.hidden)) for _ in range(a.hidden)] for _ in range(classes)]
    b2 = [0.0] * classes
    batch, step = 32, 0
    print(f"training: {len(xt)} samples, {len(xv)} validation, {a.epochs} epochs", flush=True)
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        order = list(range(len(xt)))
        rng.shuffle(order)
        total = 0.0
        for s in range(0, len(order), batch):
            g1 = [[0.0] * dim for _ in range(a.hidden)]
            gb1 = [0.0] * a.hidden
            g2 = [[0.0] * a.hidden for _ in range(classes)]
            gb2 = [0.0] * classes
            idx = order[s:s + batch]
            for i in idx:
                h, p = forward(xt[i], w1, b1, w2, b2)
                total -= math.log(max(p[yt[i]], 1e-12))
                dz = p[:]
                dz[yt[i]] -= 1.0
                for c in range(classes):
                    gb2[c] += dz[c]
                    row = g2[c]
                    for j in range(a.hidden):
                        row[j] += dz[c] * h[j]
                for j in range(a.hidden):
                    if h[j] > 0:
                        dh = sum(dz[c] * w2[c][j] for c in range(classes))
                        gb1[j] += dh
                        row = g1[j]
                        xi = xt[i]
                        for k in range(dim):
                            row[k] += dh * xi[k]
            n = len(idx)
            for c in range(classes):
                b2[c] -= a.lr * gb2[c] / n
                for j in range(a.hidden):
                    w2[c][j] -= a.lr * g2[c][j] / n
            for j in range(a.hidden):
                b1[j] -= a.lr * gb1[j] / n
                for k in range(dim):
                    w1[j][k] -= a.lr * g1[j][k] / n
            step += 1
        correct = sum(1 for xi, yi in zip(xv, yv)
                      if max(range(classes), key=lambda c: forward(xi, w1, b1, w2, b2)[1][c]) == yi)
        print(f"epoch={epoch} step={step} loss={total / len(xt):.4f} "
              f"val_accuracy={correct / len(xv):.4f} time={time.time() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
