"""Early exit: accuracy, glimpses, FLOPs and images/s against the stop threshold.

    python benchmarks/early_exit.py [--presets ram_mnist28,ram_cluttered60,recap_mnist28]
        [--data_dir ../shared/data] [--images 2000] [--single 300] [--train_steps 0]

For each preset (its shipped weights) and each `stop_threshold` p, on the
first `--images` test images (the full test split with `--data_dir`, else the
embedded digits): greedy accuracy, mean glimpses used, multiply-adds per image
(`keras_glimpse.flops`: the per-glimpse cost times the glimpses used, plus the
once-per-image cost; RECAP's classifier re-reads the glimpses so far after
every glimpse, so its rows count that, `RECAP.early_exit_macs`), and measured
images/s on two paths: batches of 256 (the
loop ends when the batch's last image stops) and one image at a time (what
the exported `serve_early_exit` does per request; `--single` images). p = 1
never stops early; the `full` row is the plain rollout (no early-exit loop). Same process, same weights, one
row after the other; rerun to see this machine's drift.
"""

import argparse
import os
import time


def _test_images(preset, data_dir, count):
    import numpy as np

    from keras_glimpse import training

    config = training.resolve_config(preset, data_dir=data_dir)
    config["training"]["batch_size"] = 256
    xs, ys = [], []
    for x, y in training.make_data(config, "test"):
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
        if sum(len(v) for v in ys) >= count:
            break
    return np.concatenate(xs)[:count], np.concatenate(ys)[:count]


def _macs(model):
    """`(full, macs)`: the plain rollout's per-image MACs (`keras_glimpse.flops`)
    and `macs(glimpses_used)`, the mean per-image MACs of the early-exit rollout
    (`compare.macs_of_glimpses`). RAM / AdaGlimpse: the rollout cut to each
    image's glimpses; the early-exit loop also reads RAM's classifier after
    every glimpse (a dense layer on h_t, under 1 % of a RAM step): not counted.
    RECAP (`early_exit_macs`): its attention + LSTM classifier on every prefix,
    counted, since it is a large part of a step."""
    from keras_glimpse import compare, flops

    return float(flops.count(model).per_image_macs), compare.macs_of_glimpses(model)


def _step_confidences(model, x):
    """`(B, T)` top class probability after each glimpse of the plain greedy
    rollout (AdaGlimpse and RECAP; used to place thresholds for untrained models)."""
    import tensorflow as tf

    if hasattr(model, "_agent_rollout"):  # RECAP: the classifier on every prefix
        steps = model._agent_rollout(tf.constant(x), "greedy", with_rewards=True)["step_logits"]
    else:
        steps = tf.transpose(model.rollout(x, return_steps=True)["step_predictions"][1:], [1, 0, 2])
    return tf.reduce_max(tf.nn.softmax(steps), -1).numpy()


def _train_briefly(model, preset, data_dir, steps):
    """A few training steps of a model without shipped weights, so its
    accuracy is not chance (still far from trained)."""
    from keras_glimpse import training

    config = training.resolve_config(preset, data_dir=data_dir)
    model.compile_from_preset(config["training"])
    model.fit(training.make_data(config, "train", repeat=True), steps_per_epoch=steps,
              epochs=1, verbose=0)


def bench(preset, data_dir, images, single, thresholds, train_steps=0):
    import numpy as np
    import tensorflow as tf

    import keras_glimpse

    from keras_glimpse import weights

    trained = preset in weights.available()
    model = keras_glimpse.build(preset, weights="pretrained" if trained else None)
    x, y = _test_images(preset, data_dir, images)
    if len(x) >= 256:  # whole batches only: a smaller last batch would retrace inside the timing
        x, y = x[:len(x) // 256 * 256], y[:len(y) // 256 * 256]
    glimpses = getattr(model, "num_glimpses", None) or model.num_steps  # RECAP: num_steps
    if not trained and train_steps:
        _train_briefly(model, preset, data_dir, train_steps)
    full_macs, macs_of = _macs(model)
    if not trained:
        # No shipped weights: accuracy means little, but the compute still
        # falls with the threshold. Use quantiles of the model's own
        # confidences after each glimpse, so some images stop at each step.
        conf = _step_confidences(model, x[:256]).ravel()
        thresholds = [1.0] + [float(np.quantile(conf, q)) for q in (0.75, 0.5, 0.25)]

    @tf.function(reduce_retracing=True)
    def run(images, threshold):
        out = model.rollout(images, mode="greedy", stop_threshold=threshold)
        return out["predictions"], out["glimpses_used"]

    @tf.function(reduce_retracing=True)
    def run_full(images):
        return model.rollout(images, mode="greedy")["predictions"]

    rows = []
    run_full(tf.constant(x[:256]))
    start = time.perf_counter()
    preds = [np.argmax(run_full(tf.constant(x[i:i + 256])), -1) for i in range(0, len(x), 256)]
    batched = len(x) / (time.perf_counter() - start)
    run_full(tf.constant(x[:1]))
    start = time.perf_counter()
    for i in range(single):
        run_full(tf.constant(x[i:i + 1])).numpy()
    rows.append({"preset": preset + ("" if trained else "*"), "p": None,
                 "accuracy": float(np.mean(np.concatenate(preds) == y)),
                 "glimpses": float(glimpses), "macs": full_macs,
                 "img_s_batch256": batched, "img_s_batch1": single / (time.perf_counter() - start)})
    for p in thresholds:
        threshold = tf.constant(p, tf.float32)
        preds, used = [], []
        run(tf.constant(x[:256]), threshold)  # trace
        start = time.perf_counter()
        for i in range(0, len(x), 256):
            logits, n = run(tf.constant(x[i:i + 256]), threshold)
            preds.append(np.argmax(logits, -1))
            used.append(np.asarray(n))
        batched = len(x) / (time.perf_counter() - start)
        run(tf.constant(x[:1]), threshold)
        start = time.perf_counter()
        for i in range(single):
            run(tf.constant(x[i:i + 1]), threshold)[1].numpy()
        one = single / (time.perf_counter() - start)
        used = np.concatenate(used)
        acc = float(np.mean(np.concatenate(preds) == y))
        macs = None if macs_of is None else macs_of(used)
        rows.append({"preset": preset + ("" if trained else "*"), "p": p, "accuracy": acc,
                     "glimpses": float(used.mean()), "macs": macs,
                     "img_s_batch256": batched, "img_s_batch1": one})
    return rows


def table(rows):
    head = (f"{'preset':<33} {'p':>6} {'accuracy %':>10} {'glimpses':>8} {'MMACs/img':>9} "
            f"{'img/s b256':>10} {'img/s b1':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        macs = "n/a" if r["macs"] is None else f"{r['macs'] / 1e6:.3f}"
        p = "full" if r["p"] is None else f"{r['p']:.3f}"
        lines.append(f"{r['preset']:<33} {p:>6} {100 * r['accuracy']:>10.2f} "
                     f"{r['glimpses']:>8.2f} {macs:>9} {r['img_s_batch256']:>10.0f} "
                     f"{r['img_s_batch1']:>9.0f}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="ram_mnist28,ram_cluttered60,"
                        "adaglimpse_digits_classification,recap_mnist28")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--thresholds", default="1.0,0.99,0.95,0.9,0.8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train_steps", type=int, default=0,
                        help="train a preset without shipped weights this many steps first")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    rows = []
    for preset in args.presets.split(","):
        rows += bench(preset, args.data_dir, args.images, args.single, thresholds,
                      args.train_steps)
    print(table(rows))
    if any(r["preset"].endswith("*") for r in rows):
        print("* no shipped weights: an untrained model (accuracy is chance; with --train_steps "
              "N, N training steps), thresholds at the 100/75/50/25 % quantiles of its own "
              "confidences: the compute, not the accuracy.")


if __name__ == "__main__":
    main()
