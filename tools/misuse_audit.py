"""Tries bad inputs and misuses the way a new user would, and counts what
happened: a clear one-line error, an unclear one (a traceback, a hang, a
message that does not name the problem), silently wrong (exit 0 where the
command should have refused), or data lost (a file the user had is changed or
gone). Cases where the right behaviour is to succeed count as correct or wrong.

    python tools/misuse_audit.py [--repo=PATH] [--only=SUBSTRING] [--json=OUT]

`--repo` is the source tree whose apps are run (default: this checkout); run
it on an older commit's worktree to get the "before" counts:

    git worktree add /tmp/before <commit>
    python tools/misuse_audit.py --repo=/tmp/before --json=before.json

Each case runs in a fresh temporary folder, as its own process (`python -m
apps.X ...` or a `python -c` snippet), with the embedded digits (no network,
no ../shared). One finished tiny `ram_mnist28` run (1 epoch, 2 steps, with
its export) is trained first and copied into every case that needs one.
Cases whose flag or app does not exist in `--repo` are reported as "n/a".

Takes about 10-15 minutes on 2 cores (each case starts TensorFlow).
"""

import argparse
import collections
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

TIMEOUT_S = 150
TINY = ["--epochs=1", "--steps_per_epoch=2", "--eval_steps=1", "--verbose=0"]
APP_RUN = ["--model=ram_mnist28"] + TINY


class Case:
    """One misuse: `argv` (an app and its flags; `{run}`, `{tmp}`, `{data}` are
    filled in) or `code` (a Python snippet run with `python -c`).

    expect: "error" (must refuse with one clear line naming `keyword`) or
        "ok" (must succeed; `check(tmp, output)` returns None or what is wrong).
    protect: paths (relative to the case folder) whose bytes must survive.
    setup: `setup(tmp)` prepares files before the command.
    needs: app modules or flags that must exist in --repo (else "n/a").
    """

    def __init__(self, name, group, argv=None, code=None, expect="error", keyword=None,
                 protect=(), setup=None, check=None, run=False, needs=()):
        self.name, self.group, self.argv, self.code = name, group, argv, code
        self.expect, self.keyword, self.protect = expect, keyword, tuple(protect)
        self.setup, self.check, self.run, self.needs = setup, check, run, tuple(needs)


# ----------------------------------------------------------------- fixtures
def _write_npz(tmp, **changes):
    """An mnist.npz in tmp/data in the keras layout, with `changes` applied."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (64, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, (64,), dtype=np.uint8),
              "x_test": rng.integers(0, 256, (32, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, (32,), dtype=np.uint8)}
    for key, fn in changes.items():
        arrays[key] = fn(arrays[key])
    (tmp / "data").mkdir(exist_ok=True)
    np.savez(tmp / "data" / "mnist.npz", **arrays)


def _random_bytes_npz(tmp):
    (tmp / "data").mkdir(exist_ok=True)
    (tmp / "data" / "mnist.npz").write_bytes(os.urandom(4096))


def _user_folder(tmp):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("my notes\n")


def _user_file(tmp):
    (tmp / "mine.txt").write_text("my file\n")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _lock_held_by_me(tmp):
    """tmp/run2 locked by a live process (this audit) on this host."""
    import socket

    (tmp / "run2").mkdir()
    (tmp / "run2" / ".lock").write_text(f"{os.getpid()} {socket.gethostname()}")


SERVE = ("import numpy as np, tensorflow as tf; m = tf.saved_model.load('{run}/export'); "
         "x = np.zeros((1, 28, 28, 1), np.float32); ")
KERAS = ("import numpy as np, keras, keras_glimpse; "
         "m = keras_glimpse.build('ram_mnist28'); x = np.zeros((1, 28, 28, 1), np.float32); ")


def _train(name, group, *flags, **kw):
    """A case of `apps.train` into a fresh `{tmp}/r` with the tiny run's flags."""
    return Case(name, group, ["apps.train", "--model_dir={tmp}/r", *flags] + APP_RUN, **kw)


def cases():
    P = ["run/checkpoints/best.keras", "run/metrics.json", "run/config.json"]
    return [
        # 1. export destinations
        Case("export into its own model_dir", "export",
             ["apps.export", "--model_dir={run}", "--export_dir={run}"], keyword="model_dir",
             protect=P, run=True),
        Case("export into a non-empty user folder", "export",
             ["apps.export", "--model_dir={run}", "--export_dir={tmp}/mine"], keyword="mine",
             protect=["mine/notes.txt"], setup=_user_folder, run=True),
        Case("export onto an existing file", "export",
             ["apps.export", "--model_dir={run}", "--export_dir={tmp}/mine.txt"],
             keyword="mine.txt", protect=["mine.txt"], setup=_user_file, run=True),
        Case("export over a previous export without --overwrite", "export",
             ["apps.export", "--model_dir={run}"], keyword="overwrite",
             protect=["run/export/saved_model.pb"], run=True),
        Case("export of a missing model_dir", "export",
             ["apps.export", "--model_dir={tmp}/nope"], keyword="nope"),
        Case("export with --model and a mistyped --model_dir", "export",
             ["apps.export", "--model=ram_mnist28", "--model_dir={tmp}/rnu"], keyword="rnu",
             run=True),
        # 2. training into a model_dir
        Case("train again in a finished model_dir", "model_dir",
             ["apps.train", "--model_dir={run}"] + APP_RUN, keyword="finished",
             protect=P, run=True),
        Case("train another model into a finished model_dir", "model_dir",
             ["apps.train", "--model=recap_mnist28", "--model_dir={run}"] + TINY,
             keyword="different", protect=P, run=True),
        Case("train with other model args into a finished model_dir", "model_dir",
             ["apps.train", "--model_dir={run}", "--override=num_glimpses=3"] + APP_RUN,
             keyword="num_glimpses", protect=P, run=True),
        Case("failing command (missing data_dir) into a finished model_dir", "model_dir",
             ["apps.train", "--model_dir={run}", "--data_dir={tmp}/missing"] + APP_RUN,
             protect=P, run=True),
        Case("train while another process holds the run", "model_dir",
             ["apps.train", "--model_dir={tmp}/run2"] + APP_RUN, keyword="being trained",
             setup=_lock_held_by_me),
        Case("model_dir is an existing file", "model_dir",
             ["apps.train", "--model_dir={tmp}/mine.txt"] + APP_RUN, keyword="mine.txt",
             protect=["mine.txt"], setup=_user_file),
        Case("continue a finished run to more epochs", "model_dir",
             ["apps.train", "--model_dir={run}", "--continue_run", "--model=ram_mnist28",
              "--epochs=2", "--steps_per_epoch=2", "--eval_steps=1", "--verbose=0"],
             expect="ok", run=True, needs=["flag:continue_run"]),
        # 3. data files
        _train("mnist.npz with float images in [0, 1]", "data", "--data_dir={data}",
               keyword="uint8", setup=lambda t: _write_npz(
                 t, x_train=lambda x: (x / 255.0).astype(np.float32))),
        _train("mnist.npz with label -1", "data", "--data_dir={data}",
               keyword="label", setup=lambda t: _write_npz(
                 t, y_train=lambda y: np.where(np.arange(len(y)) == 0, -1, y).astype(np.int64))),
        _train("mnist.npz with labels 0..10", "data", "--data_dir={data}",
               keyword="label", setup=lambda t: _write_npz(t, y_test=lambda y: np.full_like(y, 10))),
        _train("mnist.npz with images of the wrong size", "data", "--data_dir={data}",
               keyword="shape", setup=lambda t: _write_npz(t, x_train=lambda x: x[:, :20, :20])),
        _train("mnist.npz with fewer labels than images", "data", "--data_dir={data}",
               keyword="y_train", setup=lambda t: _write_npz(t, y_train=lambda y: y[:10])),
        _train("mnist.npz of random bytes", "data", "--data_dir={data}",
               keyword="npz", setup=_random_bytes_npz),
        _train("data_dir that does not exist", "data", "--data_dir={tmp}/nothere",
               keyword="nothere"),
        # 4. flags meaning nothing to do, or misspelled
        Case("--steps_per_epoch=0", "flags",
             ["apps.train", "--model_dir={tmp}/r", "--model=ram_mnist28", "--epochs=1",
              "--steps_per_epoch=0", "--verbose=0"], keyword="steps_per_epoch"),
        Case("--epochs=0", "flags",
             ["apps.train", "--model_dir={tmp}/r", "--model=ram_mnist28", "--epochs=0",
              "--verbose=0"], keyword="epochs"),
        Case("--epochs=-3", "flags",
             ["apps.train", "--model_dir={tmp}/r", "--model=ram_mnist28", "--epochs=-3",
              "--verbose=0"], keyword="epochs"),
        _train("--batch_size=0", "flags", "--batch_size=0",
               keyword="batch_size"),
        Case("--eval_steps=0 (evaluate)", "flags",
             ["apps.evaluate", "--model_dir={run}", "--eval_steps=0"], keyword="eval_steps",
             run=True),
        _train("misspelled training override", "flags", "--override=training.learnin_rate=0.1",
               keyword="learnin_rate"),
        _train("misspelled data override", "flags", "--override=data.imag_size=40",
               keyword="imag_size"),
        _train("misspelled model argument", "flags", "--override=num_glimpse=3",
               keyword="num_glimpse"),
        _train("override without '='", "flags", "--override=num_glimpses",
               keyword="num_glimpses"),
        _train("override with a wrong type", "flags", "--override=num_glimpses=many",
               keyword="num_glimpses"),
        Case("misspelled model name", "flags",
             ["apps.train", "--model=ram_mnsit28", "--model_dir={tmp}/r"] + TINY,
             keyword="ram_mnist28"),
        Case("train without --model_dir", "flags",
             ["apps.train"] + APP_RUN, keyword="model_dir"),
        Case("train without --model", "flags",
             ["apps.train", "--model_dir={tmp}/r"] + TINY, keyword="model"),
        _train("unknown stage", "flags", "--stage=bogus", keyword="bogus"),
        _train("init_from a missing path", "flags", "--init_from={tmp}/nope.keras",
               keyword="nope", needs=["flag:init_from"]),
        Case("reproduce with empty --seeds", "flags",
             ["apps.reproduce", "--model=ram_mnist28", "--seeds=", "--runs_dir={tmp}/runs",
              "--results_dir={tmp}/res"], keyword="seeds", needs=["app:reproduce"]),
        # 5. evaluate / visualize / predict
        Case("evaluate a missing model_dir", "evaluate",
             ["apps.evaluate", "--model_dir={tmp}/nope"], keyword="nope"),
        Case("evaluate with --model and a mistyped --model_dir", "evaluate",
             ["apps.evaluate", "--model=ram_mnist28", "--model_dir={tmp}/rnu", "--eval_steps=1"],
             keyword="rnu", run=True),
        Case("evaluate with an unreadable config.json", "evaluate",
             ["apps.evaluate", "--model_dir={run}", "--eval_steps=1"], keyword="config.json",
             setup=lambda t: _truncate(t / "run" / "config.json"), run=True),
        Case("evaluate with a truncated best.keras (falls back to last)", "evaluate",
             ["apps.evaluate", "--model_dir={run}", "--eval_steps=1"], expect="ok",
             setup=lambda t: _truncate(t / "run" / "checkpoints" / "best.keras"), run=True),
        Case("evaluate with both checkpoints truncated", "evaluate",
             ["apps.evaluate", "--model_dir={run}", "--eval_steps=1"], keyword="keras",
             setup=lambda t: [_truncate(t / "run" / "checkpoints" / n)
                              for n in ("best.keras", "last.keras")], run=True),
        Case("evaluate a missing weights file", "evaluate",
             ["apps.evaluate", "--model=ram_mnist28", "--weights={tmp}/w.keras"],
             keyword="w.keras", needs=["flag:weights"]),
        Case("evaluate the shipped weights", "evaluate",
             ["apps.evaluate", "--model=ram_mnist28", "--weights=pretrained", "--eval_steps=2"],
             expect="ok", needs=["flag:weights"]),
        Case("visualize a missing model_dir", "evaluate",
             ["apps.visualize", "--model_dir={tmp}/nope"], keyword="nope"),
        Case("visualize with --num_images=0", "evaluate",
             ["apps.visualize", "--model_dir={run}", "--num_images=0"], keyword="num_images",
             run=True),
        Case("predict a file that is not an image", "evaluate",
             ["apps.predict", "--model_dir={run}", "--image={tmp}/mine.txt"],
             keyword="mine.txt", setup=_user_file, run=True, needs=["app:predict"]),
        Case("predict a missing image", "evaluate",
             ["apps.predict", "--model_dir={run}", "--image={tmp}/no.png"], keyword="no.png",
             run=True, needs=["app:predict"]),
        # 6. pixels through the SavedModel and the Keras model
        Case("SavedModel fed NaN pixels", "pixels",
             code=SERVE + "x[:] = np.nan; print(m.serve(tf.constant(x))['predictions'])",
             keyword="NaN", run=True),
        Case("SavedModel fed +Inf pixels", "pixels",
             code=SERVE + "x[:] = np.inf; print(m.serve(tf.constant(x))['predictions'])",
             keyword="Inf", run=True),
        Case("SavedModel fed uint8 pixels", "pixels",
             code=SERVE + "print(m.serve(tf.constant(x.astype(np.uint8) + 200))['predictions'])",
             keyword="float", run=True),
        Case("SavedModel fed images of the wrong size", "pixels",
             code=SERVE + "print(m.serve(tf.zeros((1, 32, 32, 1)))['predictions'])",
             keyword="shape", run=True),
        Case("Keras model fed NaN pixels", "pixels",
             code=KERAS + "x[:] = np.nan; print(m.predict(x, verbose=0))", keyword="NaN"),
        Case("Keras model fed an image without a batch axis", "pixels",
             code=KERAS + "print(m(x[0]))", keyword="batch"),
        Case("Keras model fed the wrong number of channels", "pixels",
             code=KERAS + "print(m(np.zeros((1, 28, 28, 3), np.float32)))", keyword="channels"),
        Case("build an unknown preset", "pixels",
             code="import keras_glimpse; keras_glimpse.build('ram_mnist82')",
             keyword="ram_mnist28"),
        Case("build with an unknown model argument", "pixels",
             code="import keras_glimpse; keras_glimpse.build('ram_mnist28', num_glimpse=3)",
             keyword="num_glimpse"),
    ]


# ------------------------------------------------------------------- runner
def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _available(repo, case):
    for need in case.needs:
        kind, name = need.split(":")
        if kind == "app" and not (repo / "apps" / f"{name}.py").is_file():
            return False
        if kind == "flag" and f'"{name}"' not in (repo / "apps" / "flags.py").read_text():
            return False
    return True


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("KERAS_GLIMPSE_TRACEBACK", None)
    return env


def _command(case, tmp, repo):
    fill = {"run": str(tmp / "run"), "tmp": str(tmp), "data": str(tmp / "data")}
    if case.code is not None:
        return [sys.executable, "-c", case.code.format(**fill)]
    app, *flags = case.argv
    return [sys.executable, "-m", app] + [f.format(**fill) for f in flags]


def _is_one_line_error(output):
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if any(ln.startswith("Traceback") or ln.startswith("  File ") for ln in lines):
        return False
    return any("error" in ln.lower() for ln in lines)


_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Warning)\b[^:]*:")


def _exception_message(output):
    """The text from the last `SomeError: ...` line on (a Python API user's
    traceback ends with the exception; its message is what they read)."""
    lines = output.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if _EXCEPTION_LINE.match(lines[i]):
            return "\n".join(lines[i:])
    return None


def _summary_line(output):
    """The line a user reads: `ERROR: ...`, else the exception, else the last line."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("ERROR:"):
            return ln
    message = _exception_message(output)
    return message.splitlines()[0] if message else (lines[-1] if lines else "")


def classify(case, rc, output, lost):
    """'data lost' | 'clear' | 'unclear' | 'silent' | 'correct' | 'wrong'.

    An app must print one error line (no traceback) naming the problem
    (`keyword`). A Python API call must raise an exception whose message
    names it (the traceback above it is Python's normal report)."""
    if lost:
        return "data lost"
    if case.expect == "ok":
        return "correct" if rc == 0 else "wrong"
    if rc == 0:
        return "silent"
    if rc is None:
        return "unclear"
    if case.code is not None:
        message = _exception_message(output)
        if message is None:
            return "unclear"
        return "clear" if not case.keyword or case.keyword.lower() in message.lower() \
            else "unclear"
    if not _is_one_line_error(output):
        return "unclear"
    if case.keyword and case.keyword.lower() not in output.lower():
        return "unclear"
    return "clear"


def run_case(case, repo, fixture, timeout=TIMEOUT_S):
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        if case.run:
            shutil.copytree(fixture, tmp / "run")
        if case.setup:
            case.setup(tmp)
        before = {p: _digest(tmp / p) for p in case.protect}
        start = time.time()
        try:
            proc = subprocess.run(_command(case, tmp, repo), cwd=repo, env=_env(),
                                  capture_output=True, text=True, timeout=timeout)
            rc, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as e:
            rc, output = None, f"(hung: killed after {timeout} s) " + str(e.stderr or "")
        lost = [p for p, h in before.items() if _digest(tmp / p) != h]
        outcome = classify(case, rc, output, lost)
        if outcome == "correct" and case.check:
            problem = case.check(tmp, output)
            outcome = "wrong" if problem else outcome
        return {"name": case.name, "group": case.group, "expect": case.expect, "rc": rc,
                "outcome": outcome, "lost": lost, "seconds": round(time.time() - start, 1),
                "last_line": _summary_line(output)[:200]}


def make_fixture(repo, where):
    cmd = [sys.executable, "-m", "apps.train", f"--model_dir={where}"] + APP_RUN
    proc = subprocess.run(cmd, cwd=repo, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0 or not (where / "export" / "saved_model.pb").is_file():
        raise SystemExit(f"fixture run failed in {repo}:\n{proc.stderr[-2000:]}")


def summarise(rows):
    counts = collections.Counter(r["outcome"] for r in rows)
    order = ("clear", "correct", "unclear", "wrong", "silent", "data lost", "n/a")
    return {k: counts.get(k, 0) for k in order}


def table(rows):
    width = max(len(r["name"]) for r in rows)
    out = [f"{'case':<{width}}  {'group':<9} {'outcome':<9} last line"]
    for r in rows:
        out.append(f"{r['name']:<{width}}  {r['group']:<9} {r['outcome']:<9} "
                   f"{r.get('last_line', '')[:90]}")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(pathlib.Path(__file__).resolve().parents[1]))
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    parser.add_argument("--json", default=None, help="write the rows and counts here")
    args = parser.parse_args()
    repo = pathlib.Path(args.repo).resolve()
    selected = [c for c in cases() if not args.only or args.only in c.name]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        fixture = pathlib.Path(d) / "run"
        if any(c.run for c in selected):
            make_fixture(repo, fixture)
        for i, case in enumerate(selected, 1):
            if not _available(repo, case):
                row = {"name": case.name, "group": case.group, "expect": case.expect,
                       "outcome": "n/a", "last_line": "(app or flag not in this version)"}
            else:
                row = run_case(case, repo, fixture)
            rows.append(row)
            print(f"[{i}/{len(selected)}] {row['outcome']:<9} {case.name}", flush=True)
    print(table(rows))
    counts = summarise(rows)
    print("counts:", ", ".join(f"{k} {v}" for k, v in counts.items()))
    if args.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                                capture_output=True, text=True).stdout.strip()
        pathlib.Path(args.json).write_text(json.dumps(
            {"repo_commit": commit, "counts": counts, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
