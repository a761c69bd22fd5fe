"""One optimizer and learning-rate schedule factory for every model.

A preset's `training` table names the optimizer and its schedule; every
`compile_from_preset` builds its optimizers here, and `compile_model` is the
one entry point of `registry.build` and `training.build_model`.

Keys (each may carry a prefix, e.g. `agent_learning_rate` for the optimizer
built with `prefix="agent_"`; the caller gives per-optimizer defaults):

- `optimizer`: `adam` | `sgd` (`momentum`, 0.9) | `adamw`; `weight_decay`
  (AdamW: 0.01 when absent; SGD: none when absent or 0; Adam: ignored).
  Adam and AdamW are Keras' with a fused per-variable update
  (`keras_glimpse.fused_adam`).
- `learning_rate`.
- `schedule`: `none` | `step` | `cosine` | `plateau`. `step` is implied by
  `lr_decay_epochs` (e.g. `[150, 250]`, times `lr_decay_factor`, 0.1);
  `cosine` decays over `epochs` to `cosine_alpha` (0) times the rate;
  `plateau` keeps a constant rate that `callbacks.PlateauSchedule` lowers.
- The schedule length in steps uses `steps_per_epoch` (see `epoch_steps`);
  without it a schedule degrades to a constant rate.
"""

import math

import keras
import tensorflow as tf

from keras_glimpse.fused_adam import FusedAdam, FusedAdamW

OPTIMIZERS = ("adam", "sgd", "adamw")
SCHEDULES = ("none", "step", "cosine", "plateau")

_DEFAULTS = {"optimizer": "adam", "learning_rate": 1e-3, "momentum": 0.9, "weight_decay": None,
             "schedule": None, "lr_decay_epochs": None, "lr_decay_factor": 0.1,
             "cosine_alpha": 0.0}


def steps_per_epoch(num_examples, batch_size, drop_remainder=False):
    """Optimizer steps in one pass over `num_examples`: the batches `fit`
    runs per epoch when it is not given `steps_per_epoch`.

    The one rounding rule: `ceil(num_examples / batch_size)` (the last,
    partial batch is a step), `floor` when the training split drops that
    partial batch (`drop_remainder=True`); never below 1.
    """
    n, b = int(num_examples), int(batch_size)
    if b < 1:
        raise ValueError(f"`batch_size` must be >= 1; received batch_size={batch_size}.")
    return max(1, n // b if drop_remainder else math.ceil(n / b))


def epoch_steps(training, default_examples=None, drop_remainder=True):
    """Steps per epoch that `training` implies, or None when unknown.

    `steps_per_epoch` when set (`fit` then runs exactly that many on the
    repeated dataset), else `steps_per_epoch(train_examples (or
    default_examples), batch_size (32), drop_remainder)`. Every dataset's
    training split drops its last partial batch by default
    (`keras_glimpse.data.pipeline.batched`), hence `drop_remainder=True`.
    """
    if training.get("steps_per_epoch"):
        return int(training["steps_per_epoch"])
    examples = training.get("train_examples") or default_examples
    if not examples:
        return None
    return steps_per_epoch(examples, training.get("batch_size", 32), drop_remainder)


def stage_table(training, stage):
    """`training` with its `stages.<stage>` table merged over it (and no `stages`)."""
    training = dict(training)
    training.update((training.pop("stages", None) or {}).get(stage, {}))
    return training


def _key(training, prefix, key, defaults):
    return training.get(prefix + key, defaults.get(key, _DEFAULTS[key]))


def make_schedule(training, prefix="", steps_multiplier=1, default_examples=None,
                  drop_remainder=True, **defaults):
    """The learning rate (a float or a `LearningRateSchedule`) of `training`.

    `steps_multiplier`: optimizer steps per batch (e.g. one per glimpse).
    `defaults`: per-optimizer defaults of the (unprefixed) keys.
    """
    lr = float(_key(training, prefix, "learning_rate", defaults))
    boundaries = _key(training, prefix, "lr_decay_epochs", defaults)
    name = _key(training, prefix, "schedule", defaults) or ("step" if boundaries else "none")
    name = str(name).lower()
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; use {', '.join(SCHEDULES)}.")
    steps = epoch_steps(training, default_examples, drop_remainder)
    if name in ("none", "plateau") or steps is None:
        return lr
    per_epoch = steps * int(steps_multiplier)
    if name == "step":
        if not boundaries:
            raise ValueError(f"schedule 'step' needs `{prefix}lr_decay_epochs`.")
        factor = float(_key(training, prefix, "lr_decay_factor", defaults))
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(e) * per_epoch for e in boundaries],
            [lr * factor ** i for i in range(len(boundaries) + 1)])
    if not training.get("epochs"):
        return lr
    return keras.optimizers.schedules.CosineDecay(
        lr, max(1, int(training["epochs"]) * per_epoch),
        alpha=float(_key(training, prefix, "cosine_alpha", defaults)))


def make_optimizer(training, prefix="", steps_multiplier=1, default_examples=None,
                   drop_remainder=True, **defaults):
    """The optimizer of `training` (keys read with `prefix`, see the module
    docstring) with its `make_schedule` learning rate.

    Example:
    >>> opt = make_optimizer({"optimizer": "sgd", "learning_rate": 0.1})
    >>> type(opt).__name__
    'SGD'
    >>> type(make_optimizer({"optimizer": "adamw"})).__name__
    'FusedAdamW'
    """
    lr = make_schedule(training, prefix, steps_multiplier, default_examples, drop_remainder,
                       **defaults)
    name = str(_key(training, prefix, "optimizer", defaults)).lower()
    wd = _key(training, prefix, "weight_decay", defaults)
    if name == "adam":
        optimizer = FusedAdam(lr)
    elif name == "sgd":
        momentum = float(_key(training, prefix, "momentum", defaults))
        optimizer = keras.optimizers.SGD(lr, momentum=momentum,
                                         weight_decay=float(wd) if wd else None)
    elif name == "adamw":
        optimizer = FusedAdamW(lr, weight_decay=0.01 if wd is None else float(wd))
    else:
        raise ValueError(f"Unknown optimizer {name!r}; use {', '.join(OPTIMIZERS)}.")
    return optimizer


def compile_model(model, training):
    """Compiles `model` from a preset's `training` table: its own
    `compile_from_preset` when it has one, else one `make_optimizer`."""
    training = dict(training)
    if hasattr(model, "compile_from_preset"):
        model.compile_from_preset(training)
    else:
        model.compile(optimizer=make_optimizer(training))
    return model


def learning_rate_at(optimizer, step):
    """The learning rate `optimizer` uses at optimizer step `step`."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    lr = getattr(optimizer, "_learning_rate", None)
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        return float(keras.ops.convert_to_numpy(lr(step)))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def loss_scaled(optimizer, model):
    """`optimizer` inside a `LossScaleOptimizer` when `model`'s dtype policy
    is `mixed_float16`, else `optimizer` itself: what `Model.compile` does to
    the model's own optimizer, for the other optimizers a model's `compile`
    takes (RECAP's policy and value, the ordinal agent's, AdaGlimpse's SAC)."""
    if (model.dtype_policy.name == "mixed_float16"
            and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def loss_scale(optimizer, variables):
    """The factor `optimizer` multiplies the loss by before differentiation
    (a `LossScaleOptimizer`'s current dynamic scale; 1 for any other
    optimizer) and divides out again in `apply`/`apply_gradients`.

    Builds `optimizer` on `variables` first, so that a traced train step reads
    the scale variable (before its build Keras answers a Python constant).
    """
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tf.constant(1.0 if optimizer.loss_scale_factor is None
                           else optimizer.loss_scale_factor, tf.float32)
    if not optimizer.built:
        optimizer.build(variables)
    return tf.cast(tf.convert_to_tensor(optimizer.scale_loss(1.0)), tf.float32)


def gradients(tape, loss, variables, optimizer):
    """`tape.gradient(loss, variables)` as `optimizer` expects them: every
    custom train step takes its gradients here.

    Under mixed precision (`mixed_float16`, a `LossScaleOptimizer`) the float32
    loss is multiplied by the optimizer's dynamic loss scale as the gradient
    flows back (so that float16 activation gradients do not underflow); the
    optimizer's `apply`/`apply_gradients` divides it out again and skips a step
    whose gradients are not finite. Without loss scaling this is
    `tape.gradient`. Gradients clipped by norm before `apply` must clip at
    `clipnorm * loss_scale(optimizer, variables)`.
    """
    if (not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
            and optimizer.loss_scale_factor is None):
        return tape.gradient(loss, variables)
    scale = loss_scale(optimizer, variables)
    return tape.gradient(loss, variables,
                         output_gradients=tf.cast(scale, loss.dtype) * tf.ones_like(loss))
