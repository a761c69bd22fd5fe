"""The optimizer / schedule factory against every packaged preset's `training` table."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse import optimizers, registry, training
from keras_glimpse.fused_adam import FusedAdam, FusedAdamW

# Smaller networks, same optimizer plumbing (num_glimpses, the optimizer-step
# multiplier of AdaGlimpse's RL stage, is kept).
SHRINK = {
    "adaglimpse": dict(backbone_size="tiny", decoder_dim=32, decoder_depth=1, decoder_heads=1,
                       hidden_units=16, replay_capacity=8, rl_batch_size=4),
    "patchdrop": dict(image_shape=[32, 32, 3], grid_size=4, hr_backbone="cifar_resnet8",
                      lr_backbone=None, policy_backbone="cifar_resnet8", cifar_widths=[4, 4, 4]),
    "ordinal": dict(embedding_dim=8, fc_units=8, hidden_units=8),
}
# (attribute, key prefix, optimizer class when the table names none, default rate,
# optimizer steps per batch) of every optimizer each builder's compile_from_preset makes.
OPTIMIZERS = {
    "ram": [("optimizer", "", "adam", 3e-4, 1)],
    "uram": [("optimizer", "", "adam", 3e-4, 1)],
    "patchdrop": [("optimizer", "", "adam", 1e-4, 1)],
    "recap": [("optimizer", "", "adam", None, 1), ("policy_optimizer", "policy_", "adam", 3e-4, 1),
              ("value_optimizer", "value_", "adam", 1e-3, 1)],
    "ordinal": [("optimizer", "", "sgd", None, 1), ("agent_optimizer", "agent_", "adam", 1e-3, 1)],
    "adaglimpse": [("optimizer", "backbone_", "adamw", 1e-5, 1)] + [
        (a, "", "adamw", 1e-3, "glimpses")
        for a in ("actor_optimizer", "critic_optimizer", "alpha_optimizer")],
}
CLASSES = {"adam": FusedAdam, "sgd": keras.optimizers.SGD, "adamw": FusedAdamW}


def _cases():
    cases = []
    for name in registry.list_models():
        preset = registry.get_preset(name)
        cases.append((name, None))
        cases += [(name, s) for s in preset.get("training", {}).get("stages", {})]
    return cases


def _build(name, stage, **training_overrides):
    """The preset model compiled as `registry.build` (no stage) or `apps.train --stage` does."""
    builder = registry.get_preset(name)["builder"]
    shrink = SHRINK.get(builder, {})
    if stage is None and not training_overrides:
        model = registry.build(name, compile=True, **shrink)
        table = dict(registry.get_preset(name).get("training", {}))
        table.pop("stages", None)
        return model, table
    overrides = dict(shrink, **{"training." + k: v for k, v in training_overrides.items()})
    config = training.resolve_config(name, stage=stage, overrides=overrides)
    return training.build_model(config), config["training"]


def _steps(table, drop_remainder):
    if table.get("steps_per_epoch"):
        return int(table["steps_per_epoch"])
    if not table.get("train_examples"):
        return None
    n, b = int(table["train_examples"]), int(table["batch_size"])
    return n // b if drop_remainder else -(-n // b)


def _expected(builder, model, table):
    """`{attribute: (class, rate at step 0, [(step, rate there)] or None, weight decay)}`,
    read off the table without the factory: the last step, and the first
    boundary (step) or the middle (cosine) of the schedule."""
    out = {}
    for attr, prefix, default_opt, default_lr, per_batch in OPTIMIZERS[builder]:
        if builder == "recap" and model.stage == "pretrain" and attr != "optimizer":
            continue  # pretraining has only the classification optimizer
        if per_batch == "glimpses":
            per_batch = model.num_glimpses if model.stage == "rl" else 1
        if default_lr is None:  # stage-dependent
            default_lr = {"recap": 1e-3 if model.stage == "pretrain" else 1e-4,
                          "ordinal": 0.0019125313967198946 if model.stage == "pretrain"
                          else 1e-3}[builder]
        kind = table.get(prefix + "optimizer", default_opt)
        lr = float(table.get(prefix + "learning_rate", default_lr))
        wd = table.get(prefix + "weight_decay")
        wd = {"adam": None, "sgd": float(wd) if wd else None,
              "adamw": 0.01 if wd is None else float(wd)}[kind]
        if builder == "adaglimpse":
            wd = float(table.get(prefix + "weight_decay", 1e-4 if prefix else 0.01))
        steps = _steps(table, drop_remainder=True)
        if builder == "patchdrop" and steps is None:
            steps = int(table.get("train_examples", 50000)) // int(table["batch_size"])
        last = None
        decay = table.get(prefix + "lr_decay_epochs")
        cosine = (builder == "adaglimpse" or (builder == "recap" and model.stage == "pretrain"
                                              and table.get("schedule", "cosine") == "cosine"))
        if decay and steps:
            step = int(table["epochs"]) * steps * per_batch - 1
            passed = sum(int(e) * steps * per_batch < step for e in decay)
            factor = float(table.get(prefix + "lr_decay_factor", 0.1))
            first_boundary = int(decay[0]) * steps * per_batch  # switches after it
            last = [(step, lr * factor ** passed), (first_boundary, lr),
                    (first_boundary + 1, lr * factor)]
        elif cosine and steps and table.get("epochs"):
            alpha = 1e-3 if builder == "adaglimpse" else 0.0
            total = int(table["epochs"]) * steps * per_batch
            last = [(total, lr * alpha)] + ([(total // 2, lr * (alpha + (1 - alpha) / 2))]
                                           if total % 2 == 0 else [])
        out[attr] = (CLASSES[kind], lr, last, wd)
    return out


@pytest.mark.parametrize("name, stage", _cases())
def test_every_preset_gets_the_optimizers_of_its_table(name, stage):
    builder = registry.get_preset(name)["builder"]
    # AdaGlimpse's schedules need steps_per_epoch; stage None is its RL stage.
    overrides = {"steps_per_epoch": 10} if builder == "adaglimpse" and stage is None else {}
    model, table = _build(name, stage, **overrides)
    for attr, (cls, lr0, last, wd) in _expected(builder, model, table).items():
        opt = getattr(model, attr)
        assert type(opt) is cls, (attr, type(opt))
        np.testing.assert_allclose(optimizers.learning_rate_at(opt, 0), lr0, rtol=1e-6)
        if last is None:
            assert not isinstance(opt._learning_rate,
                                  keras.optimizers.schedules.LearningRateSchedule), attr
        else:
            for step, rate in last:
                np.testing.assert_allclose(optimizers.learning_rate_at(opt, step), rate,
                                           rtol=1e-5, atol=1e-12, err_msg=f"{attr} step {step}")
        if wd is None:
            assert not opt.weight_decay, attr
        else:
            np.testing.assert_allclose(opt.weight_decay, wd, rtol=1e-6)


# Hand-computed from the tables, for one preset of each schedule shape.
def test_step_schedule_patchdrop_classifier_by_hand():
    model, _ = _build("patchdrop_r32_c10", "classifier")
    # SGD 0.1, x0.1 after epochs 150 and 250, floor(50000/128) = 390 steps (the
    # training split drops its partial batch)
    opt = model.optimizer
    assert type(opt) is keras.optimizers.SGD and opt.momentum == 0.9
    # Keras' PiecewiseConstantDecay switches after a boundary: steps <= 58500 run at 0.1.
    lr = [optimizers.learning_rate_at(opt, s) for s in (0, 58500, 58501, 97501, 116999)]
    np.testing.assert_allclose(lr, [0.1, 0.1, 0.01, 0.001, 0.001], rtol=1e-6)


def test_step_schedules_ordinal_joint_by_hand():
    model, _ = _build("ordinal_cluttered84", "joint")
    # floor(5358 / 512) = 10 steps (the training split drops its partial batch).
    emb, agent = model.optimizer, model.agent_optimizer
    assert type(emb) is keras.optimizers.SGD and type(agent) is FusedAdam
    np.testing.assert_allclose([optimizers.learning_rate_at(emb, s) for s in (300, 301, 701, 2499)],
                               [1e-3, 1e-4, 1e-5, 1e-6], rtol=1e-5)
    np.testing.assert_allclose([optimizers.learning_rate_at(agent, s) for s in (800, 801, 2499)],
                               [1e-3, 1e-4, 1e-6], rtol=1e-5)


def test_cosine_schedule_recap_pretrain_by_hand():
    model, _ = _build("recap_cluttered64", "pretrain")
    opt = model.optimizer  # Adam 1e-3, cosine over 10 epochs x floor(55000 / 32) = 17180 steps
    assert type(opt) is FusedAdam
    np.testing.assert_allclose([optimizers.learning_rate_at(opt, s) for s in (0, 8590, 17180)],
                               [1e-3, 5e-4, 0.0], rtol=1e-5, atol=1e-12)


def test_adamw_multi_optimizer_adaglimpse_by_hand():
    model, _ = _build("adaglimpse_digits_classification", "pretrain")
    assert all(type(o) is FusedAdamW for o in (
        model.optimizer, model.actor_optimizer, model.critic_optimizer, model.alpha_optimizer))
    assert optimizers.learning_rate_at(model.optimizer, 0) == pytest.approx(1e-3)
    assert model.optimizer.weight_decay == pytest.approx(1e-4)
    assert optimizers.learning_rate_at(model.actor_optimizer, 0) == pytest.approx(1e-3)
    assert model.actor_optimizer.weight_decay == pytest.approx(0.01)
    model, _ = _build("adaglimpse_digits_classification", None, steps_per_epoch=10)
    assert model.stage == "rl"
    # RL: backbone cosine over 4 epochs x 10 steps; the agent steps once per glimpse.
    total = 4 * 10 * model.num_glimpses
    np.testing.assert_allclose(
        [optimizers.learning_rate_at(model.optimizer, s) for s in (0, 20, 40)],
        [1e-4, 1e-4 * (1e-3 + (1 - 1e-3) * 0.5), 1e-7], rtol=1e-5)
    np.testing.assert_allclose(
        [optimizers.learning_rate_at(model.critic_optimizer, s) for s in (0, total // 2, total)],
        [1e-3, 1e-3 * (1e-3 + (1 - 1e-3) * 0.5), 1e-6], rtol=1e-5)


@pytest.mark.parametrize("n, b", [(10, 4), (12, 4), (3, 4), (50000, 128)])
def test_steps_per_epoch_is_what_fit_runs_per_epoch(n, b):
    ds = tf.data.Dataset.range(n)
    for drop in (False, True):
        batches = int(ds.batch(b, drop_remainder=drop).cardinality())
        assert optimizers.steps_per_epoch(n, b, drop) == max(batches, 1)
    assert optimizers.steps_per_epoch(n, b) == max(1, math.ceil(n / b))


def test_epoch_steps_prefers_steps_per_epoch():
    assert optimizers.epoch_steps({"steps_per_epoch": 7, "train_examples": 100}) == 7
    # The training split drops its last partial batch by default.
    assert optimizers.epoch_steps({"train_examples": 100, "batch_size": 32}) == 3
    assert optimizers.epoch_steps({"train_examples": 100, "batch_size": 32},
                                  drop_remainder=False) == 4
    assert optimizers.epoch_steps({"batch_size": 32}) is None


def test_plateau_keeps_a_constant_rate_and_unknown_names_raise():
    opt = optimizers.make_optimizer({"schedule": "plateau", "learning_rate": 0.5,
                                     "steps_per_epoch": 3, "epochs": 2})
    assert float(opt.learning_rate) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        optimizers.make_optimizer({"optimizer": "rmsprop"})
    with pytest.raises(ValueError, match="Unknown schedule"):
        optimizers.make_optimizer({"schedule": "linear"})


def test_compile_model_falls_back_to_the_factory():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    optimizers.compile_model(model, {"optimizer": "sgd", "learning_rate": 0.2, "momentum": 0.5})
    assert type(model.optimizer) is keras.optimizers.SGD
    assert float(model.optimizer.learning_rate) == pytest.approx(0.2)
    assert model.optimizer.momentum == 0.5


def _adam_trajectory(cls, grads="dense", **kwargs):
    """Variables after 30 steps of `cls` on fixed gradients (a cosine schedule,
    one dense and one embedding-style sparse variable)."""
    rng = np.random.RandomState(0)
    dense = keras.Variable(rng.randn(3, 4).astype("float32"))
    table = keras.Variable(rng.randn(6, 2).astype("float32"))
    opt = cls(keras.optimizers.schedules.CosineDecay(1e-2, 100), **kwargs)
    opt.build([dense, table])

    @tf.function
    def step(i):
        x = tf.cast(i + 1, tf.float32)
        g = [tf.sin(dense * x) + 0.1 * x, tf.cos(table * x)]
        if grads == "sparse":
            g[1] = tf.IndexedSlices(tf.gather(g[1], [1, 4]), tf.constant([1, 4]), tf.shape(g[1]))
        opt.apply_gradients(zip(g, [dense, table]))

    for i in range(30):
        step(tf.constant(i))
    return [dense.numpy(), table.numpy()], int(opt.iterations.numpy())


@pytest.mark.parametrize("fused, plain, kwargs", [
    (FusedAdam, keras.optimizers.Adam, {}),
    (FusedAdam, keras.optimizers.Adam, {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3}),
    (FusedAdamW, keras.optimizers.AdamW, {"weight_decay": 0.1}),
    (FusedAdam, keras.optimizers.Adam, {"amsgrad": True}),
])
@pytest.mark.parametrize("grads", ["dense", "sparse"])
def test_fused_adam_follows_keras_adam(fused, plain, kwargs, grads):
    (got, steps), (want, _) = (_adam_trajectory(c, grads, **kwargs) for c in (fused, plain))
    assert steps == 30
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6)
    # The trajectories moved (a test that a no-op update would pass is no test).
    rng = np.random.RandomState(0)
    assert np.abs(got[0] - rng.randn(3, 4)).max() > 0.05


def test_fused_adam_round_trips_through_a_keras_file(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=FusedAdamW(0.01, weight_decay=0.02), loss="mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert type(again.optimizer) is FusedAdamW and again.optimizer.weight_decay == 0.02
    assert int(again.optimizer.iterations) == 1
