"""Tiny-preset evidence: SAC policy vs random vs fixed-grid glimpses (same pixel budget).

python benchmarks/adaglimpse_evidence.py --task classification --pretrain_epochs 30 --rl_epochs 2
Pretrains the backbone on random elastic glimpses (stage="pretrain"), trains the
agent (RL epochs, backbone frozen), then evaluates the three policies on the
fixed test split.
"""

import argparse
import ast
import json
import os
import time

os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_glimpse  # noqa: E402
from keras_glimpse import stages, viz  # noqa: E402
from keras_glimpse.data.elastic_digits import make_dataset  # noqa: E402


def evaluate(model, test, policy, repeats=5):
    """`evaluate_policy` with per-image scores; the random policy is averaged over
    `repeats` passes (mean and pass-to-pass std of the metric; per image, the mean
    score over the passes)."""
    runs = [model.evaluate_policy(test, policy=policy, per_example=True)
            for _ in range(repeats if policy == "random" else 1)]
    key = "accuracy" if "accuracy" in runs[0] else "rmse"
    values = np.array([r[key] for r in runs])
    out = {key: float(values.mean()), "count": runs[0]["count"],
           "per_example": np.mean([r["per_example"] for r in runs], axis=0)}
    if len(runs) > 1:
        out.update({f"{key}_std": float(values.std()), "repeats": len(runs)})
    return out


def paired(a, b):
    """Paired difference of two policies on the same test images: mean of the
    per-image score difference (a - b) and its standard error. For classification
    it is in accuracy points; for reconstruction in per-image RMSE (a negative value
    means a reconstructs better)."""
    d = a["per_example"] - b["per_example"]
    return {"mean": float(d.mean()), "stderr": float(d.std(ddof=1) / np.sqrt(len(d)))}


def public(result):
    return {k: v for k, v in result.items() if k != "per_example"}


def compare(model, test, prefix, log):
    results = {pol: evaluate(model, test, pol) for pol in ("random", "grid", "actor")}
    log[f"{prefix}_actor_minus_random"] = paired(results["actor"], results["random"])
    for pol, result in results.items():
        log[f"{prefix}_{pol}"] = public(result)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="classification")
    p.add_argument("--pretrain_epochs", type=int, default=30)
    p.add_argument("--rl_epochs", type=int, default=2)
    p.add_argument("--train_limit", type=int, default=4000)
    p.add_argument("--pretrain_lr", type=float, default=1e-3)
    p.add_argument("--initial_alpha", type=float, default=None)
    p.add_argument("--pretrained", default=None,
                   help="weights file: loaded if it exists, else written after pretraining")
    p.add_argument("--rl_weights", default=None,
                   help="weights of an RL-trained model: loaded instead of running RL")
    p.add_argument("--backbone_epochs", type=int, default=0,
                   help="after RL, fine-tune the backbone K epochs on the agent's glimpses, and "
                        "a copy of the pretrained backbone K epochs on random glimpses")
    p.add_argument("--backbone_lr", type=float, default=1e-4)
    p.add_argument("--set", action="append", default=[],
                   help="model override key=value for the RL model (repeatable)")
    p.add_argument("--test_limit", type=int, default=1000, help="test canvases (1,000 offline)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the agent's initialisation and of RL sampling (the "
                        "pretraining and the test split keep seed 0)")
    p.add_argument("--out", default="/tmp/adaglimpse_evidence")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    keras.utils.set_random_seed(0)
    name = f"adaglimpse_digits_{a.task}"
    train = make_dataset("train", 64, limit=a.train_limit, drop_remainder=True)
    test = make_dataset("test", 100, limit=a.test_limit)
    log = {"preset": name, "seed": a.seed}
    t0 = time.time()
    pre = keras_glimpse.build(name, stage="pretrain", seed=0, compile=False)
    if a.pretrained and os.path.exists(a.pretrained):
        pre.load_weights(a.pretrained)
        log["pretrained_from"] = a.pretrained
    else:
        steps = a.train_limit // 64
        # Half-epoch linear warm-up, then cosine decay to 1% (a short ViT run needs it).
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, steps * a.pretrain_epochs, alpha=1e-2, warmup_target=a.pretrain_lr,
            warmup_steps=steps // 2)
        pre.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4))
        h = pre.fit(train, epochs=a.pretrain_epochs, verbose=2)
        log["pretrain"] = {k: float(v[-1]) for k, v in h.history.items()}
        log["pretrain_s"] = time.time() - t0
        if a.pretrained:
            pre.save_weights(a.pretrained)
    print("pretrain done", log, flush=True)
    extra = {} if a.initial_alpha is None else {"initial_alpha": a.initial_alpha}
    for item in a.set:
        key, value = item.split("=", 1)
        extra[key] = ast.literal_eval(value)
    log["overrides"] = extra
    keras.utils.set_random_seed(a.seed)
    model = keras_glimpse.build(name, seed=a.seed, compile=False, freeze_backbone_epochs=100,
                                **extra)
    # Only the backbone carries over: the agent, critics and temperature start fresh
    # (a weights file from before the random pre-norm biases holds zero-bias agents);
    # the same hand-off as apps.train --stage=rl --init_from=<pretrain model_dir>.
    stages.init_from(model, pre)
    model.compile()
    compare(model, test, "before_rl", log)
    print(log, flush=True)
    t1 = time.time()
    if a.rl_weights:
        model.load_weights(a.rl_weights)
    else:
        h = model.fit(train, epochs=a.rl_epochs, verbose=2)
        log["rl"] = {k: [float(x) for x in v] for k, v in h.history.items()}
        model.save_weights(os.path.join(a.out, f"{a.task}_rl.weights.h5"))
    log["rl_s"] = time.time() - t1
    compare(model, test, "after_rl", log)
    x, y = next(iter(test))
    boxes = model.rollout(x)["boxes"].numpy()  # (B, T, 4) greedy
    side = boxes[..., 2] - boxes[..., 0]
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    # How image-dependent is the greedy policy? Spread across test images, per step.
    log["greedy_boxes"] = {"side_mean": side.mean(0).round(1).tolist(),
                           "side_std": side.std(0).round(1).tolist(),
                           "centre_std": centre.std(0).mean(-1).round(1).tolist()}
    print(json.dumps(log, indent=1), flush=True)
    with open(os.path.join(a.out, f"{a.task}.json"), "w") as f:
        json.dump(log, f, indent=1)
    if a.backbone_epochs:
        # Each policy gets its own backbone, fine-tuned for the same number of epochs on the
        # glimpses it takes: the agent's (the original's backbone epochs) or random ones
        # (pretraining continued). The agent is frozen during the backbone epochs.
        t2 = time.time()
        model.backbone_training = "backbone_only"
        model.compile(optimizer=keras.optimizers.AdamW(a.backbone_lr, weight_decay=1e-4))
        model.fit(train, epochs=a.backbone_epochs, verbose=2)
        pre.compile(optimizer=keras.optimizers.AdamW(a.backbone_lr, weight_decay=1e-4))
        pre.fit(train, epochs=a.backbone_epochs, verbose=2)
        log["backbone_s"] = time.time() - t2
        tuned = {"actor": evaluate(model, test, "actor"), "random": evaluate(pre, test, "random"),
                 "grid": evaluate(pre, test, "grid")}
        log["tuned_actor_backbone_random"] = public(evaluate(model, test, "random"))
        log["tuned_actor_minus_random"] = paired(tuned["actor"], tuned["random"])
        for pol, result in tuned.items():
            log[f"tuned_{pol}"] = public(result)
        print(json.dumps({k: v for k, v in log.items() if k.startswith("tuned")}), flush=True)
    with open(os.path.join(a.out, f"{a.task}.json"), "w") as f:
        json.dump(log, f, indent=1)
    viz.visualize(model, x[:3], y[:3], os.path.join(a.out, a.task))


if __name__ == "__main__":
    main()
