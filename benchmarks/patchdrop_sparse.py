"""Sparse vs dense PatchDrop: HR classifier latency and MACs against patches kept.

    python benchmarks/patchdrop_sparse.py [--presets patchdrop_digits64,patchdrop_digits64_sparse]
        [--batch 64] [--repeats 30]

For each preset (untrained weights: latency and MACs do not depend on them)
and 25 / 50 / 100 % of the G x G patches kept (random patches, the same count
per image), the median milliseconds of the HR classifier (`PatchDrop._classify`
in a `tf.function`) at batch `--batch` and at batch 1, and its multiply-adds
per image (`keras_glimpse.flops`). The dense ResNet sees the zero-filled image,
so its cost is flat; the sparse ViT embeds and attends to the kept patches only.
Variants run one after the other in one process; rerun to see the drift.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/ is not a package)


def bench(preset, batch, repeats, fractions=(0.25, 0.5, 1.0)):
    import numpy as np
    import tensorflow as tf

    import keras_glimpse
    from keras_glimpse import flops

    model = keras_glimpse.build(preset, compile=False, seed=0)
    n = model.num_patches
    rng = np.random.default_rng(0)
    rows = []
    for f in fractions:
        k = max(1, int(round(f * n)))
        row = {"preset": preset, "kept": f"{k}/{n}"}
        for b in (batch, 1):
            x = tf.constant(rng.uniform(size=(b,) + model.image_shape).astype("float32"))
            actions = np.zeros((b, n), np.float32)
            for i in range(b):
                actions[i, rng.choice(n, size=k, replace=False)] = 1.0
            actions = tf.constant(actions)
            lr = model.low_resolution(x)
            fn = tf.function(lambda x=x, lr=lr, a=actions: model._classify(x, lr, a, False))
            row[f"ms_b{b}"] = harness.median_ms(fn, repeats)
        report = flops.count(model, patches_kept=k)
        row["classifier_mmacs"] = report.per_image.get("hr_classifier", float("nan")) / 1e6
        row["total_mmacs"] = report.per_image_macs / 1e6
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="patchdrop_digits64,patchdrop_digits64_sparse")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rows = []
    for preset in args.presets.split(","):
        rows += bench(preset, args.batch, args.repeats)
    head = (f"{'preset':<27} {'kept':>6} {'ms b' + str(args.batch):>8} {'ms b1':>7} "
            f"{'HR MMACs':>9} {'all MMACs':>9}")
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['preset']:<27} {r['kept']:>6} {r[f'ms_b{args.batch}']:>8.1f} "
              f"{r['ms_b1']:>7.2f} {r['classifier_mmacs']:>9.2f} {r['total_mmacs']:>9.2f}")


if __name__ == "__main__":
    main()
