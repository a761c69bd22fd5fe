"""OrdinalLocalizer: rollout, losses, stages, serialisation, replicas."""

import os
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse import registry
from keras_glimpse.models import ordinal as ordinal_module
from keras_glimpse.models.ordinal import OrdinalLocalizer
from keras_glimpse.objectives import box_dynamics

# Tiny model: 44x44 images (backbone 44 -> 20 -> 9 -> 7 -> 5), small heads.
TINY = dict(image_shape=(44, 44, 1), num_steps=3, hidden_units=4, embedding_dim=8,
            fc_units=16, pooling_size=2, min_side=12, seed=0)


def tiny(**kw):
    return OrdinalLocalizer(**{**TINY, **kw})


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 44, 44, 1)).astype("float32")
    corner = rng.integers(0, 17, size=(n, 2))
    boxes = np.concatenate([corner, corner + 27], axis=1).astype("float32")
    return x, boxes


def test_rollout_shapes_and_start_box():
    model = tiny(stage="joint")
    x, _ = batch()
    out = model.rollout(tf.constant(x), mode="sample")
    assert out["predictions"].shape == (4, 4) and out["boxes"].shape == (4, 4, 4)
    np.testing.assert_array_equal(out["boxes"][:, 0], [[0, 0, 43, 43]] * 4)
    np.testing.assert_array_equal(out["predictions"], out["boxes"][:, -1])
    b = out["boxes"].numpy()
    assert (b >= 0).all() and (b <= 43).all()
    assert model(x).shape == (4, 4)


def test_agent_loss_is_the_reference_sum():
    model = tiny(stage="joint", entropy_weight=5.0, gamma=0.5)
    d = tf.constant([[10.0, 8.0, 9.0], [10.0, 7.0, 7.0]])  # rewards [2,-1], [3,0]
    logp = tf.constant([[-1.0, -2.0], [-0.5, -1.0]])
    ent = tf.constant([[1.0, 2.0], [0.5, 0.5]])
    loss, rewards = model._agent_loss(
        {"distances": d, "log_probs": logp, "entropies": ent}, tf.zeros((2, 44, 44, 1)))
    np.testing.assert_allclose(rewards, [[2.0, -1.0], [3.0, 0.0]])
    # returns (gamma 0.5): [1.5, -1], [3, 0]; baseline per step [2.25, -0.5];
    # advantages [-0.75, -0.5], [0.75, 0.5].
    q = (-np.array([[-1.0, -2.0], [-0.5, -1.0]]) * np.array([[-0.75, -0.5], [0.75, 0.5]])).sum()
    expected = q - 5.0 * (1.0 + 2.0 + 0.5 + 0.5)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    mean_model = tiny(stage="joint", entropy_weight=5.0, gamma=0.5, loss_reduction="mean")
    loss, _ = mean_model._agent_loss(
        {"distances": d, "log_probs": logp, "entropies": ent}, tf.zeros((2, 44, 44, 1)))
    np.testing.assert_allclose(float(loss), expected / 2, rtol=1e-6)


def test_agent_loss_does_not_reach_the_embedding():
    model = tiny(stage="joint")
    x, gt = batch()
    with tf.GradientTape(persistent=True) as tape:
        fmap = model.embedding.feature_map(x)
        e_gt = model._embed_one(fmap, gt, training=True)
        ep = model._episode(tf.stop_gradient(fmap), "sample", True,
                            anchor=tf.stop_gradient(e_gt))
        loss, _ = model._agent_loss(ep, x)
    grads = tape.gradient(loss, model.embedding_variables)
    assert all(g is None for g in grads)
    agent_grads = tape.gradient(loss, model.agent_variables)
    assert all(g is not None for g in agent_grads)


def test_pair_indices_are_distinct_and_in_range():
    model = tiny(stage="joint", num_steps=4)
    idx = model._pair_indices(tf.constant(2000)).numpy()
    assert (idx[:, 0] != idx[:, 1]).all()
    assert idx.min() == 0 and idx.max() == 4
    # every ordered pair of the 5 indices appears
    assert len({tuple(r) for r in idx.tolist()}) == 20


@pytest.mark.parametrize("stage", ["pretrain", "joint"])
def test_fit_evaluate_and_metrics(stage):
    model = tiny(stage=stage, num_steps=2)
    model.compile()
    x, gt = batch(8)
    ds = tf.data.Dataset.from_tensor_slices((x, gt)).batch(4)
    before = [w.copy() for w in model.get_weights()]
    agent_before = [v.numpy().copy() for v in model.agent_variables]
    hist = model.fit(ds, epochs=1, verbose=0).history
    if stage == "pretrain":  # pretraining leaves the agent alone
        for a, v in zip(agent_before, model.agent_variables):
            np.testing.assert_array_equal(a, v.numpy())
    assert "loss" in hist and "ord_acc_inst" in hist
    if stage == "joint":
        assert {"agent_loss", "reward", "loc_acc", "final_iou"} <= set(hist)
    changed = [not np.allclose(a, b) for a, b in zip(before, model.get_weights())]
    assert any(changed)
    logs = model.evaluate(ds, return_dict=True, verbose=0)
    assert np.isfinite(logs["loss"])
    res = model.evaluate_localization(ds, mode="greedy" if stage == "joint" else "sample")
    assert res["count"] == 8 and 0.0 <= res["accuracy"] <= 100.0
    with pytest.raises(ValueError, match="mode='best'"):
        model.evaluate_localization(ds, mode="best")


def _fake_sampler(gt, seed=None, **kwargs):
    """Deterministic pair per example: a close box and a far box."""
    near = gt + tf.constant([1.0, 1.0, 1.0, 1.0])
    far = tf.clip_by_value(gt + tf.constant([9.0, 6.0, 9.0, 6.0]), 0.0, 43.0)
    boxes = tf.stack([far, near], axis=1)
    ious = box_dynamics.box_iou(boxes, gt[:, None])
    return boxes, ious


NUM_STEPS_REPLICA = int(os.environ.get("ORDINAL_TEST_STEPS", 1))


@pytest.mark.parametrize("stage", ["pretrain", "joint"])
def test_replica_equivalence(stage):
    # Dropout masks depend on how the batch is split, so dropout is 0 here.
    x, gt = batch(4, seed=1)

    def build():
        model = tiny(stage=stage, dropout=0.0, margin=1.0, num_steps=NUM_STEPS_REPLICA)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      agent_optimizer=keras.optimizers.SGD(0.05))
        return model

    # The helper makes keras.random.uniform constant, which would make both
    # pretraining boxes identical (zero triplet gradient): use a fixed pair.
    with mock.patch.object(ordinal_module.triplet, "sample_ordinal_boxes", _fake_sampler):
        single, mirrored = helpers.assert_replica_equivalence(build, x, gt)
    if stage == "joint":
        init = build()
        for v0, v1 in zip(init.agent_variables, single.agent_variables):
            if not np.allclose(v0.numpy(), v1.numpy()):
                break
        else:
            raise AssertionError("the agent did not move")


def test_config_keras_and_export_roundtrips(tmp_path):
    model = tiny(stage="joint")
    helpers.assert_config_roundtrip(model)
    x, _ = batch(2)
    helpers.assert_keras_roundtrip(model, x)
    served, sampled = helpers.assert_export_roundtrip(model, x, num_samples=3)
    assert sampled["boxes"].shape == (3, 2, 4, 4)
    np.testing.assert_allclose(sampled["predictions"], sampled["boxes"][0, :, -1])


def test_pretrained_loading(tmp_path):
    from keras_glimpse import stages

    pre = tiny(stage="pretrain", seed=5)
    path = str(tmp_path / "pre.keras")
    pre.save(path)
    joint = tiny(stage="joint")
    assert stages.init_from(joint, path) == ["embedding"]
    for a, b in zip(pre.embedding.get_weights(), joint.embedding.get_weights()):
        np.testing.assert_array_equal(a, b)
    # a model_dir of apps.train
    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    pre.save(str(ckpt / "best.keras"))
    joint = tiny(stage="joint")
    stages.init_from(joint, tmp_path / "run")
    np.testing.assert_array_equal(joint.embedding.get_weights()[0], pre.embedding.get_weights()[0])
    # the .keras archive of the joint model reloads without the stage-1 file
    joint.save(str(tmp_path / "joint.keras"))
    os.remove(path)
    keras.saving.load_model(str(tmp_path / "joint.keras"), compile=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        stages.init_from(tiny(), path)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save(str(tmp_path / "other.keras"))
    with pytest.raises(ValueError, match="not a OrdinalLocalizer"):
        stages.init_from(tiny(), str(tmp_path / "other.keras"))
    with pytest.raises(ValueError, match="part 'embedding' .*does not match"):
        stages.init_from(tiny(fc_units=32), str(ckpt / "best.keras"))


def test_validation():
    with pytest.raises(ValueError, match="stage='bogus'"):
        tiny(stage="bogus")
    with pytest.raises(ValueError, match="loss_reduction='avg'"):
        tiny(loss_reduction="avg")
    with pytest.raises(ValueError, match="square"):
        tiny(image_shape=(44, 40, 1))
    with pytest.raises(ValueError, match="num_steps=0"):
        tiny(num_steps=0)


def test_registry_preset():
    preset = registry.get_preset("ordinal_cluttered84")
    stages = preset["training"]["stages"]
    assert stages["pretrain"]["batch_size"] == 192
    assert stages["pretrain"]["learning_rate"] == pytest.approx(0.0019125313967198946)
    assert stages["joint"]["batch_size"] == 512 and stages["joint"]["agent_learning_rate"] == 1e-3
    assert preset["model"]["entropy_weight"] == 5.0 and preset["paper_value"] == 88.0
    model = registry.build("ordinal_cluttered84", compile=False, stage="pretrain")
    assert model.count_params() == 3_898_148 + 512 * 48 + 48 * 48 + 48 + 48 * 10 + 10
    training = dict(preset["training"])
    training.update(stages["joint"])
    model.compile_from_preset(training)
    assert float(model.agent_optimizer.learning_rate) == pytest.approx(1e-3)
    # per-epoch schedules become step boundaries (5358 // 512 = 10 steps/epoch)
    schedule = model.optimizer._learning_rate
    assert float(schedule(10 * 30 - 1)) == pytest.approx(1e-3)
    assert float(schedule(10 * 30 + 1)) == pytest.approx(1e-4)


def test_evaluation_reports_the_random_and_unmoved_box_baselines():
    model = tiny(stage="joint", num_steps=2)
    model.compile()
    x, gt = batch(8)
    # The "random" agent made deterministic: it always shrinks toward the top left.
    def always_shrink(b):
        return {"action": tf.zeros(tf.stack([b]), tf.int32), "log_prob": tf.zeros([b]),
                "entropy": tf.zeros([b])}
    start = box_dynamics.initial_roi(8, 44).numpy().astype("float32")
    final = box_dynamics.initial_state(8, 44)
    for _ in range(2):
        final = box_dynamics.apply_box_action(final, tf.zeros([8], tf.int32), 44, 12, 0.2)
    final = tf.cast(final, tf.float32).numpy()
    # Ground truths: the start box (3 images), the random agent's final box (2), elsewhere (3).
    gt[:3], gt[3:5], gt[5:] = start[:3], final[3:5], [30.0, 30.0, 43.0, 43.0]
    hit = lambda boxes: box_dynamics.box_iou(tf.constant(boxes), tf.constant(gt)).numpy() >= 0.5
    with mock.patch.object(model, "_random_head", always_shrink):
        logs = {k: float(v) for k, v in
                model.test_step((tf.constant(x), tf.constant(gt))).items()}
    assert logs["loc_acc_initial"] == pytest.approx(np.mean(hit(start)))
    assert logs["loc_acc_random"] == pytest.approx(np.mean(hit(final)))
    assert logs["loc_acc_initial"] != logs["loc_acc_random"]
    # Training logs carry none of the evaluation-only metrics.
    model.reset_metrics()
    train = model.train_step((tf.constant(x), tf.constant(gt)))
    assert not {"loc_acc_greedy", "loc_acc_random", "loc_acc_initial"} & set(train)
