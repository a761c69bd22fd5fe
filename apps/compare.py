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

Each preset's curve is also kept in --out_dir/curves/<preset>.json under a key:
the sha256 of the weights it scored, the sha256 of the images and labels it
scored them on, and the budget sweep. A later run (say, after one more preset
has been trained) reuses every curve whose key is unchanged, so an interrupted
or extended comparison never recomputes a finished method, and a curve scored on
other images (the embedded digits, another --images, another task) is never
reused. --recompute scores everything again.
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


def curve_key(kwargs, images, labels):
    """What a cached curve must match: the sha256 of the weights file
    `restore_model(**kwargs)` loads, of the images and labels, and the sweep."""
    import hashlib

    import numpy as np

    from keras_glimpse import compare, weights

    if "model_dir" in kwargs:
        path = pathlib.Path(kwargs["model_dir"]) / "checkpoints" / "best.keras"
    else:
        path = pathlib.Path(weights.weights_path(kwargs["model"]))
    data = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    data.update(np.ascontiguousarray(labels).tobytes())
    return {"weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "data_sha256": data.hexdigest(),
            "sweep": [list(compare.STOP_THRESHOLDS), list(compare.KEEP_THRESHOLDS)]}


def cached_curve(path, key):
    """The curve stored at `path` under `key`, else None."""
    try:
        stored = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return stored["curve"] if stored.get("key") == key else None


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
        key = curve_key(kwargs, images, labels)
        cache = out / "curves" / f"{preset}.json"
        cached = None if FLAGS.recompute else cached_curve(cache, key)
        if cached is not None:
            curves[preset] = cached
            print(f"{preset}: {len(cached)} budget points reused from {cache} (same weights, "
                  f"same {len(images)} images, same sweep; --recompute scores it again)")
            continue
        model, _ = training.restore_model(**kwargs)
        start = time.time()
        curves[preset] = compare.budget_curve(model, images, labels)
        cache.write_text(json.dumps({"preset": preset, "weights": where, "key": key,
                                     "images": int(len(images)),
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
