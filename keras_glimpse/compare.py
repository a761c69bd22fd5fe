"""Accuracy against the sensing and compute budget: every method on one task.

    from keras_glimpse import compare
    curve = compare.budget_curve(model, images, labels)   # learned and random policies
    compare.plot(curves, "compare.png"); print(compare.format_table(curves))

`python -m apps.compare` runs it for the presets of one task (default: the
60x60 cluttered translated MNIST canvases of `ram_cluttered60`), each
method trained for that task through its own preset.

A budget point is one way of running a trained classifier with less or more
sensing, and says what it cost per image:

- `pixels`: the values the sensor read, as a fraction of the image's
  `H x W x C` (`pixels_read`): RAM, `scales x g^2` per glimpse (a coarse scale
  reads a downsampled window: its g^2 values, not the window's area); RECAP,
  `p^2` per glimpse; AdaGlimpse, `grid^2 x p^2` per glimpse; PatchDrop, the
  low-resolution view plus each kept `(H/G) x (W/G)` patch.
- `macs`: multiply-accumulates per image of the path that ran
  (`keras_glimpse.flops`; sequential methods at the glimpses each image used).
- `accuracy` of the greedy prediction, and `glimpses` (or patches) used.

The sequential classifiers (RAM, RECAP, AdaGlimpse) trace their curve with
early exit (`rollout(..., stop_threshold=p)`, one point per p), PatchDrop by
thresholding its policy's keep probabilities (one point per threshold). Each
method's random policy runs the same sweep: random glimpses with the same
early-exit rule, or a random mask keeping as many patches per image.
"""

import numpy as np
import tensorflow as tf

from keras_glimpse import flops

STOP_THRESHOLDS = (1.0, 0.999, 0.99, 0.95, 0.9, 0.8, 0.6, 0.4)
KEEP_THRESHOLDS = (0.9, 0.7, 0.5, 0.3, 0.1)


def _family(model):
    return type(model).__name__


def pixels_read(model, glimpses=None, patches_kept=None):
    """Sensor values one image's rollout reads, as a fraction of `H x W x C`.

    Args:
        model: a built classifier of one of the families above.
        glimpses: glimpses used (a number or an array of per-image counts; the
            mean is taken); default the model's full rollout.
        patches_kept: PatchDrop only: patches kept (number or per-image array).
    """
    h, w, c = model.image_shape
    family = _family(model)
    if family == "PatchDrop":
        kept = model.num_patches if patches_kept is None else float(np.mean(patches_kept))
        lr = -(-h // model.lr_factor) * -(-w // model.lr_factor)
        patch = (h // model.grid_size) * (w // model.grid_size)
        return float(lr + kept * patch) / (h * w)
    per_glimpse = {
        "RAM": lambda: model.num_scales * model.glimpse_size ** 2,
        "URAM": lambda: model.num_scales * model.glimpse_size ** 2,
        "RECAP": lambda: model.patch_size ** 2,
        "AdaGlimpse": lambda: model.grid_size ** 2 * model.patch_size ** 2,
    }.get(family)
    if per_glimpse is None:
        raise ValueError(f"compare.pixels_read does not know the sensor of {family}; "
                         "add its per-glimpse read to compare.py.")
    steps = _num_steps(model) if glimpses is None else float(np.mean(glimpses))
    return float(steps * per_glimpse() * c) / (h * w * c)


def _num_steps(model):
    return getattr(model, "num_glimpses", None) or model.num_steps


def macs_of_glimpses(model):
    """`macs(glimpses_used) -> mean per-image MACs` of the early-exit rollout:
    each image's plan cut to the glimpses it used (`FlopsReport.macs_for_steps`;
    RECAP re-reads the glimpses so far after each one, `early_exit_macs`)."""
    per_image = getattr(model, "early_exit_macs", None) or flops.count(model).macs_for_steps

    def macs(used):
        counts, freq = np.unique(np.asarray(used), return_counts=True)
        return float(sum(per_image(int(k)) * n for k, n in zip(counts, freq)) / freq.sum())

    return macs


def _batches(images, labels, batch_size):
    for i in range(0, len(images), batch_size):
        yield tf.constant(images[i:i + batch_size]), labels[i:i + batch_size]


def early_exit_curve(model, images, labels, policy="learned", thresholds=STOP_THRESHOLDS,
                     batch_size=500):
    """Budget points of a sequential classifier, one per stop threshold."""
    macs = macs_of_glimpses(model)

    @tf.function(reduce_retracing=True)
    def run(x, threshold):
        out = model.rollout(x, mode="greedy", policy=policy, stop_threshold=threshold)
        return out["predictions"], out["glimpses_used"]

    points = []
    for p in thresholds:
        correct, used = [], []
        for x, y in _batches(images, labels, batch_size):
            logits, n = run(x, tf.constant(p, tf.float32))
            correct.append(np.argmax(logits, -1) == y)
            used.append(np.asarray(n))
        used = np.concatenate(used)
        points.append({"policy": policy, "threshold": float(p),
                       "accuracy": float(np.mean(np.concatenate(correct))),
                       "glimpses": float(used.mean()), "pixels": pixels_read(model, used),
                       "macs": macs(used)})
    return points


def patch_curve(model, images, labels, thresholds=KEEP_THRESHOLDS, batch_size=500):
    """PatchDrop's budget points: the policy keeps the patches whose keep
    probability reaches each threshold (0.5 is its greedy policy); the random
    policy keeps as many random patches per image."""
    from keras_glimpse.models.patchdrop import random_mask_like

    sparse = getattr(model.hr_net, "takes_actions", False)

    @tf.function(reduce_retracing=True)
    def run(x, threshold):
        probs = model.rollout(x, mode="greedy")["probs"]
        learned = tf.cast(probs >= threshold, tf.float32)
        random = random_mask_like(learned, seed=model.policy_head.seed_generator)
        return (model.classify_masked(x, learned), model.classify_masked(x, random),
                tf.reduce_sum(learned, -1))

    points = {"learned": [], "random": []}
    for t in thresholds:
        hits = {"learned": [], "random": []}
        kept = []
        for x, y in _batches(images, labels, batch_size):
            a, b, k = run(x, tf.constant(t, tf.float32))
            hits["learned"].append(np.argmax(a, -1) == y)
            hits["random"].append(np.argmax(b, -1) == y)
            kept.append(np.asarray(k))
        kept = np.concatenate(kept)
        # The dense ResNet runs on the whole masked image: its cost does not
        # fall with the patches kept; the sparse ViT's does, per image.
        if sparse:
            per_k = {k: flops.count(model, patches_kept=int(k)).per_image_macs
                     for k in np.unique(kept)}
            macs = float(np.mean([per_k[k] for k in kept]))
        else:
            macs = float(flops.count(model).per_image_macs)
        for policy in points:
            points[policy].append({
                "policy": policy, "threshold": float(t),
                "accuracy": float(np.mean(np.concatenate(hits[policy]))),
                "glimpses": float(kept.mean()), "pixels": pixels_read(model, patches_kept=kept),
                "macs": macs})
    return points["learned"] + points["random"]


def budget_curve(model, images, labels, thresholds=None, random=True, batch_size=500):
    """Budget points of one trained classifier, learned policy then random.

    Args:
        model: a trained RAM, RECAP (agent stage), AdaGlimpse (classification)
            or PatchDrop (a policy stage) model.
        images, labels: numpy arrays of the evaluation images and class ids.
        thresholds: stop thresholds (sequential methods) or keep-probability
            thresholds (PatchDrop); default `STOP_THRESHOLDS` / `KEEP_THRESHOLDS`.
        random: also the random policy's points.

    Returns:
        list of dicts `policy, threshold, accuracy, glimpses, pixels, macs`.
    """
    labels = np.asarray(labels).reshape(-1)
    if _family(model) == "PatchDrop":
        if model.stage == "classifier":
            raise ValueError("compare needs a PatchDrop policy stage (pretrain, finetune or "
                             "finetune2stream); this model is the classifier stage.")
        points = patch_curve(model, images, labels, thresholds or KEEP_THRESHOLDS, batch_size)
        return points if random else [p for p in points if p["policy"] == "learned"]
    if not getattr(model, "supports_early_exit", False):
        raise ValueError(f"compare needs a classifier with early exit or patch keep "
                         f"probabilities; {_family(model)} (stage "
                         f"{getattr(model, 'stage', None)!r}) has neither.")
    thresholds = thresholds or STOP_THRESHOLDS
    points = early_exit_curve(model, images, labels, "learned", thresholds, batch_size)
    if random:
        points += early_exit_curve(model, images, labels, "random", thresholds, batch_size)
    return points


def format_table(curves):
    """`curves`: `{label: points}` -> a Markdown table, one row per point."""
    rows = ["| method | policy | threshold | accuracy % | glimpses / patches | pixels read % "
            "| MMACs / image |", "|---|---|---|---|---|---|---|"]
    for label, points in curves.items():
        for p in points:
            rows.append(f"| {label} | {p['policy']} | {p['threshold']:g} | "
                        f"{100 * p['accuracy']:.2f} | {p['glimpses']:.2f} | "
                        f"{100 * p['pixels']:.1f} | {p['macs'] / 1e6:.3f} |")
    return "\n".join(rows)


def plot(curves, path, title="accuracy against budget"):
    """Accuracy against pixels read and against MACs, one colour per method,
    solid for the learned policy, dashed for the random one. Returns `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (label, points) in enumerate(curves.items()):
        colour = f"C{i}"
        for policy, style in (("learned", "-o"), ("random", "--x")):
            pts = sorted((p for p in points if p["policy"] == policy), key=lambda p: p["pixels"])
            if not pts:
                continue
            acc = [100 * p["accuracy"] for p in pts]
            name = label if policy == "learned" else f"{label} (random)"
            axes[0].plot([100 * p["pixels"] for p in pts], acc, style, color=colour,
                         label=name, markersize=4)
            axes[1].plot([p["macs"] / 1e6 for p in pts], acc, style, color=colour,
                         label=name, markersize=4)
    axes[0].set_xlabel("pixels read (% of the image)")
    axes[1].set_xlabel("MMACs per image")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("test accuracy %")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
