import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
import keras_glimpse
from keras_glimpse.models.patchdrop import (PatchDrop, distinct_policies, fixed_mask_like,
                                            patchdrop_reward, random_mask_like)
from keras_glimpse.objectives.reinforce import self_critical_advantage

# A tiny but CIFAR-shaped configuration: same code paths, fast on 2 cores.
TINY = dict(hr_backbone="cifar_resnet8", policy_backbone="cifar_resnet8",
            cifar_widths=(4, 8, 8))


def _batch(b=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(b, 32, 32, 3)).astype("float32"),
            (np.arange(b) % 10).astype("int32"))


def _tiny(stage="finetune", **kw):
    return keras_glimpse.build("patchdrop_r32_c10", stage=stage, **{**TINY, **kw})


# ------------------------------------------------------------------ preset
def test_preset_builds_predicts_and_exports():
    model = keras_glimpse.build("patchdrop_r32_c10")
    assert isinstance(model, PatchDrop)
    assert model.hr_backbone == "cifar_resnet32" and model.grid_size == 4
    # The genuine ResNet-32 HR classifier (0.46 M parameters).
    assert 0.45e6 < model.hr_net.count_params() < 0.47e6
    x, _ = _batch(2)
    assert model(x).shape == (2, 10)
    out = model.rollout(tf.constant(x), "greedy", False)
    assert out["patch_mask"].shape == (2, 4, 4)
    served, sampled = helpers.assert_export_roundtrip(model, x, num_samples=2)
    assert set(served) == {"predictions", "patch_mask"}
    assert sampled["patch_mask"].shape == (2, 2, 4, 4)
    mask = np.asarray(served["patch_mask"])
    assert set(np.unique(mask)) <= {0.0, 1.0}


def test_all_presets_are_registered():
    names = keras_glimpse.list_models()
    for name in ("patchdrop_r32_c10", "patchdrop_r32_c100", "patchdrop_r34_fmow",
                 "patchdrop_r50_imagenet", "patchdrop_digits64"):
        assert name in names
        preset = keras_glimpse.get_preset(name)
        assert set(preset["training"]["stages"]) == {
            "classifier", "pretrain", "finetune", "finetune2stream"}
        assert preset["training"]["stages"]["pretrain"]["learning_rate"] == 1e-4 or \
            name == "patchdrop_digits64"
    c10 = keras_glimpse.get_preset("patchdrop_r32_c10")
    assert c10["training"]["stages"]["pretrain"]["batch_size"] == 1024
    assert c10["model"]["finetune_penalty"] == -10.0
    assert keras_glimpse.get_preset("patchdrop_r34_fmow")["model"]["finetune_penalty"] == -20.0


# ------------------------------------------------------------------ reward
def test_reward_and_self_critical_advantage_hand_checked():
    actions = np.zeros((3, 16), "float32")
    actions[0, :8] = 1  # u = 0.5  -> 1 - 0.25
    actions[1, :] = 1   # wrong    -> penalty
    actions[2, :4] = 1  # u = 0.25 -> 1 - 0.0625
    correct = np.array([True, False, True])
    r = patchdrop_reward(correct, actions, -0.5).numpy()
    np.testing.assert_allclose(r, [0.75, -0.5, 0.9375])
    greedy = np.ones((3, 16), "float32")  # all kept: 1 - 1 = 0 when correct
    rg = patchdrop_reward(np.array([True, True, False]), greedy, -10.0).numpy()
    np.testing.assert_allclose(rg, [0.0, 0.0, -10.0])
    adv = self_critical_advantage(r, rg).numpy()
    np.testing.assert_allclose(adv, [0.75, -0.5, 10.9375])


def test_distinct_policies():
    a = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 0], [0, 1, 0]], "float32")
    assert float(distinct_policies(a)) == 3.0
    helpers.assert_jit_compiles(distinct_policies, tf.constant(a))


def test_random_mask_keeps_each_rows_count_uniformly():
    a = np.zeros((4000, 6), "float32")
    a[:, :2] = 1.0  # every row keeps patches 0 and 1; the rows' counts: 2
    a[::2, 2] = 1.0  # every other row keeps 3
    m = random_mask_like(tf.constant(a), seed=0).numpy()
    np.testing.assert_array_equal(m.sum(-1), a.sum(-1))  # same budget per image
    assert set(np.unique(m)) <= {0.0, 1.0}
    # Uniform over positions: each patch kept 2.5/6 of the time (not where `a` keeps).
    np.testing.assert_allclose(m.mean(0), 2.5 / 6, atol=0.03)
    # Seeded: the same seed draws the same masks.
    np.testing.assert_array_equal(random_mask_like(tf.constant(a[:50]), seed=3),
                                  random_mask_like(tf.constant(a[:50]), seed=3))
    jitted = tf.function(lambda x: random_mask_like(x, seed=1),
                         jit_compile=True)(tf.constant(a[:8])).numpy()
    np.testing.assert_array_equal(jitted.sum(-1), a[:8].sum(-1))  # random: counts only
    with pytest.raises(ValueError, match="needs a `seed`"):
        random_mask_like(tf.constant(a[:8]), seed=None)


def test_fixed_mask_is_the_most_kept_patches_for_every_row():
    a = np.array([[1, 0, 1, 0], [1, 0, 0, 1], [1, 1, 1, 0], [0, 0, 1, 0]], "float32")
    # Frequencies 3/4, 1/4, 3/4, 1/4; mean count 2: patches 0 and 2 for every row.
    m = fixed_mask_like(tf.constant(a)).numpy()
    np.testing.assert_array_equal(m, np.tile([[1, 0, 1, 0]], (4, 1)))
    # Ties go to the lower index: every patch kept 1/4 of the time, mean count 1.
    b = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]], "float32")
    np.testing.assert_array_equal(fixed_mask_like(tf.constant(b)).numpy()[3], [1, 0, 0, 0])
    # The count is rounded: mean 1.25 -> 1 (patch 1, kept twice).
    c = np.array([[0, 1, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]], "float32")
    np.testing.assert_array_equal(fixed_mask_like(tf.constant(c)).numpy()[0], [0, 1, 0, 0])


def test_evaluation_reports_all_patches_random_and_fixed_mask_accuracy():
    """test_step's baselines are the HR classifier on those masks (same images)."""
    keras.utils.set_random_seed(0)
    x, _ = _batch(8)
    model = _tiny("finetune")
    xs = tf.constant(x)
    lr = model.low_resolution(xs)
    greedy = model.rollout(xs)["actions"]
    full = model._classify(xs, lr, tf.ones_like(greedy), training=False)
    fixed = model._classify(xs, lr, fixed_mask_like(greedy), training=False)
    # Labels: right for the all-patches classifier on the first 5 images only.
    y = np.argmax(full.numpy(), -1).astype("int32")
    y[5:] = (y[5:] + 1) % 10
    model.reset_metrics()
    logs = {k: float(v) for k, v in model.test_step((xs, tf.constant(y))).items()}
    assert logs["accuracy_all_patches"] == pytest.approx(5 / 8)
    assert logs["accuracy_fixed_mask"] == pytest.approx(
        np.mean(np.argmax(fixed.numpy(), -1) == y))
    assert 0.0 <= logs["accuracy_random_same_kept"] <= 1.0
    assert logs["kept_fraction"] == pytest.approx(logs["patches_kept"] / 16)
    # Training logs and the classifier stage carry none of them.
    assert "accuracy_all_patches" not in model.train_step((xs, tf.constant(y)))
    clf = _tiny("classifier")
    assert "accuracy_all_patches" not in clf.test_step((xs, tf.constant(y)))


def test_pretrain_loss_is_mean_over_patches_and_finetune_adds_ce():
    """The per-example losses of one step, recomputed by hand from the rollout."""
    x, y = _batch(4)
    with helpers.deterministic_sampling():
        for stage in ("pretrain", "finetune"):
            model = _tiny(stage)
            lr = model.low_resolution(tf.constant(x))
            out = model._policy(lr, "sample", training=False)
            a, g = out["action"].numpy(), out["greedy"].numpy()
            probs = np.clip(out["probs"].numpy(), 1e-7, 1 - 1e-7)
            logp = a * np.log(probs) + (1 - a) * np.log(1 - probs)
            zs = model._classify(tf.constant(x), lr, a, training=False).numpy()
            zg = model._classify(tf.constant(x), lr, g, training=False).numpy()
            pen = -0.5 if stage == "pretrain" else -10.0
            rs = np.where(zs.argmax(-1) == y, 1 - a.mean(-1) ** 2, pen)
            rg = np.where(zg.argmax(-1) == y, 1 - g.mean(-1) ** 2, pen)
            adv = rs - rg
            if stage == "pretrain":
                expected = np.mean(-logp * adv[:, None])  # over all B x 16 entries
            else:
                m = zs.max(-1)
                ce = m + np.log(np.exp(zs - m[:, None]).sum(-1)) - zs[np.arange(4), y]
                expected = np.mean(-(logp.sum(-1)) * adv + ce)
            # The hand computation ran BN in inference mode; freezing the
            # backbones makes train_step do the same (the head still trains).
            model.hr_net.trainable = False
            model.policy_net.trainable = False
            model.compile_from_preset({"optimizer": "adam", "learning_rate": 0.0})
            logs = model.train_step((tf.constant(x), tf.constant(y)))
            np.testing.assert_allclose(float(logs["loss"]), expected, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(float(logs["sample_reward"]), rs.mean(), atol=1e-6)


# ------------------------------------------------------------------ stages
_TRAINS = {
    "classifier": {"hr_classifier"},
    "pretrain": {"policy_backbone", "policy_head"},
    "finetune": {"hr_classifier", "policy_backbone", "policy_head"},
    "finetune2stream": {"hr_classifier", "policy_backbone", "policy_head"},
}


@pytest.mark.parametrize("stage", sorted(_TRAINS))
def test_one_training_step_per_stage(stage):
    keras.utils.set_random_seed(0)  # independent of the tests run before it in this worker
    x, _ = _batch(4)
    model = _tiny(stage)
    with helpers.deterministic_sampling():
        if stage == "classifier":
            y = np.arange(4, dtype="int32")
        else:
            # Label each image with the class its sampled mask predicts, so the
            # sampled reward is 1 - u^2 and the advantage is not zero.
            lr = model.low_resolution(tf.constant(x))
            sampled = model._policy(lr, "sample", training=True)["action"]
            logits = model._classify(tf.constant(x), lr, sampled, training=stage != "pretrain")
            y = np.argmax(logits.numpy(), -1).astype("int32")
        before = {w.path: w.numpy().copy() for w in model.weights}
        # One eager step (as fit runs it, minus the tracing time).
        logs = model.train_step((tf.constant(x), tf.constant(y)))
    logs = {k: float(v) for k, v in logs.items()}
    for key in ("loss", "accuracy", "patches_kept", "patches_kept_std", "reward",
                "distinct_policies"):
        assert np.isfinite(logs[key]), (key, logs)
    changed = {w.path.split("/")[0] for w in model.weights
               if not np.allclose(w.numpy(), before[w.path])}
    assert changed == _TRAINS[stage], changed  # frozen nets (and their BN stats) untouched
    if stage != "classifier":
        assert logs["sample_reward"] > 0  # every sampled prediction was right
    model.reset_metrics()
    metrics = {k: float(v) for k, v in model.test_step((tf.constant(x), tf.constant(y))).items()}
    assert 0 <= metrics["patches_kept"] <= 16


def test_lr_classifier_stage_trains_the_lr_net_on_the_strided_view():
    x, y = _batch(4)
    model = _tiny("classifier", resolution="lr")
    before = model.lr_net.get_weights()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert not np.allclose(before[0], model.lr_net.get_weights()[0])
    logits = model(x)
    np.testing.assert_allclose(logits, model.lr_net(x[:, ::4, ::4], training=False), atol=1e-5)
    assert float(tf.reduce_sum(model.rollout(tf.constant(x))["patch_mask"])) == 0.0


_SHARED = {}


@pytest.mark.parametrize("stage", sorted(_TRAINS))
def test_one_vs_two_replicas(stage, monkeypatch):
    # Synchronized BatchNorm makes batch statistics global, so a step on two
    # replicas equals a step on one device (DESIGN rule 2). 16x16 images keep
    # the (trace-bound) test fast; the step is the same code as at 32x32.
    if "strategy" not in _SHARED:  # one MirroredStrategy per process (collective keys)
        _SHARED["strategy"] = helpers.two_cpu_strategy()
    monkeypatch.setattr(helpers, "two_cpu_strategy", lambda: _SHARED["strategy"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 16, 16, 3)).astype("float32")

    def build():
        keras.utils.set_random_seed(1)  # the backbones' initializers are not seeded by `seed`
        model = PatchDrop(image_shape=(16, 16, 3), stage=stage, synchronized_bn=True, seed=1,
                          **{**TINY, "cifar_widths": (2, 4, 4)})
        # Plain SGD: Adam is scale invariant and would hide a doubled gradient.
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        return model

    if stage == "classifier":
        y = np.array([0, 1, 2, 3], "int32")
    else:
        # Label each image with the class its sampled mask predicts: the sampled
        # reward is then 1 - u^2, the greedy one differs, the advantage is not
        # zero and the policy gets a gradient.
        with helpers.deterministic_sampling():
            model = build()
            lr = model.low_resolution(tf.constant(x))
            sampled = model._policy(lr, "sample", training=True)["action"]
            logits = model._classify(tf.constant(x), lr, sampled, training=False)
        y = np.argmax(logits.numpy(), -1).astype("int32")
    single, _ = helpers.assert_replica_equivalence(build, x, y, atol=1e-4, rtol=1e-3,
                                                   trained="all", control=True)
    # Every trainable weight moved (checked above); they are exactly the stage's nets.
    assert {w.path.split("/")[0] for w in single.trainable_weights} == _TRAINS[stage]


# ------------------------------------------------------------------ loading
def test_stage_loading_by_init_from(tmp_path):
    from keras_glimpse import stages

    x, y = _batch(4)
    hr = _tiny("classifier")
    hr.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = str(tmp_path / "hr.keras")
    hr.save(path)
    pre = _tiny("pretrain")
    assert stages.init_from(pre, path) == ["hr_classifier", "lr_classifier"]
    for a, b in zip(pre.hr_net.get_weights(), hr.hr_net.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert "hr_classifier" not in pre.get_config()
    # .weights.h5 of a PatchDrop with the same networks also works.
    h5 = str(tmp_path / "hr.weights.h5")
    hr.save_weights(h5)
    ft = _tiny("finetune")
    stages.apply(ft, [f"hr_classifier={h5}", {"source": path, "parts": ["policy"]}])
    np.testing.assert_array_equal(ft.hr_net.get_weights()[0], hr.hr_net.get_weights()[0])
    # Reloading a checkpoint never needs the earlier stages' files.
    (tmp_path / "hr.keras").unlink()
    reloaded = helpers.assert_keras_roundtrip(pre, x)
    assert reloaded.stage == "pretrain"


# ------------------------------------------------------------------ misc
def test_curriculum_forces_undecided_patches():
    x, y = _batch(4)
    model = _tiny("pretrain", curriculum=True)
    model.set_curriculum_epoch(2)
    out = model._policy(model.low_resolution(tf.constant(x)), "sample", training=False)
    np.testing.assert_array_equal(out["action"].numpy()[:, 3:], 1.0)
    np.testing.assert_array_equal(out["greedy"].numpy()[:, 3:], 1.0)
    np.testing.assert_array_equal(out["log_prob_per_patch"].numpy()[:, 3:], 0.0)
    assert np.all(out["log_prob_per_patch"].numpy()[:, :3] < 0)
    model.begin_epoch(20, 30)
    assert int(model.curriculum_epoch.numpy()) == 20
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # fit's EpochHook sets epoch 0
    assert int(model.curriculum_epoch.numpy()) == 0


def test_greedy_rollout_jit_and_config_roundtrip():
    model = _tiny("finetune2stream")
    x, _ = _batch(2)
    helpers.assert_config_roundtrip(model)
    helpers.assert_jit_compiles(
        lambda t: model.rollout(t, "greedy", False)["predictions"], tf.constant(x))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="stage='warmup'"):
        PatchDrop(stage="warmup", **TINY)
    with pytest.raises(ValueError, match="grid_size=5"):
        PatchDrop(grid_size=5, **TINY)
    with pytest.raises(ValueError, match="resolution='mid'"):
        PatchDrop(resolution="mid", **TINY)
    with pytest.raises(ValueError, match="finetune_penalty=1"):
        PatchDrop(finetune_penalty=1, **TINY)
    with pytest.raises(ValueError, match="Unknown backbone 'vgg16'"):
        PatchDrop(**{**TINY, "hr_backbone": "vgg16"})
