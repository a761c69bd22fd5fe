"""Every method on one task at matched budgets: accuracy against pixels read and FLOPs.

    python -m apps.compare [--presets=ram_cluttered60,recap_cluttered60,patchdrop_cluttered60,
        adaglimpse_cluttered60]
        [--data_dir=DIR] [--runs_dir=runs] [--out_dir=results/compare] [--images=N]

Each preset is one method trained for the shared task (default: the 60x60
cluttered translated MNIST canvases of `ram_cluttered60`); its weights are the
package's shipped ones, else the selected checkpoint of its
`apps.reproduce` run under --runs_dir. A preset with neither is listed as not
trained yet. On the test split (the first --images images), each method's
learned and random policies run their budget sweep (`keras_glimpse.compare`);
writes compare.json, compare.md (the table) and compare.png (the curves).

Each preset's curve is also kept in --out_dir/curves/<preset>.json with the
sha256 of the weights it scored and the number of images: a later run (say,
after one more preset has been trained) reuses every curve whose weights and
images are unchanged, so an interrupted or extended comparison never recomputes
a finished method. --norecompute is the default; --recompute scores everything.
"""

import json
import os
import pathlib
import time

from absl import app, flags

from apps import quiet
from apps.flags import FLAGS

TASK_PRESETS = "ram_cluttered60,recap_cluttered60,patchdrop_cluttered60,adaglimpse_cluttered60"

flags.DEFINE_string("presets", TASK_PRESETS, "Comma-separated presets of one task.")
flags.DEFINE_integer("images", 0, "Test images to evaluate (0: the whole test split).")
flags.DEFINE_bool("recompute", False, "Score every preset again, ignoring the cached curves.")


def find_weights(preset, runs_dir):
    """`(restore_model kwargs, where)` of a preset's trained weights, or None."""
    from keras_glimpse import reproduce, weights

    if preset in weights.available():
        return {"model": preset, "weights": "pretrained"}, "shipped weights"
    stages = reproduce.stage_plan(preset)
    model_dir = reproduce.run_dirs(runs_dir, preset, "learned", 0, stages)[stages[-1]["name"]]
    if (model_dir / "checkpoints").is_dir():
        return {"model_dir": model_dir}, str(model_dir)
    return None


def weights_fingerprint(kwargs):
    """sha256 of the weights file `restore_model(**kwargs)` loads."""
    import hashlib

    from keras_glimpse import weights

    if "model_dir" in kwargs:
        path = pathlib.Path(kwargs["model_dir"]) / "checkpoints" / "best.keras"
    else:
        path = pathlib.Path(weights.weights_path(kwargs["model"]))
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_curve(path, fingerprint, images):
    """The curve stored at `path` for these weights and this many images, else None."""
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if stored.get("weights_sha256") != fingerprint or stored.get("images") != images:
        return None
    return stored["curve"]


def test_split(config, count):
    import numpy as np

    from keras_glimpse import training

    xs, ys, n = [], [], 0
    for x, y in training.make_data(config, "test"):
        xs.append(np.asarray(x))
        ys.append(np.asarray(y).reshape(-1))
        n += len(xs[-1])
        if count and n >= count:
            break
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x[:count], y[:count]) if count else (x, y)


def main(argv):
    del argv
    from keras_glimpse import compare, reproduce, training

    presets = [p.strip() for p in FLAGS.presets.split(",") if p.strip()]
    if not presets:
        raise ValueError("--presets must name at least one preset.")
    configs = {p: training.resolve_config(p, data_dir=FLAGS.data_dir) for p in presets}
    task = configs[presets[0]]["data"]
    for p, c in configs.items():
        if c["data"] != task:
            raise ValueError(f"--presets must share one task: '{p}' has data {c['data']}, "
                             f"'{presets[0]}' has {task}.")
    images, labels = test_split(configs[presets[0]], FLAGS.images)
    out = pathlib.Path(FLAGS.out_dir or os.path.join("results", "compare"))
    (out / "curves").mkdir(parents=True, exist_ok=True)
    curves, sources, missing = {}, {}, []
    for preset in presets:
        found = find_weights(preset, FLAGS.runs_dir)
        if found is None:
            missing.append(preset)
            print(f"{preset}: not trained for this task yet (python -m apps.reproduce "
                  f"--model={preset} --data_dir=... --runs_dir={FLAGS.runs_dir}); skipped.")
            continue
        kwargs, where = found
        sources[preset] = where
        fingerprint = weights_fingerprint(kwargs)
        cache = out / "curves" / f"{preset}.json"
        cached = None if FLAGS.recompute else cached_curve(cache, fingerprint, len(images))
        if cached is not None:
            curves[preset] = cached
            print(f"{preset}: {len(cached)} budget points reused from {cache} (same weights, "
                  f"same {len(images)} images; --recompute scores it again)")
            continue
        model, _ = training.restore_model(**kwargs)
        start = time.time()
        curves[preset] = compare.budget_curve(model, images, labels)
        cache.write_text(json.dumps({"preset": preset, "weights": where,
                                     "weights_sha256": fingerprint, "images": int(len(images)),
                                     "seconds": round(time.time() - start, 1),
                                     "curve": curves[preset]}, indent=2))
        print(f"{preset}: {len(curves[preset])} budget points from {where} "
              f"({time.time() - start:.0f} s)")
    if not curves:
        raise SystemExit("No preset of --presets is trained yet; nothing to compare.")
    table = compare.format_table(curves)
    # The embedded digits are MNIST *training* images: never a test result.
    source = reproduce.data_source(configs[presets[0]])
    what = ("test split" if source != "embedded" else
            "embedded digits (MNIST training images: a smoke run, not a test result)")
    (out / "compare.md").write_text(
        f"{what}, first {len(images)} images of {task}.\n\n{table}\n")
    (out / "compare.json").write_text(json.dumps(
        {"task": task, "data_source": source, "images": int(len(images)), "weights": sources,
         "not_trained": missing, "curves": curves}, indent=2))
    compare.plot(curves, out / "compare.png",
                 title=f"{task.get('name')} {task.get('image_size', '')}: accuracy against budget")
    print(table)
    print(f"wrote {out / 'compare.json'}, {out / 'compare.md'} and {out / 'compare.png'}")
    return 0


if __name__ == "__main__":
    app.run(quiet.wrap(main))
