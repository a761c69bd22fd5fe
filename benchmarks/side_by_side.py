"""One command, one table: the PyTorch originals, keras_glimpse's bare step and
what `apps.train` gets, measured in the same run; then AdaGlimpse's RL step.

    python benchmarks/side_by_side.py [--rounds 2] [--data_dir ../shared/data]
                                      [--skip_adaglimpse]

Per round, for RAM (`ram_mnist28`, batch 128) and RECAP (`recap_cluttered64`
agent stage, batch 32): the original's own training loop
(`benchmarks/originals.py`; skipped with a reason when torch or the clone is
absent), keras_glimpse's bare step and keras_glimpse's `apps.train` path
(`benchmarks/end_to_end.py`), one after the other, each in a fresh process, so
this machine's drifting speed hits all three alike. PatchDrop: the original's
policy-pretraining step against keras_glimpse's bare `patchdrop_r32_c10`
pretrain step on random CIFAR-shaped data (no CIFAR-10 here; its networks are
not like for like, see originals.py), and the end-to-end row on the digits
canvas preset (`patchdrop_digits64` pretrain), which has data offline.

Medians over rounds. The RAM and RECAP targets: apps.train >= 3x the original
(images/s), and apps.train >= 0.9x the bare step. Optional `--json` writes
every run.
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import end_to_end  # noqa: E402
import harness  # noqa: E402
import originals  # noqa: E402

# workload -> (original's name in originals.py, keras_glimpse bare preset[:stage],
#              keras_glimpse end-to-end preset[:stage], apps.train steps per epoch:
#              None = a whole epoch)
WORKLOADS = {
    "ram_mnist28": ("ram", "ram_mnist28", "ram_mnist28", None),
    "recap_cluttered64 (agent)": ("recap", "recap_cluttered64:agent", "recap_cluttered64:agent",
                                  None),
    # The original's PatchDrop network against keras_glimpse's on random
    # CIFAR-shaped data (no CIFAR-10 offline); the end-to-end path on the
    # digits canvas preset, which has data offline.
    "patchdrop_r32_c10 (pretrain)": ("patchdrop", None, None, None),
    "patchdrop_digits64 (pretrain)": (None, "patchdrop_digits64:pretrain",
                                      "patchdrop_digits64:pretrain", 200),
}


def _patchdrop_bare(steps):
    """keras_glimpse's PatchDrop pretrain step on random CIFAR-shaped data (benchmarks/patchdrop.py)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "patchdrop.py")
    r = harness.run_child(script, ["--batch_size", 256, "--steps", steps, "--warmup", 1],
                          "pretrain")
    return {"images_per_s": r["images_per_s"], "steps_per_s": r["steps_per_s"],
            "batch_size": 256, "preset": "patchdrop_r32_c10 (random data)"}


def _e2e_child(variant, item, data_dir, steps):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "end_to_end.py")
    argv = ["--presets", item]
    if data_dir:
        argv += ["--data_dir", data_dir]
    if steps:
        argv += ["--steps", steps]
    return harness.run_child(script, argv, variant)


def measure(rounds=2, data_dir=None, steps=None, log=print):
    data_dir = data_dir or (end_to_end.DEFAULT_DATA if os.path.isdir(end_to_end.DEFAULT_DATA)
                            else None)
    runs = {w: {"original": [], "bare": [], "apps.train": []} for w in WORKLOADS}
    for r in range(int(rounds)):
        for workload, (orig, bare, e2e, e2e_steps) in WORKLOADS.items():
            runs_w = runs[workload]
            if orig:
                row = originals.measure_originals([orig])[0]
                runs_w["original"].append(row)
                log(f"round {r + 1} {workload}: original "
                    + (f"{row['images_per_s']:.0f} images/s" if "skipped" not in row
                       else f"skipped ({row['skipped']})"))
            runs_w["bare"].append(_patchdrop_bare(3) if bare is None
                                  else _e2e_child("bare", bare, data_dir, steps))
            if e2e:
                runs_w["apps.train"].append(
                    _e2e_child("apps.train", e2e, data_dir, steps or e2e_steps))
            log(f"round {r + 1} {workload}: bare {runs_w['bare'][-1]['images_per_s']:.0f}"
                + (f", apps.train {runs_w['apps.train'][-1]['images_per_s']:.0f}" if e2e else "")
                + " images/s")
    rows = []
    for workload, variants in runs.items():
        med = {}
        for k, vals in variants.items():
            ok = [v["images_per_s"] for v in vals if "skipped" not in v]
            med[k] = statistics.median(ok) if ok else None
        skipped = next((v["skipped"] for v in variants["original"] if "skipped" in v), None)
        rows.append({"workload": workload, "original_images_per_s": med["original"],
                     "bare_images_per_s": med["bare"], "apps_train_images_per_s": med["apps.train"],
                     "original_skipped": skipped, "runs": variants})
    return rows


def print_table(rows, out=print):
    def f(v):
        return "—" if v is None else f"{v:.0f}"

    def ratio(a, b):
        return "—" if a is None or b is None else f"{a / b:.1f}×"

    out("| workload | original images/s | keras_glimpse bare step | keras_glimpse apps.train "
        "| apps.train / original | bare / original | apps.train / bare |")
    out("|---|---|---|---|---|---|---|")
    for r in rows:
        o, b, e = (r["original_images_per_s"], r["bare_images_per_s"],
                   r["apps_train_images_per_s"])
        out(f"| {r['workload']} | {f(o)} | {f(b)} | {f(e)} | {ratio(e, o)} | {ratio(b, o)} "
            f"| {'—' if b is None or e is None else f'{e / b:.2f}'} |")
    for r in rows:
        if r["original_skipped"]:
            out(f"original {r['workload']} skipped: {r['original_skipped']}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--data_dir", default=None)
    p.add_argument("--steps", type=int, default=None,
                   help="apps.train steps per epoch for every workload (default: a whole "
                   "epoch, 200 steps for PatchDrop)")
    p.add_argument("--skip_adaglimpse", action="store_true")
    p.add_argument("--json", default=None, help="write every run here")
    args = p.parse_args(argv)
    rows = measure(args.rounds, args.data_dir, args.steps)
    print()
    print_table(rows)
    if not args.skip_adaglimpse:
        import subprocess

        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adaglimpse.py")
        print()
        subprocess.run([sys.executable, script, "--phases", "rl"], check=False)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
