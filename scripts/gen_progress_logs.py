#!/usr/bin/env python3
"""Writes fixtures/logs/{timm1,lightning2,transformers5,keras3_bar}.log and epochs.csv: training
logs byte for byte as each framework prints them into a pipe (stdout and stderr into one file,
as `cmd > log 2>&1` does), for the progress tests (src/source/progress.rs, tests/progress_*.rs).

Each framework's printing is re-enacted with its own format strings, read from its source:
  timm 1.x          train.py: train_one_epoch's `Train: …` and validate's `Test: […]` lines,
                    utils/checkpoint_saver.py's `Current checkpoints:`, main's `*** Best metric`
  Lightning 2.x     callbacks/progress/tqdm_progress.py: TQDMProgressBar (its Tqdm.format_num,
                    the bars on stdout, the validation bar at position 1, leave=False), drawn by
                    real tqdm
  transformers 5.x  trainer_callback.py: ProgressCallback (tqdm bars on stderr, each log dict
                    through tqdm.write with its floats as f"{v:.4g}"), drawn by real tqdm
  Keras 3           utils/progbar.py: Progbar.update with verbose=1 (on Linux `"posix" in
                    sys.modules`, so the dynamic display: backspaces, \\r, ANSI bold/green/white)
                    and callbacks/progbar_logger.py (`Epoch i/n`, finalize with the val_ logs)
The clock is a fake one, so the bytes are the same on every run. Needs `pip install tqdm`.

    python3 scripts/gen_progress_logs.py            # rewrites the fixtures
    python3 scripts/gen_progress_logs.py --check    # fails if they differ from a fresh run
"""

import io
import math
import os
import subprocess
import sys
import tempfile

# The tqdm the committed fixtures were drawn with: --check compares only with the same one.
TQDM_VERSION = "4.70.1"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "logs")

# The accuracy (fraction) each framework's validation reports at the end of each epoch, and
# the epoch numbers as the framework prints them.
TRUTH = {
    "timm1.log": ([0, 1, 2], [45.12, 58.342, 63.905]),
    "lightning2.log": ([0, 1, 2], [0.812, 0.856, 0.879]),
    "transformers5.log": ([1, 2], [0.8312, 0.8745]),
    "keras3_bar.log": ([1, 2, 3], [0.9456, 0.9612, 0.9688]),
}


class Clock:
    """A fake time.time: each call returns the current value; `tick` moves it on."""

    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now

    def tick(self, dt):
        self.now += dt


def timm(out, err):
    """timm 1.x train.py (f-strings from train_one_epoch and validate), logging to stderr."""
    del out
    log = lambda msg: err.write(msg + "\n")  # noqa: E731 (setup_default_logging: INFO bare)
    log("Model resnet18 created, param count:11227812")
    log("Data processing configuration for current model + dataset:")
    log("\tinput_size: (3, 224, 224)")
    log("Using native Torch AMP. Training in mixed precision.")
    log("Scheduled epochs: 3. LR stepped per epoch.")
    updates, log_interval, eval_batches = 120, 50, 20
    losses = [6.9, 4.2, 3.1]
    best = None
    checkpoints = []
    for epoch, target in zip(*TRUTH["timm1.log"]):
        # Train: the running loss meter; its val is this update's loss, avg the epoch's so far.
        total, n = 0.0, 0
        for idx in range(updates):
            loss = losses[epoch] - 0.6 * idx / updates + 0.05 * math.sin(idx)
            total += loss
            n += 1
            if idx % log_interval == 0:
                t = 0.31 + 0.01 * math.cos(idx)
                lr = 1e-3 * (0.5 ** epoch)
                log(
                    f"Train: {epoch} [{idx:>4d}/{updates} "
                    f"({100. * idx / (updates - 1):>3.0f}%)]  "
                    f"Loss: {loss:#.3g} ({total / n:#.3g})  "
                    f"Time: {t:.3f}s, {256 / t:>7.2f}/s  "
                    f"(0.325s, {256 / 0.325:>7.2f}/s)  "
                    f"LR: {lr:.3e}  "
                    f"Data: 0.002 (0.012)"
                )
        # Validate: each batch's top-1 then the running average; the last batch's average is
        # the epoch's accuracy (batch sizes equal, so the average is the mean of the batches).
        accs = [target + 8 * math.sin(3 * b + epoch + 1) for b in range(eval_batches - 1)]
        accs.append(eval_batches * target - sum(accs))
        last_idx = eval_batches - 1
        t1 = t5 = l1 = 0.0
        for b, a in enumerate(accs):
            t1 += a
            t5 += min(a + 25.0, 100.0)
            vloss = 2.5 - a / 40
            l1 += vloss
            if b == last_idx or b % log_interval == 0:
                k = b + 1
                log(
                    f"Test: [{b:>4d}/{last_idx}]  "
                    f"Time: {0.112 + 0.001 * b:.3f} ({0.210:.3f})  "
                    f"Loss: {vloss:>7.3f} ({l1 / k:>6.3f})  "
                    f"Acc@1: {a:>7.3f} ({t1 / k:>7.3f})  "
                    f"Acc@5: {min(a + 25.0, 100.0):>7.3f} ({t5 / k:>7.3f})"
                )
        top1 = t1 / eval_batches
        path = f"./output/train/20260101-120000-resnet18-224/checkpoint-{epoch}.pth.tar"
        checkpoints.append((path, top1))
        checkpoints.sort(key=lambda c: c[1], reverse=True)
        s = "Current checkpoints:\n"
        for c in checkpoints:
            s += " {}\n".format(c)
        log(s)
        if best is None or top1 > best[0]:
            best = (top1, epoch)
    log("*** Best metric: {0} (epoch {1})".format(best[0], best[1]))


def lightning(out, err):
    """Lightning 2.x fit with TQDMProgressBar: every bar on stdout."""
    from tqdm import tqdm as _tqdm

    class Tqdm(_tqdm):
        @staticmethod
        def format_num(n):
            # tqdm_progress.py: pads floats to _PAD_SIZE = 5 characters.
            should_be_padded = isinstance(n, (float, str))
            if not isinstance(n, str):
                n = _tqdm.format_num(n)
            if should_be_padded and "e" not in n:
                if "." not in n and len(n) < 5:
                    try:
                        _ = float(n)
                    except ValueError:
                        return n
                    n += "."
                n += "0" * (5 - len(n))
            return n

    clock = CLOCK
    say = lambda m: err.write(m + "\n")  # noqa: E731 (rank_zero_info: a StreamHandler)
    say("GPU available: True (cuda), used: True")
    say("TPU available: False, using: 0 TPU cores")
    say("HPU available: False, using: 0 HPUs")
    say("LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]")
    say("")
    say("  | Name  | Type       | Params | Mode ")
    say("---------------------------------------------")
    say("0 | model | Sequential | 101 K  | train")
    say("---------------------------------------------")
    say("101 K     Trainable params")
    say("0         Non-trainable params")
    say("101 K     Total params")
    say("0.407     Total estimated model params size (MB)")
    kw = dict(dynamic_ncols=True, file=out)
    # Sanity check: a validation bar at position 0, the train bar a disabled dummy.
    val = Tqdm(desc="Sanity Checking", position=0, leave=False, **kw)
    for b in range(2):
        clock.tick(0.02)
        if b == 0:
            val.reset(2)
            val.initial = 0
            val.set_description("Sanity Checking DataLoader 0")
        val.n = b + 1
        val.refresh()
    val.close()
    train = Tqdm(desc="Training", position=0, leave=True, smoothing=0, **kw)
    metrics = {"v_num": 0}
    batches, val_batches = 24, 6
    epochs, accs = TRUTH["lightning2.log"]
    for epoch, acc in zip(epochs, accs):
        train.reset(batches)
        train.initial = 0
        train.set_description(f"Epoch {epoch}")
        for b in range(batches):
            clock.tick(0.013)
            metrics["train_loss"] = round(0.9 / (1 + epoch + b / batches), 4)
            train.n = b + 1
            train.refresh()
            train.set_postfix(metrics)
        val = Tqdm(desc="Validation", position=1, leave=False, **kw)
        for b in range(val_batches):
            clock.tick(0.008)
            if b == 0:
                val.reset(val_batches)
                val.initial = 0
                val.set_description("Validation DataLoader 0")
            val.n = b + 1
            val.refresh()
        metrics["val_loss"] = round(0.5 - acc / 3, 4)
        metrics["val_acc"] = acc
        train.set_postfix(metrics)  # on_validation_end
        val.close()
        train.set_postfix(metrics)  # on_train_epoch_end
    train.close()
    say(f"`Trainer.fit` stopped: `max_epochs={len(epochs)}` reached.")


def transformers(out, err):
    """transformers 5.x Trainer with eval_strategy="epoch": ProgressCallback's bars on stderr,
    its log dicts on stdout."""
    from tqdm import tqdm

    def fmt(logs):
        shown = {}
        for k, v in logs.items():
            shown[k] = f"{v:.4g}" if isinstance(v, float) else v
        shown.pop("total_flos", None)
        return str(shown)

    clock = CLOCK
    steps_per_epoch, eval_steps, logging_steps = 20, 5, 10
    epochs, accs = TRUTH["transformers5.log"]
    max_steps = steps_per_epoch * len(epochs)
    training_bar = tqdm(total=max_steps, dynamic_ncols=True, file=err)
    current = 0
    for epoch, acc in zip(epochs, accs):
        for s in range(steps_per_epoch):
            clock.tick(0.06)
            step = (epoch - 1) * steps_per_epoch + s + 1
            training_bar.update(step - current)
            current = step
            if step % logging_steps == 0:
                logs = {
                    "loss": 0.7 / (1 + step / 10),
                    "grad_norm": 3.2 / (1 + step / 20),
                    "learning_rate": 5e-05 * (1 - step / max_steps),
                    "epoch": step / steps_per_epoch,
                }
                training_bar.write(fmt(logs), file=out)
        # evaluate(): the prediction bar (leave=False: the training bar exists), then
        # self.log(metrics) while it is still open, then on_evaluate closes it.
        prediction_bar = None
        for _ in range(eval_steps):
            clock.tick(0.03)
            if prediction_bar is None:
                prediction_bar = tqdm(total=eval_steps, leave=False, dynamic_ncols=True, file=err)
            prediction_bar.update(1)
        logs = {
            "eval_loss": 0.45 - acc / 10,
            "eval_accuracy": acc,
            "eval_runtime": 1.2034,
            "eval_samples_per_second": 831.2,
            "eval_steps_per_second": 104.1,
            "epoch": float(epoch),
        }
        training_bar.write(fmt(logs), file=out)
        prediction_bar.close()
    logs = {
        "train_runtime": 3.301,
        "train_samples_per_second": 96.94,
        "train_steps_per_second": 12.12,
        "total_flos": 1.2e12,
        "train_loss": 0.4501,
        "epoch": float(epochs[-1]),
    }
    training_bar.write(fmt(logs), file=out)
    training_bar.close()


def keras(out, err):
    """Keras 3 model.fit(verbose=1, validation_data=…): ProgbarLogger and Progbar on stdout."""
    del err
    clock = CLOCK

    class Progbar:
        # keras/src/utils/progbar.py, verbose=1, target set, every metric averaged.
        def __init__(self, target, width=20, interval=0.05, unit_name="step"):
            self.target, self.width, self.interval, self.unit_name = target, width, interval, unit_name
            self._values, self._values_order = {}, []
            self._seen_so_far = 0
            self._start = clock()
            self._last_update = 0
            self._time_after_first_step = None
            self._prev_total_width = 0

        def update(self, current, values, finalize):
            for k, v in values:
                if k not in self._values_order:
                    self._values_order.append(k)
                if finalize:
                    self._values[k] = [v, 1]
                else:
                    base = max(current - self._seen_so_far, 1)
                    if k not in self._values:
                        self._values[k] = [v * base, base]
                    else:
                        self._values[k][0] += v * base
                        self._values[k][1] += base
            self._seen_so_far = current
            special_char_len = 0
            now = clock()
            time_per_unit = self._estimate_step_duration(current, now)
            if now - self._last_update < self.interval and not finalize:
                return
            message = "\b" * self._prev_total_width + "\r"
            numdigits = int(math.log10(self.target)) + 1
            bar = (f"%{numdigits}d/%d") % (current, self.target)
            bar = f"\x1b[1m{bar}\x1b[0m "
            special_char_len += 8
            prog_width = int(self.width * float(current) / self.target)
            if prog_width > 0:
                bar += f"\33[32m{'━' * prog_width}\x1b[0m"
                special_char_len += 9
            bar += f"\33[37m{'━' * (self.width - prog_width)}\x1b[0m"
            special_char_len += 9
            message += bar
            if not finalize:
                eta = time_per_unit * (self.target - current)
                if eta > 3600:
                    eta_format = "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
                elif eta > 60:
                    eta_format = "%d:%02d" % (eta // 60, eta % 60)
                else:
                    eta_format = "%ds" % eta
                info = f" \x1b[1m{eta_format}\x1b[0m"
            else:
                info = f" \x1b[1m{now - self._start:.0f}s\x1b[0m"
            special_char_len += 8
            if time_per_unit >= 1 or time_per_unit == 0:
                info += f" {time_per_unit:.0f}s/{self.unit_name}"
            elif time_per_unit >= 1e-3:
                info += f" {time_per_unit * 1000.0:.0f}ms/{self.unit_name}"
            else:
                info += f" {time_per_unit * 1000000.0:.0f}us/{self.unit_name}"
            for k in self._values_order:
                info += f" - {k}:"
                values, count = self._values[k]
                avg = values / max(1, count)
                info += f" {avg:.4f}" if abs(avg) > 1e-3 else f" {avg:.4e}"
            message += info
            total_width = len(bar) + len(info) - special_char_len
            if self._prev_total_width > total_width:
                message += " " * (self._prev_total_width - total_width)
            if finalize:
                message += "\n"
            out.write(message)
            out.flush()
            self._prev_total_width = total_width
            self._last_update = now

        def _estimate_step_duration(self, current, now):
            if current:
                if self._time_after_first_step is not None and current > 1:
                    t = (now - self._time_after_first_step) / (current - 1)
                else:
                    t = (now - self._start) / current
                if current == 1:
                    self._time_after_first_step = now
                return t
            return 0

    steps = 30
    epochs, accs = TRUTH["keras3_bar.log"]
    train_acc = 0.55
    for epoch, val_acc in zip(epochs, accs):
        out.write(f"Epoch {epoch}/{len(epochs)}\n")
        bar = Progbar(target=steps)
        for b in range(steps):
            clock.tick(0.021)
            train_acc = min(0.999, train_acc + 0.012 * (1 - train_acc))
            # pythonify_logs sorts the logs: accuracy, loss.
            logs = [("accuracy", train_acc), ("loss", 1.6 * (1 - train_acc))]
            bar.update(b + 1, logs, finalize=False)
        clock.tick(0.4)
        logs += [("val_accuracy", val_acc), ("val_loss", 1.5 * (1 - val_acc))]
        bar.update(steps, logs, finalize=True)


FRAMEWORKS = {
    "timm1.log": timm,
    "lightning2.log": lightning,
    "transformers5.log": transformers,
    "keras3_bar.log": keras,
}
CLOCK = Clock()


def child(name):
    """Runs one framework with stdout and stderr both this process's fd 1 (2>&1)."""
    import tqdm.std

    tqdm.std.time = CLOCK  # the bars' elapsed time and rate come from the fake clock
    out = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), encoding="utf-8", write_through=True)
    FRAMEWORKS[name](out, out)
    out.flush()


def generate(dest):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_") and k not in ("COLUMNS", "LINES")}
    for name in FRAMEWORKS:
        with open(os.path.join(dest, name), "wb") as f:
            subprocess.run([sys.executable, __file__, "--child", name], stdout=f, stderr=f, env=env, check=True)
    with open(os.path.join(dest, "epochs.csv"), "w") as f:
        f.write("file,epochs,accuracy_pct\n")
        for name, (epochs, accs) in TRUTH.items():
            pct = [a if a > 1 else round(a * 100, 10) for a in accs]
            f.write(f"{name},{' '.join(map(str, epochs))},{' '.join(f'{p:g}' for p in pct)}\n")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "--check":
        import tqdm

        if tqdm.__version__ != TQDM_VERSION:
            print(f"skipped: tqdm {tqdm.__version__} here, the fixtures were drawn by {TQDM_VERSION}")
            return
        with tempfile.TemporaryDirectory() as d:
            generate(d)
            bad = [n for n in list(FRAMEWORKS) + ["epochs.csv"]
                   if open(os.path.join(d, n), "rb").read() != open(os.path.join(OUT, n), "rb").read()]
        if bad:
            sys.exit(f"differ from a fresh run: {', '.join(bad)}")
        print("fixtures match a fresh run")
    else:
        import tqdm

        if tqdm.__version__ != TQDM_VERSION:
            print(f"note: tqdm {tqdm.__version__}; set TQDM_VERSION to it if these are kept")
        generate(OUT)


if __name__ == "__main__":
    main()
