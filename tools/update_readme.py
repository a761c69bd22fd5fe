#!/usr/bin/env python
"""Regenerates the generated tables of README.md: "Registered models" from
list_models() (with the shipped weights of keras_glimpse.weights) and
"Full-data results" from results/*.json (written by apps.reproduce).

    python tools/update_readme.py          # rewrite README.md in place
    python tools/update_readme.py --check  # exit 1 if a table is stale
"""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import apps  # noqa: E402,F401  (a tool, like the apps: TensorFlow imported without its noise)

BEGIN = "<!-- models:begin -->"
END = "<!-- models:end -->"
RESULTS_BEGIN = "<!-- results:begin -->"
RESULTS_END = "<!-- results:end -->"


def models_table():
    from keras_glimpse import registry, weights

    shipped = weights.index()
    lines = ["| name | builder | description | paper number | pretrained weights |",
             "|---|---|---|---|---|"]
    for name in registry.list_models():
        p = registry.get_preset(name)
        paper = ""
        if "paper_value" in p:
            paper = f"{p.get('paper_metric', 'value')} {p['paper_value']}"
            if "paper_setting" in p:  # a tiny analogue: the number is the paper's setting's
                paper += f" ({p['paper_setting']})"
        desc = p.get("description", "").replace("|", "\\|")
        w = ""
        if name in weights.available():
            rec = shipped[name]
            test = rec.get("test") or {}
            if "error" in test:
                w = f"yes (test error {test['error']:.2f} %)"
            elif rec.get("monitor") == "val_accuracy":
                w = (f"yes (partial run: validation error {100 * (1 - rec['validation']):.2f} % "
                     f"at epoch {rec['epoch'] + 1})")
            else:
                w = "yes"
        lines.append(f"| `{name}` | {p['builder']} | {desc} | {paper} | {w} |")
    return "\n".join(lines)


# paper metrics measured as fractions but reported by papers in % (shown x100).
PERCENT = ("loc_acc", "test_accuracy", "accuracy")


def _fmt(stats, digits=2, scale=1.0):
    if not stats:
        return "–"
    stats = dict(stats, mean=stats["mean"] * scale, std=stats["std"] * scale)
    text = f"{stats['mean']:.{digits}f}"
    if len(stats["per_seed"]) > 1:
        text += f" ± {stats['std']:.{digits}f} ({len(stats['per_seed'])} seeds)"
    return text


def _target(target):
    if target is None:
        return "–"
    return target if isinstance(target, str) else f"≤ {target}"


def results_table():
    """One row per results/*.json: measured vs paper, baselines, budget."""
    rows = ["| preset | measured (test, paper's protocol) | error %: greedy / M=1 / M=10 | paper | target "
            "| baselines, same budget | epochs (best) | train time | curve |",
            "|---|---|---|---|---|---|---|---|---|"]
    paths = sorted((ROOT / "results").glob("*.json"))
    for path in paths:
        r = json.loads(path.read_text())
        paper = r.get("paper", {})
        metric = paper.get("paper_metric", "")
        measure = r.get("measured_metric")
        # The column the headline number comes from (RAM: one sampled rollout).
        column = f"test_{measure}_percent" if measure and measure.startswith("mc") \
            else "test_" + metric
        what = {"mc1_error": "error %, one sampled rollout",
                "error": "error %, greedy"}.get(measure, metric.replace("_", " "))
        learned = r["runs"].get("learned", {})
        digits = 2 if ("error" in column or "accuracy" in column) else 4  # % vs MSE-like
        scale = 100.0 if metric in PERCENT else 1.0
        if scale != 1.0:
            what += " %"
        measured = f"{_fmt(learned.get(column), digits, scale)} ({what})"
        if not learned.get("complete", True) and learned.get(column):
            measured += " after the first stage(s) only"
        elif not learned.get("complete", True):
            sel = learned["selection"]
            vals = ", ".join(
                f"{100 * (1 - b):.2f} % (epoch {e + 1})" if sel["monitor"] == "val_accuracy"
                else f"{b:.4g} (epoch {e + 1})"
                for b, e in zip(sel["best_per_seed"], sel["epoch_per_seed"]))
            measured = f"unfinished (no test number yet); best validation error {vals}"
        greedy = learned.get("test_" + metric)
        if greedy and "accuracy" in metric:  # the column is in error %, as M=1 / M=10 are
            greedy = dict(greedy, mean=1.0 - greedy["mean"]) if scale != 1.0 else None
        elif "error" not in metric:
            greedy = None  # not a classifier's error (reconstruction MSE, ...)
        mc = " / ".join([_fmt(greedy, digits, scale)] + [
            _fmt(learned.get(f"test_{k}_error_percent")) for k in ("mc1", "mc10")])
        ref = paper.get("paper_value", "–")
        target = "the checks →" if r.get("checks") else r.get("target")
        met = {True: " ✅", False: " ❌"}.get(r.get("met"), "")
        base = "; ".join(
            f"{label}: {_fmt(e.get(column), digits, scale)}"
            + (f" (paper {e['paper_value']})" if e.get("paper_value") is not None else "")
            for label, e in r["runs"].items() if label != "learned") or "–"
        key = column[len("test_"):]
        extra = "; ".join(f"{label} (test): {_fmt((e or {}).get(key), digits, scale)}"
                          for label, e in (r.get("evaluations") or {}).items())
        if extra:
            base = extra if base == "–" else f"{base}; {extra}"
        if r.get("checks"):  # in-run comparisons (PatchDrop: all patches, random mask)
            base = "; ".join(
                f"{c['check']}: pending" if c["passed"] is None else
                f"{c['check']}: {c['value']:.4g} vs {c['bound']:.4g}"
                + (" ✅" if c["passed"] else " ❌") for c in r["checks"]) + (
                "" if base == "–" else "; " + base)
        # The best epoch counts the epochs of the stages before the last one.
        before = [sum(st.get("epochs", 0) for st in run.get("stages", [])[:-1])
                  for run in learned.get("per_seed", [])] or [0]
        epochs = ", ".join(f"{n} ({(b if b is not None else -1) + 1 + e0})" for n, b, e0 in zip(
            learned.get("epochs", []), learned.get("selection", {}).get("epoch_per_seed", []),
            before + [0] * len(learned.get("epochs", []))))
        hours = sum(learned.get("wall_seconds", [])) / 60.0
        curve = f"[png]({r['curve']})" if r.get("curve") else ""
        partial = "" if r.get("complete", True) else " (partial run)"
        rows.append(f"| `{r['model']}`{partial} | {measured}{met} | {mc} | {ref} | "
                    f"{_target(target)} | "
                    f"{base} | {epochs} | {hours:.0f} min | {curve} |")
    if not paths:
        rows.append("| (none yet) | | | | | | | | |")
    return "\n".join(rows)


def render(text):
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md lacks the {BEGIN} / {END} markers.")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    text = f"{head}{BEGIN}\n{models_table()}\n{END}{tail}"
    if RESULTS_BEGIN in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_BEGIN, 1)
        _, tail = rest.split(RESULTS_END, 1)
        text = f"{head}{RESULTS_BEGIN}\n{results_table()}\n{RESULTS_END}{tail}"
    return text


def main(argv):
    path = ROOT / "README.md"
    text = path.read_text()
    new = render(text)
    if "--check" in argv:
        if new != text:
            print("README.md generated tables are stale: run python tools/update_readme.py")
            return 1
        return 0
    path.write_text(new)
    print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
