import os
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse import distribute
from keras_glimpse.models.recap import RECAP, add_terminal_reward, entropy_weight, step_rewards

@pytest.fixture(scope="module", autouse=True)
def _one_mirrored_strategy():
    # Two MirroredStrategy objects in one process reuse collective instance
    # keys, and the second fit then fails with a collective shape mismatch;
    # share one strategy across this module's replica tests.
    strategy = helpers.two_cpu_strategy()
    with mock.patch.object(helpers, "two_cpu_strategy", lambda: strategy):
        yield


# A tiny configuration: 16x16 images, 4x4 patches, stride 4 -> a 4x4 grid.
TINY = dict(image_size=16, patch_size=4, stride=4, num_steps=3, embed_dim=8, gate_units=8,
            policy_units=8, value_units=8, attention_dropout=0.0, seed=3)


def _data(b=4, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((b, size, size, 1)).astype("float32"),
            rng.integers(0, 10, size=(b,)).astype("int32"))


def _model(**kwargs):
    args = dict(TINY)
    args.update(kwargs)
    return RECAP(**args)


def _compiled(**kwargs):
    model = _model(**kwargs)
    model.compile()
    return model


# ------------------------------------------------------------------ geometry
@pytest.mark.parametrize("size, p, s, n", [(64, 8, 4, 15), (28, 3, 3, 9), (16, 4, 4, 4)])
def test_grid_size_and_centre_start(size, p, s, n):
    model = RECAP(image_size=size, patch_size=p, stride=s, num_steps=2, embed_dim=8,
                  gate_units=8, policy_units=8, value_units=8)
    assert model.grid_size == n and model.num_actions == n * n
    assert model.start_cell == (n // 2) * n + n // 2
    out = model.rollout(np.zeros((2, size, size, 1), "float32"), mode="greedy")
    centre = (p // 2 + (n // 2) * s) * 2.0 / (size - 1) - 1.0
    np.testing.assert_allclose(np.asarray(out["locations"])[:, 0], centre, atol=1e-6)


@pytest.mark.parametrize("policy, mode", [("learned", "sample"), ("learned", "greedy"),
                                          ("random", "greedy")])
def test_masked_policy_never_revisits(policy, mode):
    # 15 steps on a 16-cell grid: the start cell plus 15 actions cover every cell once.
    model = _model(num_steps=15, policy=policy)
    x, _ = _data(b=6)
    out = model.rollout(x, mode=mode)
    actions = np.asarray(out["actions"])
    cells = np.concatenate([np.full((6, 1), model.start_cell), actions], axis=1)
    for row in cells:
        assert sorted(row.tolist()) == list(range(16))
    probs = np.asarray(out["action_probs"])
    assert probs.shape == (6, 15, 16)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    for t in range(15):  # the probability of already-visited cells is zero
        visited = cells[:, : t + 1]
        assert np.all(np.take_along_axis(probs[:, t], visited, axis=1) < 1e-6)


def test_random_policy_is_stochastic_and_uniform_over_unvisited():
    model = _model(policy="random", num_steps=4)
    x, _ = _data(b=8)
    a = np.asarray(model.rollout(x, mode="greedy")["actions"])
    b = np.asarray(model.rollout(x, mode="greedy")["actions"])
    assert not np.array_equal(a, b)
    probs = np.asarray(model.rollout(x)["action_probs"])
    np.testing.assert_allclose(probs[:, 0][probs[:, 0] > 0], 1.0 / 15, atol=1e-6)


def test_pretrain_stage_reads_all_patches():
    model = _model(stage="pretrain")
    x, _ = _data(b=2)
    out = model.rollout(x)
    assert out["predictions"].shape == (2, 10)
    assert out["locations"].shape == (2, 16, 2)
    np.testing.assert_array_equal(np.asarray(out["actions"])[0], np.arange(16))
    np.testing.assert_allclose(np.asarray(out["locations"])[0],
                               np.asarray(model.glimpse.cell_locations()))


# ------------------------------------------------------------------ rewards
def test_step_rewards_reward_a_falling_cross_entropy():
    ce = tf.constant([[2.0, 1.5, 1.45, 1.6], [1.0, 1.0, 1.2, 0.95]])
    expected = np.array([[0.0, 0.1, 0.05, -0.1], [0.0, 0.0, -0.1, 0.1]])
    np.testing.assert_allclose(np.asarray(step_rewards(ce)), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(step_rewards(ce, original_sign=True)),
                               -expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(step_rewards(ce, clip=0.02))[0],
                               [0.0, 0.02, 0.02, -0.02], atol=1e-6)


def test_terminal_reward_added_to_last_step():
    r = tf.constant([[0.0, 0.1, 0.05], [0.0, -0.1, 0.02]])
    got = np.asarray(add_terminal_reward(r, tf.constant([True, False])))
    np.testing.assert_allclose(got, [[0.0, 0.1, 2.05], [0.0, -0.1, -1.98]], atol=1e-6)


def test_agent_losses_use_the_reward_definition():
    """Rewards inside the training loss, recomputed by hand from the episode's
    per-prefix logits: `r_t = clip(CE_{t-1} - CE_t)` (a falling CE is
    rewarded) and, with `original_reward_sign=True`, the opposite sign."""
    model = _model()
    x, y = _data()
    with helpers.deterministic_sampling():  # both settings play the same episode
        out = model._agent_rollout(tf.constant(x), "sample", training=False, with_rewards=True)
        logits = np.asarray(out["step_logits"], "float64")  # (B, T, K)
        z = logits - logits.max(-1, keepdims=True)
        log_softmax = z - np.log(np.exp(z).sum(-1, keepdims=True))
        ce = -np.take_along_axis(log_softmax, y[:, None, None], axis=-1)[..., 0]  # (B, T)
        terminal = np.where(logits[:, -1].argmax(-1) == y, 2.0, -2.0)
        got = {}
        for sign in (False, True):
            model.original_reward_sign = sign
            losses = model.agent_losses(tf.constant(x), tf.constant(y), training=False)
            got[sign] = losses
            fall = ce[:, :-1] - ce[:, 1:]  # CE_{t-1} - CE_t
            steps = np.clip(-fall if sign else fall, -0.1, 0.1)
            expected = np.concatenate([np.zeros((4, 1)), steps], axis=1)
            expected[:, -1] += terminal
            np.testing.assert_allclose(losses["rewards"], expected, atol=1e-5, err_msg=sign)
            g = 0.98
            returns = np.stack([expected[:, 0] + g * expected[:, 1] + g * g * expected[:, 2],
                                expected[:, 1] + g * expected[:, 2], expected[:, 2]], axis=1)
            np.testing.assert_allclose(losses["returns"], returns, atol=1e-5)
            adv = np.asarray(losses["advantages"])
            np.testing.assert_allclose([adv.mean(), adv.std(ddof=1)], [0.0, 1.0], atol=1e-4)
    new, original = (np.asarray(got[s]["rewards"]) for s in (False, True))
    # The step rewards (t = 1, 2: before the terminal bonus) flip sign between
    # the settings, and are not all zero, so the setting is really read.
    assert np.abs(new[:, 1:] - original[:, 1:]).max() > 1e-3
    np.testing.assert_allclose(new[:, 1], -original[:, 1], atol=1e-6)
    np.testing.assert_allclose(new[:, 2] - terminal, -(original[:, 2] - terminal), atol=1e-5)


# ------------------------------------------------------------ entropy schedule
def test_entropy_weight_schedule_values():
    got = [float(entropy_weight(e, 100)) for e in (0, 25, 50, 66, 67, 99)]
    np.testing.assert_allclose(got, [0.03, 0.0225, 0.015, 0.0102, 0.01, 0.01], atol=1e-6)


def test_fit_decays_the_entropy_weight_over_its_epochs():
    model = _compiled()
    x, y = _data()
    hist = model.fit(x, y, batch_size=4, epochs=3, verbose=0).history
    np.testing.assert_allclose(hist["entropy_weight"], [0.03, 0.02, 0.01], atol=1e-6)
    assert float(model.epoch.numpy()) == 2.0


# ------------------------------------------------------------ training steps
def _sgd(**kwargs):
    # Plain SGD and no effective clipping: Adam (scale invariant) and a clipped
    # norm would both hide a gradient N times too large. Clipping across
    # replicas has its own test below.
    def build():
        model = _model(**kwargs)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      policy_optimizer=keras.optimizers.SGD(0.1),
                      value_optimizer=keras.optimizers.SGD(0.1),
                      policy_clipnorm=1e6, value_clipnorm=1e6)
        return model
    return build


# Weights with a structurally zero gradient: a bias added to every attention
# key (or to every gate score) shifts all softmax logits by one constant.
_SHIFT_INVARIANT = ("summarizer/attention/key/bias", "gate/score_dense/bias")


def _trained(*frozen):
    """`model -> variables` that must move: all but `frozen` sub-layers."""
    def variables(m):
        skip = tuple(f"{m.name}/{f}/" for f in frozen)
        return [v for v in m.trainable_weights if not v.path.startswith(skip)
                and not v.path.endswith(_SHIFT_INVARIANT)]
    return variables


def test_replica_equivalence_agent_stage():
    x, y = _data(b=4)
    # The gate is frozen in the agent stage (no optimizer owns it); every other
    # weight must move, and a per-replica loss mean must be caught.
    helpers.assert_replica_equivalence(_sgd(encoder_norm="layer"), x, y,
                                       trained=_trained("gate"), control=True)


def test_replica_equivalence_pretrain_stage():
    x, y = _data(b=4)
    # Pretraining trains encoder, summarizer, gate and classifier only.
    helpers.assert_replica_equivalence(
        _sgd(stage="pretrain"), x, y, trained=_trained("policy_head", "memory", "value_head"),
        control=True)


def test_clipping_across_replicas_equals_clipping_the_summed_gradient():
    strategy = helpers.two_cpu_strategy()
    grads = [tf.constant([3.0, 4.0]), tf.constant([12.0])]  # per replica; sum has norm 26

    def replica_fn():
        ctx = tf.distribute.get_replica_context()
        scale = tf.cast(ctx.replica_id_in_sync_group + 1, tf.float32)  # 1x and 2x
        clipped, norm = distribute.clip_by_global_norm_across_replicas(
            [g * scale for g in grads], 1.0)
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, clipped), norm

    summed, norm = strategy.run(tf.function(replica_fn))
    summed = [strategy.experimental_local_results(s)[0] for s in summed]
    np.testing.assert_allclose(strategy.experimental_local_results(norm)[0], 3 * 13.0)
    np.testing.assert_allclose(np.concatenate([np.asarray(s) for s in summed]),
                               np.array([9.0, 12.0, 36.0]) / 39.0, atol=1e-6)


def _group_weights(model):
    return {
        "classification": [v.numpy().copy() for v in model.classification_variables()],
        "gate": [v.numpy().copy() for v in model.gate.trainable_variables],
        "policy": [v.numpy().copy() for v in model.policy_variables()],
        "memory": [v.numpy().copy() for v in model.memory_variables()],
        "value": [v.numpy().copy() for v in model.value_variables()],
    }


def _changed(before, after):
    return {k: any(not np.allclose(a, b) for a, b in zip(before[k], after[k])) for k in before}


def test_gradient_routing():
    """CE moves only encoder/summarizer/classifier; RL only policy + memory;
    the gate is frozen in the agent stage."""
    x, y = _data()
    # Only the classification optimizer can move weights.
    model = _model()
    model.compile(policy_optimizer=keras.optimizers.Adam(0.0),
                  value_optimizer=keras.optimizers.Adam(0.0))
    before = _group_weights(model)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    changed = _changed(before, _group_weights(model))
    assert changed == {"classification": True, "gate": False, "policy": False,
                       "memory": False, "value": False}, changed
    # Only the RL and value optimizers can move weights.
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(0.0))
    before = _group_weights(model)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    changed = _changed(before, _group_weights(model))
    assert changed == {"classification": False, "gate": False, "policy": True,
                       "memory": True, "value": True}, changed


def test_loss_gradients_reach_only_their_groups():
    model = _model()
    x, y = _data()
    with tf.GradientTape(persistent=True) as tape:
        losses = model.agent_losses(tf.constant(x), tf.constant(y), training=True)
    rl_side = model.policy_variables() + model.memory_variables() + model.value_variables()
    assert all(g is None for g in tape.gradient(losses["ce_loss"], rl_side))
    value_grads = tape.gradient(losses["value_loss"], model.classification_variables()
                                + model.policy_variables() + model.memory_variables())
    assert all(g is None for g in value_grads)
    policy_grads = tape.gradient(losses["policy_loss"], model.policy_variables())
    assert all(g is not None for g in policy_grads)
    # The memory reads the embeddings under stop_gradient: the policy's loss,
    # which trains the memory, never reaches the encoder (the classifier's).
    assert all(g is None for g in tape.gradient(losses["policy_loss"],
                                                model.classification_variables()))
    assert all(g is not None for g in tape.gradient(losses["policy_loss"],
                                                    model.memory_variables()))


# ------------------------------------------------------------ persistence
def test_config_keras_and_export_roundtrips():
    model = _model()
    x, _ = _data(b=2)
    clone = helpers.assert_config_roundtrip(model)
    assert clone.get_config()["stage"] == "agent"
    helpers.assert_keras_roundtrip(model, x)
    helpers.assert_export_roundtrip(model, x, num_samples=2)


def test_pretrained_weights_load_into_the_agent(tmp_path):
    from keras_glimpse import stages

    pre = _model(stage="pretrain")
    pre.build_from_image_shape()
    path = os.path.join(tmp_path, "stage1.keras")
    pre.save(path)
    agent = _model()
    assert stages.init_from(agent, path) == ["classifier"]
    for name in ("encoder", "summarizer", "gate", "classifier"):
        helpers.assert_allclose_tree(getattr(agent, name).get_weights(),
                                     getattr(pre, name).get_weights())
    # .keras round trip of the agent does not need the pretrained file any more.
    os.remove(path)
    helpers.assert_keras_roundtrip(agent, _data(b=2)[0])
    # .weights.h5 from the pretrain stage works too.
    h5 = os.path.join(tmp_path, "stage1.weights.h5")
    pre.save_weights(h5)
    agent2 = _model()
    stages.init_from(agent2, h5)
    helpers.assert_allclose_tree(agent2.encoder.get_weights(), pre.encoder.get_weights())


def test_pretrained_errors(tmp_path):
    from keras_glimpse import stages

    with pytest.raises(FileNotFoundError, match="does not exist"):
        stages.init_from(_model(), os.path.join(tmp_path, "missing.keras"))
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = os.path.join(tmp_path, "other.keras")
    other.save(path)
    with pytest.raises(ValueError, match="not a RECAP"):
        stages.init_from(_model(), path)
    wide = _model(stage="pretrain", embed_dim=16)
    wide.build_from_image_shape()
    path = os.path.join(tmp_path, "wide.keras")
    wide.save(path)
    with pytest.raises(ValueError, match="part 'classifier' .*does not match"):
        stages.init_from(_model(), path)


# ------------------------------------------------------------ misc
@pytest.mark.parametrize("kwargs", [{"stage": "train"}, {"policy": "greedy"},
                                    {"patch_size": 32}, {"num_steps": 17}, {"gamma": 1.5},
                                    {"embed_dim": 0}, {"label_smoothing": 1.0}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        _model(**kwargs)


def test_invalid_mode():
    with pytest.raises(ValueError, match="mode"):
        _model().rollout(_data()[0], mode="mean")


def test_registry_presets():
    import keras_glimpse.registry as registry

    names = registry.list_models()
    assert "recap_cluttered64" in names and "recap_mnist28" in names
    for name, n, steps in (("recap_cluttered64", 15, 6), ("recap_mnist28", 9, 8)):
        preset = registry.get_preset(name)
        assert "paper_value" not in preset and "no accuracy" in preset["paper"]
        assert set(preset["training"]["stages"]) == {"pretrain", "agent"}
        _, builder, config = registry.model_config(name)
        model = builder(**config)
        assert model.grid_size == n and model.num_steps == steps
    preset, builder, config = registry.model_config("recap_mnist28")
    pre = builder(**dict(config, stage="pretrain"))
    pre.compile_from_preset(preset["training"])
    schedule = pre.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    # floor(55000 / 32) = 1718 steps per epoch: the training split drops its partial batch.
    assert schedule.decay_steps == 10 * 1718 and schedule.initial_learning_rate == 1e-3
    agent = builder(**config)
    agent.compile_from_preset(preset["training"])
    np.testing.assert_allclose([float(agent.optimizer.learning_rate),
                                float(agent.policy_optimizer.learning_rate),
                                float(agent.value_optimizer.learning_rate)],
                               [1e-4, 3e-4, 1e-3], rtol=1e-6)
    assert agent.policy_clipnorm == 1.0 and agent.value_clipnorm == 1.0


def test_greedy_rollout_compiles_with_xla():
    model = _model()
    x, _ = _data(b=2)
    helpers.assert_jit_compiles(lambda a: model.rollout(a, mode="greedy"), tf.constant(x))


def test_policy_location_inputs_start_at_zero():
    model = _model()
    model.build_from_image_shape()
    kernel = np.asarray(model.policy_head.hidden_dense.kernel)
    assert kernel.shape == (TINY["embed_dim"] + 2, TINY["policy_units"])
    np.testing.assert_array_equal(kernel[-2:], 0.0)
    assert np.abs(kernel[:-2]).sum() > 0


def test_agent_evaluation_reports_policy_entropy_and_the_random_policys_accuracy(monkeypatch):
    model = _compiled()
    x, _ = _data(6)
    out = model.rollout(tf.constant(x), mode="greedy")
    probs = out["action_probs"].numpy()
    entropy = -(probs * np.log(np.maximum(probs, 1e-12))).sum(-1).mean(-1)  # (B,)
    # Labels: the learned greedy prediction, class 0 for the last 2 images; the
    # random policy's rollout is replaced by one that predicts class 0 for every image.
    y = np.argmax(out["predictions"].numpy(), -1).astype("int32")
    y[4:] = 0
    rollout = model.rollout

    def fake(images, mode="greedy", training=False, policy=None, **kw):
        result = rollout(images, mode=mode, training=training, policy=policy, **kw)
        if policy == "random":
            result = dict(result, predictions=tf.one_hot(tf.zeros(tf.shape(images)[:1],
                                                                  tf.int32), 10))
        return result

    monkeypatch.setattr(model, "rollout", fake)
    logs = {k: float(v) for k, v in model.test_step((tf.constant(x), tf.constant(y))).items()}
    assert logs["policy_entropy"] == pytest.approx(entropy.mean(), rel=1e-5)
    assert logs["entropy_fraction"] == pytest.approx(entropy.mean() / np.log(16), rel=1e-5)
    assert logs["accuracy_random_policy"] == pytest.approx(np.mean(y == 0))
    assert logs["accuracy"] == pytest.approx(np.mean(y == np.argmax(out["predictions"], -1)))
    # Training logs and the pretrain stage carry none of them.
    model.reset_metrics()
    assert "policy_entropy" not in model.train_step((tf.constant(x), tf.constant(y)))
    pre = _compiled(stage="pretrain")
    assert set(pre.test_step((tf.constant(x), tf.constant(y)))) == {"loss", "accuracy"}


def test_step_logits_are_the_classifier_on_each_prefix_alone():
    """`step_logits[:, t]` (the rewards' classifications) equals the
    classifier run on the first t + 1 glimpse embeddings alone, for every t
    including the last (which is the episode's prediction); the shorter
    prefixes run apart from the last one, without a backward pass."""
    model = _model()
    x, _ = _data()
    out = model._agent_rollout(tf.constant(x), "greedy", training=False, with_rewards=True)
    cells = tf.concat([tf.fill([len(x), 1], model.start_cell), out["actions"][:, :-1]], axis=1)
    feats = []
    for t in range(model.num_steps):
        patch, location = model.glimpse(tf.constant(x), cells[:, t])
        feats.append(model.encoder(patch, location))
    feats = tf.stack(feats, axis=1)
    steps = np.asarray(out["step_logits"])
    assert steps.shape == (len(x), model.num_steps, model.num_classes)
    for t in range(model.num_steps):
        np.testing.assert_allclose(steps[:, t], model._classify(feats[:, :t + 1]), atol=1e-5,
                                   err_msg=f"prefix of {t + 1} glimpses")
    np.testing.assert_allclose(out["predictions"], steps[:, -1], atol=1e-6)


def test_only_the_full_episode_classification_is_differentiated():
    """The shorter prefixes' logits (the rewards' classifications) carry no
    gradient to any weight: only the full classification trains the
    classifier, and the prefixes cost no backward pass."""
    model = _model()
    x, _ = _data()
    with tf.GradientTape(persistent=True) as tape:
        out = model._agent_rollout(tf.constant(x), "greedy", training=True, with_rewards=True)
        prefixes = tf.reduce_sum(out["step_logits"][:, :-1])
        full = tf.reduce_sum(out["step_logits"][:, -1])
    variables = model.trainable_variables

    def flowing(grads):  # a slice of the concatenated logits gives zeros, not None
        return [v.path for v, g in zip(variables, grads) if g is not None and np.any(g)]

    assert flowing(tape.gradient(prefixes, variables)) == []
    assert "classifier/kernel" in flowing(tape.gradient(full, variables))
