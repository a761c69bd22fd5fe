from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import (assert_config_roundtrip, assert_export_roundtrip, assert_keras_roundtrip,
                     assert_replica_equivalence, deterministic_sampling)
from keras_glimpse.layers.elastic_glimpse import ElasticGlimpse
from keras_glimpse.models.adaglimpse import PHASES, AdaGlimpse, phase_of_epoch, rewards_from_scores
from keras_glimpse.objectives import sac

TINY = dict(image_shape=(16, 16, 1), num_glimpses=2, grid_size=1, patch_size=8,
            backbone_size="tiny", decoder_dim=16, decoder_depth=1, decoder_heads=2,
            hidden_units=16, rl_batch_size=4, replay_capacity=32, init_random_steps=0,
            freeze_backbone_epochs=1, seed=0)


def _model(**kw):
    cfg = dict(TINY)
    cfg.update(kw)
    m = AdaGlimpse(**cfg)
    m.build_from_image_shape()
    return m


@pytest.fixture(scope="module")
def shared():
    """One built default model for the tests that only read it (building costs seconds)."""
    return _model()


def _images(b=4):
    return tf.random.stateless_uniform((b, 16, 16, 1), [1, 2])


def _copy(vars_):
    return [np.array(v) for v in vars_]


def _changed(before, vars_):
    return any(not np.allclose(a, np.array(b)) for a, b in zip(before, vars_))


def test_rollout_fixed_size_arrays_and_greedy_is_deterministic(shared):
    m = shared
    x = _images()
    out = m.rollout(x, mode="greedy")
    assert out["predictions"].shape == (4, 16, 16, 1)
    assert out["boxes"].shape == (4, 2, 4)
    assert out["patch_boxes"].shape == (4, 2, 4) and out["mask"].shape == (4, 2)
    np.testing.assert_allclose(out["mask"], 0.0)
    side = out["boxes"][..., 2] - out["boxes"][..., 0]
    assert float(tf.reduce_min(side)) >= 8 and float(tf.reduce_max(side)) <= 16
    again = m.rollout(x, mode="greedy")
    np.testing.assert_allclose(out["boxes"], again["boxes"])
    np.testing.assert_allclose(m(x), out["predictions"], atol=1e-5)
    sampled = m.rollout(x, mode="sample")
    assert sampled["boxes"].shape == (4, 2, 4)
    grid = m.rollout(x, policy="grid")["boxes"].numpy()
    assert len({tuple(b) for b in grid[0]}) == 2


def test_rewards_telescope_on_a_real_episode(shared):
    m = shared
    scores = m.rollout(_images())["scores"]  # (B, T+1)
    rewards = rewards_from_scores(scores)
    np.testing.assert_allclose(tf.reduce_sum(rewards, 1), scores[:, -1] - scores[:, 0], atol=1e-4)
    np.testing.assert_allclose(rewards_from_scores(tf.constant([[1.0, 3.0, 2.0]])), [[2.0, -1.0]])
    np.testing.assert_allclose(rewards_from_scores(tf.constant([[1.0, 3.0]]), "simple"), [[3.0]])


def test_rl_step_updates_agent_only_and_fills_buffer():
    m = _model()
    m.compile(run_eagerly=True)
    x = _images()
    backbone, actor = _copy(m.backbone_variables), _copy(m.actor.trainable_variables)
    critic, target = _copy(m.critic_variables), _copy(m.target_critic1.weights)
    log_alpha = float(m.log_alpha)
    m._phase = "rl"
    logs = m.train_step((x, x))
    assert {"critic_loss", "actor_loss", "alpha", "reward", "rmse"} <= set(logs)
    assert int(m.replay_buffer.size) == 4 * 2
    assert int(m.rl_steps) == 2
    assert not _changed(backbone, m.backbone_variables)
    assert _changed(actor, m.actor.trainable_variables)
    assert _changed(critic, m.critic_variables)
    assert _changed(target, m.target_critic1.weights)
    assert float(m.log_alpha) != log_alpha  # the temperature step ran


def test_transitions_reward_the_score_change_and_terminate_at_T():
    m = AdaGlimpse(**TINY)  # T = 2; the transition needs no weights
    steps = [{"t": t, "state": f"s{t}", "action": f"a{t}", "score": tf.constant(v)}
             for t, v in enumerate(([0.5, 1.0], [0.75, 0.25], [1.0, 2.0]))]
    first, last = m._transition(steps[0], steps[1]), m._transition(steps[1], steps[2])
    assert (first["observation"], first["action"], first["next_observation"]) == (
        "s0", "a0", "s1")
    np.testing.assert_allclose(first["reward"], [0.25, -0.75])
    np.testing.assert_allclose(first["terminated"], [0.0, 0.0])
    np.testing.assert_allclose(last["reward"], [0.25, 1.75])
    np.testing.assert_allclose(last["terminated"], [1.0, 1.0])
    m.reward_type = "simple"
    np.testing.assert_allclose(m._transition(steps[0], steps[1])["reward"], [0.75, 0.25])


def test_sac_updates_run_between_glimpses():
    """Transition t's SAC update runs before glimpse t + 1 is taken (T = 3)."""
    m = _model(num_glimpses=3)
    m.compile(run_eagerly=True)
    m._phase = "rl"
    events, real_call, real_update = [], ElasticGlimpse.call, m.sac_update

    def call(self, *args, **kwargs):
        events.append("glimpse")
        return real_call(self, *args, **kwargs)

    def update(batch):
        events.append("update")
        return real_update(batch)

    with mock.patch.object(ElasticGlimpse, "call", call), mock.patch.object(m, "sac_update",
                                                                            update):
        m.train_step((_images(), None))
    assert events == ["glimpse", "glimpse", "update", "glimpse", "update", "update"]


def test_sac_update_is_the_objectives_sac_iteration():
    """The model's explicit SAC iteration (actor, critic, temperature steps,
    Polyak targets) equals `objectives.sac.sac_update` from the same state:
    same metrics and the same weights afterwards (SGD shows any sign error)."""
    m = _model(gamma=0.9, tau=0.1, target_entropy=-2.0, reward_scale=3.0)
    m.compile(**{f"{k}_optimizer": keras.optimizers.SGD(0.05)
                 for k in ("actor", "critic", "alpha")})
    state = m._episode(_images(), mode="greedy")["final_state"]
    batch = {"observation": state, "action": tf.random.stateless_uniform((4, 3), [3, 4]),
             "reward": tf.constant([0.5, -1.0, 0.0, 2.0]),
             "next_observation": tf.nest.map_structure(lambda t: t * 0.5, state),
             "terminated": tf.constant([0.0, 1.0, 0.0, 1.0])}
    opts = {"actor": m.actor_optimizer, "critic": m.critic_optimizer,
            "alpha": m.alpha_optimizer}
    variables = m.weights + [v for o in opts.values() for v in o.variables]
    initial = _copy(variables)
    with deterministic_sampling():
        ours = m.sac_update(batch)
        after = _copy(variables)
        for v, value in zip(variables, initial):
            v.assign(value)
        reference = sac.sac_update(batch, m.actor, (m.critic1, m.critic2),
                                   (m.target_critic1, m.target_critic2), m.log_alpha, opts,
                                   gamma=0.9, tau=0.1, target_entropy=-2.0, reward_scale=3.0)
    assert _changed(initial, variables)
    assert set(ours) == set(reference)
    for k in reference:
        np.testing.assert_allclose(ours[k], reference[k], rtol=1e-5, atol=1e-6, err_msg=k)
    for a, b in zip(after, variables):
        np.testing.assert_allclose(a, np.array(b), rtol=1e-5, atol=1e-6)


def test_rl_iters_per_step_runs_that_many_sac_updates():
    m = _model(rl_iters_per_step=3, reward_scale=10.0)
    m.compile(run_eagerly=True)
    m._phase = "rl"
    m.train_step((_images(), None))
    # T=2 glimpse steps, 3 SAC iterations each, one optimizer step per iteration.
    assert int(m.critic_optimizer.iterations) == 6
    assert int(m.actor_optimizer.iterations) == 6
    with pytest.raises(ValueError, match="rl_iters_per_step"):
        AdaGlimpse(**{**TINY, "rl_iters_per_step": 0})
    with pytest.raises(ValueError, match="reward_scale"):
        AdaGlimpse(**{**TINY, "reward_scale": 0.0})


def _sgd_model(impl, eager, **kw):
    keras.utils.set_random_seed(0)  # the same initial weights for every implementation
    m = _model(**kw)
    m.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=eager,
              **{f"{k}_optimizer": keras.optimizers.SGD(0.05)
                 for k in ("actor", "critic", "alpha")})
    m.rl_step_impl = impl
    return m


# (loop-2 by default: it catches every planted bug; the others in `make test-slow`)
@pytest.mark.parametrize("impl,iters", [("loop", 2),
                                        pytest.param("loop", 1, marks=pytest.mark.slow),
                                        pytest.param("unrolled", 2, marks=pytest.mark.slow)])
def test_rl_step_equals_the_previous_implementation(impl, iters):
    """The RL step (`rl_step_impl="loop"`, a tf.while_loop traced once, the
    default; `"unrolled"`, what runs under a strategy), with its shared critic
    trunks and fast CNN, equals the previous implementation (`"reference"`:
    the unrolled `_steps` generator, plain network calls and
    `objectives.sac.sac_update`) over two steps from the same weights and
    seeds, with the real random draws: the first episode on uniform random
    actions (`init_random_steps`), the second on the actor's. The same
    transitions in the replay buffer, the same SAC updates (plain SGD shows a
    skipped update or a flipped sign), the same weights and metrics."""
    kw = dict(num_glimpses=3, rl_iters_per_step=iters, init_random_steps=3,
              reward_scale=3.0, replay_capacity=64, rl_batch_size=6)
    reference = _sgd_model("reference", eager=True, **kw)
    # Graph mode for the while_loop (eager runs it as a Python loop).
    new = _sgd_model(impl, eager=impl == "unrolled", **kw)
    new.set_weights(reference.get_weights())
    x = tf.random.stateless_uniform((4, 16, 16, 1), [5, 6])
    logs = {}
    for m in (reference, new):
        step = m.make_train_function()
        for _ in range(2):
            logs[m.rl_step_impl] = {k: float(v) for k, v in step([(x, x)]).items()}

    def state(m):
        buffer = m.replay_buffer
        return ([("weight " + v.path, v) for v in m.weights]
                + [(f"{o.name} " + v.path, v) for o in (m.actor_optimizer, m.critic_optimizer,
                                                       m.alpha_optimizer) for v in o.variables]
                + [(f"replay {i}", v) for i, v in enumerate(buffer._storage)]
                + [("replay pointer", buffer._pointer), ("replay size", buffer._size)])

    for (name, a), (_, b) in zip(state(reference), state(new)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    assert int(new.replay_buffer.size) == int(reference.replay_buffer.size) == 2 * 4 * 3
    assert int(new.rl_steps) == 6 and int(new.critic_optimizer.iterations) == 2 * 3 * iters
    assert logs["reference"].keys() == logs[impl].keys()
    for k, v in logs["reference"].items():
        assert logs[impl][k] == pytest.approx(v, rel=1e-4, abs=1e-5), k
    with pytest.raises(ValueError, match="rl_step_impl"):
        new.rl_step_impl = "fused"
        new.train_step((x, x))


def test_full_rl_train_step_one_vs_two_replicas():
    """The whole RL step (episode, per-replica replay buffer, SAC updates) under
    MirroredStrategy equals one device. All images of the batch are the same, so
    every stored transition is the same and the per-replica buffers sample the
    same data as the single one: any error in the cross-replica reduction of the
    SAC losses (a sum instead of a mean, a missing all-reduce) shows up."""
    x = tf.tile(_images(1), [4, 1, 1, 1])

    def build():
        m = _model(freeze_backbone_epochs=5)
        # Plain SGD: Adam would hide a factor-2 gradient error (it is scale invariant).
        # Its rate keeps every weight change below ~0.5 in 4 updates; at 0.1 the
        # critic diverges to 1e5 and float32 summation order alone breaks the tolerance.
        m.compile(optimizer=keras.optimizers.SGD(0.01),
                  **{f"{k}_optimizer": keras.optimizers.SGD(0.01)
                     for k in ("actor", "critic", "alpha")})
        return m

    # The backbone is frozen in the RL phase: the actor, both critics and the
    # temperature must all move. (No planted-bug control here: a third fit of
    # this step costs minutes; the backbone test below plants it in the same
    # `reduce_loss` the SAC losses use.)
    # Except their attention-pool logits: with T = 2 every observation an SAC
    # update sees holds at most one glimpse, and a softmax over one slot (or
    # over none: all masked) has a zero logit gradient (float noise at most).
    def trained(m):
        agent = m.actor.trainable_variables + m.critic_variables + [m.log_alpha]
        return [v for v in agent if "/logits_" not in v.path]

    single, mirrored = assert_replica_equivalence(build, x, steps=2, atol=1e-5, rtol=1e-4,
                                                  trained=trained)
    steps = [int(keras.ops.convert_to_numpy(m.rl_steps)) for m in (single, mirrored)]
    assert steps == [4, 4]


@pytest.mark.parametrize("stage,backbone_training", [
    ("pretrain", "alternating"),
    pytest.param("rl", "backbone_only", marks=pytest.mark.slow)])  # 70 s: test-slow
def test_backbone_train_step_one_vs_two_replicas(stage, backbone_training):
    """The pretrain phase (random glimpses after the whole image) and the
    backbone phase (the actor's glimpses): one SGD step of the encoder and task
    head on 2 replicas equals one on 1 device; every backbone weight moves."""
    x = _images(4)

    def build():
        keras.utils.set_random_seed(0)  # the same initial weights whatever ran before
        m = _model(stage=stage, backbone_training=backbone_training)
        assert m.current_phase() == ("pretrain" if stage == "pretrain" else "backbone")
        # LayerScale 1e-4 scales the blocks' gradients so far down that the
        # updates of the gammas (around 1.0) round away in float32: make it 1,
        # and take a large backbone step (the smallest update is then >= 4 ulps
        # over seeds 0-2; at 0.1 some were 0.5 ulp and the check was flaky).
        for block in m.encoder.blocks:
            for gamma in (block.gamma1, block.gamma2):
                gamma.assign(tf.ones(gamma.shape))
        m.compile(optimizer=keras.optimizers.SGD(1.0),
                  **{f"{k}_optimizer": keras.optimizers.SGD(0.1)
                     for k in ("actor", "critic", "alpha")})
        return m

    assert_replica_equivalence(build, x, atol=1e-5, rtol=1e-4, control=True,
                               trained=lambda m: m.backbone_variables)


def test_backbone_and_pretrain_steps_update_backbone_only():
    for stage, phase in (("rl", "backbone"), ("pretrain", "pretrain")):
        m = _model(stage=stage)
        m.compile(run_eagerly=True)
        backbone, actor = _copy(m.backbone_variables), _copy(m.actor.trainable_variables)
        m._phase = phase
        logs = m.train_step((_images(), None))
        assert np.isfinite(float(logs["loss"]))
        assert _changed(backbone, m.backbone_variables)
        assert not _changed(actor, m.actor.trainable_variables)


def test_pretrain_stage_is_validated_on_the_glimpses_it_trains_on():
    """Pretrain validation (checkpoint selection) uses the pretrain phase's
    glimpses (whole image, then random), not the untrained actor's; the RL
    stage's uses the actor."""
    calls = []
    for stage in ("pretrain", "rl"):
        m = _model(stage=stage)
        m.compile(run_eagerly=True)
        episode, blind = m._episode, m._blind_episode

        def spy_episode(*args, **kwargs):
            calls.append((stage, kwargs.get("policy", "actor"), kwargs.get("first_actions")))
            return episode(*args, **kwargs)

        def spy_blind(images, targets, policy, first_actions, training, **kwargs):
            calls.append((stage, policy, first_actions))
            return blind(images, targets, policy, first_actions, training, **kwargs)

        m._episode, m._blind_episode = spy_episode, spy_blind
        logs = m.test_step((_images(), None))
        assert np.isfinite(float(logs["loss"]))
    assert calls == [("pretrain", "random", ((0.0, 0.0, 1.0),)), ("rl", "actor", None)]
    # The pretrain episode's first glimpse is the whole image: scale 1 at (0, 0).
    m = _model(stage="pretrain")
    out = m._blind_episode(_images(), None, "random", PHASES["pretrain"].first_actions,
                           training=False)
    np.testing.assert_allclose(out["actions"][:, 0].numpy(), [[0.0, 0.0, 1.0]] * 4)


def test_blind_episode_takes_the_same_glimpses_without_encoding_each_step():
    """Policies that never read the state (pretraining's random glimpses, the
    grid): `_blind_episode` takes the same glimpses (the same random draws) as
    the full episode and gives the same final predictions and score, encoding
    only the final glimpses; the pretrain step trains on exactly those."""
    m = _model(stage="pretrain", num_glimpses=3)
    images = _images()
    first = PHASES["pretrain"].first_actions
    state = np.array(m.seed_generator.state)
    for policy in ("random", "grid"):
        m.seed_generator.state.assign(state)
        full = m._episode(images, None, mode="sample", policy=policy, first_actions=first)
        m.seed_generator.state.assign(state)
        with mock.patch.object(m, "_encode", wraps=m._encode) as encode:
            blind = m._blind_episode(images, None, policy, first, training=False)
        assert encode.call_count == 1  # the final glimpses only (the full episode: T + 1)
        np.testing.assert_array_equal(blind["actions"], full["actions"])
        for a, b in zip(blind["final_inputs"], full["final_inputs"]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(blind["predictions"], full["predictions"], atol=1e-6)
        np.testing.assert_allclose(blind["scores"][:, -1], full["scores"][:, -1], atol=1e-5)
    # The pretrain step trains on exactly those glimpses, encoded once.
    m.compile(run_eagerly=True)
    m.seed_generator.state.assign(state)
    expected = m._blind_episode(images, None, "random", first, training=True)["final_inputs"]
    m.seed_generator.state.assign(state)
    seen, call = [], m.encoder.call

    def spy(patches, boxes, mask, *args, **kwargs):
        seen.append((patches, boxes, mask))
        return call(patches, boxes, mask, *args, **kwargs)

    m.encoder.call = spy
    m._phase = "pretrain"
    m.train_step((images, None))
    assert len(seen) == 1
    for a, b in zip(seen[0], expected):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="does not read the state"):
        list(m._steps(images, policy="actor", encode=False))


def test_phase_schedule():
    # The schedule reads constructor arguments only: no need to build the networks.
    m = AdaGlimpse(**{**TINY, "freeze_backbone_epochs": 2})
    phases = []
    for e in range(6):
        m.current_epoch = e
        phases.append(m.current_phase())
    assert phases == ["rl", "rl", "rl", "backbone", "rl", "backbone"]
    for mode, only in (("rl_only", "rl"), ("backbone_only", "backbone")):
        m = AdaGlimpse(**{**TINY, "freeze_backbone_epochs": 2, "backbone_training": mode})
        for e in range(6):
            m.current_epoch = e
            assert m.current_phase() == only, (mode, e)
    assert AdaGlimpse(**{**TINY, "stage": "pretrain"}).current_phase() == "pretrain"
    # The one schedule, as a function of the epoch, and what each phase trains.
    assert [phase_of_epoch(e, "rl", "alternating", 1) for e in range(4)] == [
        "rl", "rl", "backbone", "rl"]
    assert phase_of_epoch(0, "pretrain", "rl_only", 5) == "pretrain"
    assert {k: p.trains for k, p in PHASES.items()} == {
        "pretrain": "backbone", "rl": "agent", "backbone": "backbone"}
    assert PHASES["pretrain"].policy == "random"
    assert PHASES["pretrain"].first_actions == ((0.0, 0.0, 1.0),)  # the whole image first
    assert PHASES["backbone"].policy == PHASES["rl"].policy == "actor"


def test_classification_early_stopping_and_metrics():
    m = _model(task="classification", num_classes=3, early_stop_threshold=0.01)
    m.compile(run_eagerly=True)
    y = tf.constant([0, 1, 2, 0])
    out = m.rollout(_images())
    np.testing.assert_allclose(out["num_glimpses"], 0.0)  # confident at once -> no glimpse
    np.testing.assert_allclose(out["mask"], 1.0)
    logs = m.test_step((_images(), y))
    assert float(logs["avg_glimpses"]) == 0.0 and 0.0 <= float(logs["accuracy"]) <= 1.0
    # Without a threshold (the default, None) every glimpse is taken; the
    # threshold is read at call time, so the same network serves (no rebuild).
    m.early_stop_threshold = None
    np.testing.assert_allclose(m.rollout(_images())["num_glimpses"], 2.0)


def test_segmentation_rollout_and_test_step():
    m = _model(task="segmentation", num_classes=3)
    m.compile(run_eagerly=True)
    labels = tf.concat([tf.zeros((4, 16, 8), tf.int32), tf.fill((4, 16, 8), 255)], axis=2)
    assert m.rollout(_images())["predictions"].shape == (4, 16, 16, 3)
    logs = m.test_step((_images(), labels))
    assert "miou" in logs and 0.0 <= float(logs["pixel_accuracy"]) <= 1.0
    # Every image has the same number of valid pixels, so the pooled pixel accuracy
    # is the mean of the per-image ones.
    ds = tf.data.Dataset.from_tensor_slices((_images(), labels)).batch(3)
    seg = m.evaluate_policy(ds, per_example=True)
    assert seg["count"] == 4 and seg["per_example"].shape == (4,)
    np.testing.assert_allclose(seg["per_example"].mean(), seg["pixel_accuracy"], rtol=1e-5)


def test_evaluate_policy_per_example_scores_agree_with_the_totals(shared):
    x = _images(6)
    ds = tf.data.Dataset.from_tensor_slices((x, x)).batch(4)
    rec = shared.evaluate_policy(ds, policy="grid", per_example=True)
    assert rec["count"] == 6 and rec["per_example"].shape == (6,)
    np.testing.assert_allclose(np.sqrt(np.mean(rec["per_example"] ** 2)), rec["rmse"], rtol=1e-5)
    np.testing.assert_allclose(shared.rollout(x[:4], policy="grid")["scores"][:, -1],
                               -rec["per_example"][:4], rtol=1e-5)
    assert "per_example" not in shared.evaluate_policy(ds, policy="grid")

    m = _model(task="classification", num_classes=3)
    y = tf.constant([0, 1, 2, 0, 1, 2])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    cls = m.evaluate_policy(ds, per_example=True)
    pred = np.argmax(m.rollout(x, mode="greedy")["predictions"], -1)
    np.testing.assert_array_equal(cls["per_example"], (pred == y.numpy()).astype("float32"))
    assert cls["accuracy"] == pytest.approx(cls["per_example"].mean())


def test_validation_and_config(shared):
    with pytest.raises(ValueError, match="task='detect'"):
        AdaGlimpse((16, 16, 1), task="detect")
    with pytest.raises(ValueError, match="num_classes=None"):
        AdaGlimpse((16, 16, 1), task="classification")
    with pytest.raises(ValueError, match="stage='warmup'"):
        AdaGlimpse((16, 16, 1), patch_size=8, stage="warmup")
    with pytest.raises(ValueError, match="divisible"):
        AdaGlimpse((20, 16, 1), patch_size=8)
    assert_config_roundtrip(shared)


def test_keras_and_export_roundtrips(shared):
    m = shared
    x = _images(2)
    assert_keras_roundtrip(m, x, atol=1e-4)
    served, _ = assert_export_roundtrip(m, x, num_samples=2)
    assert served["boxes"].shape == (2, 2, 4)


def test_image_dependence_replays_the_greedy_policys_average_sequence():
    shared = _model()

    # An untrained actor barely depends on the image: this one does.
    def actor(state, mode="greedy", fast=False):
        flat = tf.concat([tf.reshape(tf.cast(s, tf.float32), [tf.shape(s)[0], -1])
                          for s in tf.nest.flatten(state)], axis=1)
        level = tf.reduce_mean(flat, 1, keepdims=True)
        return {"action": 0.5 + 0.4 * tf.sin(1e3 * level * tf.constant([[1.0, 2.0, 3.0]]))}

    x = tf.random.stateless_uniform((6, 16, 16, 1), [3, 4])
    ds = tf.data.Dataset.from_tensor_slices((x, x)).batch(4)
    replays = []
    episode = shared._episode

    def spy(*args, **kwargs):
        if kwargs.get("first_actions") is not None:
            replays.append(np.asarray(kwargs["first_actions"]))
        return episode(*args, **kwargs)

    with mock.patch.object(shared, "_episode", spy), mock.patch.object(shared, "actor", actor):
        got = shared.evaluate_image_dependence(ds)
        actions = np.concatenate([shared.rollout(x[i:i + 4], mode="greedy")["actions"].numpy()
                                  for i in (0, 4)])  # (6, T, 3), batched as `ds`
    assert got["action_spread"] > 0.005  # 0 would be one fixed sequence
    # The second pass replays the greedy actions' average, every glimpse of it.
    assert replays and all(np.allclose(r, actions.mean(axis=0), atol=1e-5) for r in replays)
    np.testing.assert_allclose(got["action_spread"], actions.std(axis=0).mean(), rtol=1e-4,
                               atol=1e-6)
    mean = actions.mean(axis=0)
    with mock.patch.object(shared, "actor", actor):
        replayed = shared._episode(x, x, mode="greedy", first_actions=mean.tolist())
    per_image = -replayed["scores"][:, -1].numpy()  # the final step's RMSE per image
    np.testing.assert_allclose(got["rmse_mean_sequence_policy"],
                               np.sqrt(np.mean(per_image ** 2)), rtol=1e-4)
    # The replay really is one sequence for every image.
    np.testing.assert_allclose(replayed["actions"].numpy(),
                               np.broadcast_to(mean, actions.shape), atol=1e-6)
