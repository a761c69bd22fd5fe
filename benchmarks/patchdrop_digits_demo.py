"""Runs all PatchDrop stages on the offline digits preset and compares policies.

    python benchmarks/patchdrop_digits_demo.py --out /tmp/patchdrop_digits
        [--preset patchdrop_digits64 | patchdrop_digits64_sparse] [--scale 1.0]

Stages (each through keras_glimpse.training, as apps.train runs them):
HR classifier -> LR classifier -> policy pre-training -> joint fine-tuning ->
two-stream fine-tuning. Then, on the fixed test split, it reports the greedy
policy's accuracy and S beside the HR classifier on all patches and beside a
random policy that keeps the same number of patches per image, and the HR
classifier's measured latency (batch 64) with 25 / 50 / 100 % of the patches
kept: flat for the dense ResNet (it sees the zero-filled image), falling for
the sparse ViT (`patchdrop_digits64_sparse`: only the kept patches are computed).
Each stage runs the preset's number of epochs (times `--scale`).
"""

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (benchmarks/ is not a package)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_glimpse import training, viz  # noqa: E402

NAME = "patchdrop_digits64"  # --preset


def run_stage(out, stage, sub, epochs=None, init_from=(), **overrides):
    t = time.time()
    config = training.resolve_config(NAME, model_dir=str(out / sub), stage=stage,
                                     overrides=overrides, epochs=epochs, verbose=2,
                                     init_from=list(init_from))
    # training.run_training minus TensorBoard (not installed everywhere).
    import keras

    ckpt = out / sub / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    model = training.build_model(config, init=True)
    model.fit(training.make_data(config, "train"), epochs=int(config["training"]["epochs"]),
              callbacks=[keras.callbacks.ModelCheckpoint(str(ckpt / "last.keras"))], verbose=2)
    metrics = model.evaluate(training.make_data(config, "test"), return_dict=True, verbose=0)
    metrics = {k: float(v) for k, v in metrics.items()}
    print(f"== {sub}: {time.time() - t:.0f} s, test {metrics}", flush=True)
    return model, metrics, time.time() - t


def classifier_latency_ms(model, images, fractions=(0.25, 0.5, 1.0), batch=64, repeats=20):
    """Median ms of the HR classifier on `batch` images with each fraction of
    the patches kept (random patches; the same count per image)."""
    x = tf.constant(images[:batch])
    lr = model.low_resolution(x)
    n = model.num_patches
    rng = np.random.default_rng(0)
    out = {}
    for f in fractions:
        k = max(1, int(round(f * n)))
        actions = np.zeros((batch, n), np.float32)
        for i in range(batch):
            actions[i, rng.choice(n, size=k, replace=False)] = 1.0
        actions = tf.constant(actions)
        fn = tf.function(lambda a=actions: model._classify(x, lr, a, training=False))
        out[f"{int(100 * f)}%"] = harness.median_ms(fn, repeats)
    return out


def random_policy_accuracy(model, images, labels, counts, seed=0):
    """Accuracy of `model`'s HR(+LR) classifier with `counts[i]` random patches."""
    rng = np.random.default_rng(seed)
    n = model.num_patches
    actions = np.zeros((len(counts), n), np.float32)
    for i, k in enumerate(counts.astype(int)):
        actions[i, rng.choice(n, size=k, replace=False)] = 1.0
    preds = []
    for s in range(0, len(labels), 250):
        x = tf.constant(images[s:s + 250])
        lr = model.low_resolution(x)
        preds.append(np.argmax(model._classify(x, lr, tf.constant(actions[s:s + 250]),
                                               training=False), -1))
    return float(np.mean(np.concatenate(preds) == labels))


def greedy_eval(model, images, labels):
    out = [model.rollout(tf.constant(images[s:s + 250]), "greedy", False)
           for s in range(0, len(labels), 250)]
    preds = np.concatenate([np.argmax(o["predictions"], -1) for o in out])
    counts = np.concatenate([np.asarray(o["actions"]).sum(-1) for o in out])
    return float(np.mean(preds == labels)), counts


def main():
    global NAME
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/patchdrop_digits")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every stage's epochs")
    parser.add_argument("--preset", default=NAME)
    args = parser.parse_args()
    NAME = args.preset
    out = pathlib.Path(args.out)
    from keras_glimpse import registry

    stage_epochs = registry.get_preset(NAME)["training"]["stages"]
    ep = lambda stage: max(1, int(round(stage_epochs[stage]["epochs"] * args.scale)))  # noqa
    times = {}
    _, hr_metrics, times["classifier_hr"] = run_stage(out, "classifier", "hr",
                                                      ep("classifier"), resolution="hr")
    _, lr_metrics, times["classifier_lr"] = run_stage(out, "classifier", "lr",
                                                      ep("classifier"), resolution="lr")
    # Each stage starts from the previous model_dir (keras_glimpse.stages; last.keras
    # here, as this script writes no best.keras); the LR classifier comes by part.
    pre, pre_metrics, times["pretrain"] = run_stage(
        out, "pretrain", "pretrain", ep("pretrain"),
        init_from=[f"hr_classifier={out / 'hr'}"])
    fine, fine_metrics, times["finetune"] = run_stage(
        out, "finetune", "finetune", ep("finetune"),
        init_from=[f"hr_classifier={out / 'hr'}", f"policy={out / 'pretrain'}"])
    two, two_metrics, times["finetune2stream"] = run_stage(
        out, "finetune2stream", "finetune2stream", ep("finetune2stream"),
        init_from=[str(out / "finetune"), f"lr_classifier={out / 'lr'}"])

    config = training.resolve_config(NAME, stage="finetune")
    test = training.make_data(config, "test")
    images = np.concatenate([x.numpy() for x, _ in test])
    labels = np.concatenate([y.numpy() for _, y in test])
    report = {"preset": NAME, "times_s": times, "test_examples": int(len(labels)),
              "hr_classifier_latency_ms_batch64": classifier_latency_ms(fine, images),
              "hr_classifier_all_patches_acc": hr_metrics["accuracy"],
              "lr_classifier_acc": lr_metrics["accuracy"]}
    for tag, model in (("pretrain", pre), ("finetune", fine), ("finetune2stream", two)):
        acc, counts = greedy_eval(model, images, labels)
        report[tag] = {
            "greedy_acc": acc, "S_mean": float(counts.mean()), "S_std": float(counts.std()),
            "random_same_S_acc": np.mean([random_policy_accuracy(model, images, labels, counts, s)
                                          for s in range(3)]).item(),
            "all_patches_acc": random_policy_accuracy(
                model, images, labels, np.full_like(counts, model.num_patches)),
        }
    paths = viz.visualize(fine, images[:8], labels[:8], str(out / "viz"))
    viz.visualize(fine, images, labels, str(out / "viz_all"), max_images=0)
    report["viz"] = paths
    print(json.dumps(report, indent=2))
    (out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
