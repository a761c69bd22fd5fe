import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import deterministic_sampling, two_cpu_strategy
from keras_glimpse.objectives import sac
from keras_glimpse.objectives.replay_buffer import ReplayBuffer


def test_td_target_hand_computed():
    y = sac.td_target(tf.constant([1.0, 0.5]), tf.constant([2.0, 3.0]), tf.constant([1.5, 4.0]),
                      tf.constant([-1.0, 0.5]), 0.5, tf.constant([0.0, 1.0]), gamma=0.9)
    # 1 + 0.9 * (min(2, 1.5) - 0.5 * -1) = 2.8 ; terminated -> r only.
    np.testing.assert_allclose(y, [2.8, 0.5], rtol=1e-6)
    scaled = sac.td_target(tf.constant([1.0, 0.5]), tf.constant([2.0, 3.0]),
                           tf.constant([1.5, 4.0]), tf.constant([-1.0, 0.5]), 0.5,
                           tf.constant([0.0, 1.0]), gamma=0.9, reward_scale=10.0)
    # Only the reward is scaled: 10 + 0.9 * 2 = 11.8 ; terminated -> 10 * 0.5.
    np.testing.assert_allclose(scaled, [11.8, 5.0], rtol=1e-6)


def test_critic_loss_no_half_sum_of_two():
    loss = sac.critic_loss(tf.constant([1.0, 2.0]), tf.constant([0.0, 3.0]), tf.constant([1.0, 1.0]))
    np.testing.assert_allclose(loss, [1.0, 5.0])


def test_actor_loss_uses_min_q_and_detached_alpha():
    alpha = tf.Variable(0.5)
    logp = tf.Variable([-1.0, 2.0])
    with tf.GradientTape() as tape:
        loss = sac.actor_loss(logp, tf.constant([1.0, 0.0]), tf.constant([2.0, -1.0]), alpha)
    np.testing.assert_allclose(loss, [-1.5, 2.0])
    g_alpha, g_logp = tape.gradient(loss, [alpha, logp])
    assert g_alpha is None
    np.testing.assert_allclose(g_logp, [0.5, 0.5])


def test_temperature_loss_value_and_gradient():
    log_alpha = tf.Variable(0.2)
    logp = tf.Variable([-1.0, -4.0])
    with tf.GradientTape() as tape:
        per = sac.temperature_loss(log_alpha, logp, -3.0)
        loss = tf.reduce_mean(per)
    np.testing.assert_allclose(per, [0.8, 1.4], rtol=1e-6)
    g_alpha, g_logp = tape.gradient(loss, [log_alpha, logp])
    np.testing.assert_allclose(g_alpha, 5.5, rtol=1e-6)  # -mean(logp + H)
    assert g_logp is None


def test_polyak_update_and_validation():
    t = [tf.Variable([0.0, 0.0])]
    sac.polyak_update(t, [tf.constant([1.0, 2.0])], tau=0.1)
    np.testing.assert_allclose(t[0], [0.1, 0.2], rtol=1e-6)
    with pytest.raises(ValueError, match="tau"):
        sac.polyak_update(t, [tf.constant([1.0, 2.0])], tau=2.0)
    with pytest.raises(ValueError, match="matching"):
        sac.polyak_update(t, [], tau=0.1)


# ---- tiny deterministic networks (TF-Agents style) ---------------------------
class _Actor(keras.layers.Layer):
    """a = k s, log pi = -0.5 a^2 (deterministic, differentiable in k)."""

    def build(self, _=None):
        self.k = self.add_weight(shape=(), initializer=keras.initializers.Constant(0.5), name="k")

    def call(self, obs, mode="sample"):
        a = self.k * obs  # (B, 1)
        return {"action": a, "log_prob": -0.5 * tf.reduce_sum(a * a, -1)}


class _Critic(keras.layers.Layer):
    """Q(s, a) = w s + v a."""

    def __init__(self, w, v, trainable=True):
        super().__init__(trainable=trainable, name="critic")
        self.w0, self.v0 = w, v

    def build(self, _=None):
        self.w = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.w0), name="w")
        self.v = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.v0), name="v")

    def call(self, obs, action):
        return self.w * obs[:, 0] + self.v * action[:, 0]


def _make_agent():
    actor = _Actor(name="actor")
    critics = [_Critic(1.0, 2.0), _Critic(0.5, 1.0)]
    targets = [_Critic(1.0, 2.0, trainable=False), _Critic(0.5, 1.0, trainable=False)]
    for m in [actor] + critics + targets:
        m.build()
    log_alpha = tf.Variable(0.0, name="log_alpha")
    opts = {k: keras.optimizers.SGD(0.1) for k in ("actor", "critic", "alpha")}
    opts["actor"].build(actor.trainable_variables)
    opts["critic"].build(critics[0].trainable_variables + critics[1].trainable_variables)
    opts["alpha"].build([log_alpha])
    return actor, critics, targets, log_alpha, opts


BATCH = {
    "observation": np.array([[1.0], [2.0]], "float32"),
    "action": np.array([[0.3], [-0.4]], "float32"),
    "reward": np.array([0.5, -1.0], "float32"),
    "next_observation": np.array([[0.5], [1.5]], "float32"),
    "terminated": np.array([0.0, 1.0], "float32"),
}


def _expected(lr=0.1, gamma=0.99, tau=0.005, h=-3.0, reward_scale=1.0):
    s, a = BATCH["observation"][:, 0], BATCH["action"][:, 0]
    r, s2, d = BATCH["reward"], BATCH["next_observation"][:, 0], BATCH["terminated"]
    k, w1, v1, w2, v2, alpha = 0.5, 1.0, 2.0, 0.5, 1.0, 1.0
    # Actor: L = mean(alpha * (-0.5 k^2 s^2) - min(Q1, Q2)(s, k s)); Q2 is the min for s > 0.
    api = k * s
    logp = -0.5 * api**2
    loss_actor = np.mean(alpha * logp - np.minimum(w1 * s + v1 * api, w2 * s + v2 * api))
    dk = np.mean(-alpha * k * s**2 - v2 * s)
    k_new = k - lr * dk
    # Critic with the updated actor at s'.
    a2 = k_new * s2
    logp2 = -0.5 * a2**2
    y = reward_scale * r + gamma * (1 - d) * (np.minimum(w1 * s2 + v1 * a2, w2 * s2 + v2 * a2) - alpha * logp2)
    q1, q2 = w1 * s + v1 * a, w2 * s + v2 * a
    loss_critic = np.mean((q1 - y) ** 2 + (q2 - y) ** 2)
    w1_new = w1 - lr * np.mean(2 * (q1 - y) * s)
    v2_new = v2 - lr * np.mean(2 * (q2 - y) * a)
    # Temperature with the pre-update log-prob.
    loss_alpha = np.mean(-0.0 * (logp + h))
    log_alpha_new = 0.0 - lr * (-np.mean(logp + h))
    target_w1 = (1 - tau) * w1 + tau * w1_new
    return dict(loss_actor=loss_actor, k=k_new, loss_critic=loss_critic, w1=w1_new,
                v2=v2_new, loss_alpha=loss_alpha, log_alpha=log_alpha_new, target_w1=target_w1)


def test_sac_update_matches_hand_computation():
    actor, critics, targets, log_alpha, opts = _make_agent()
    metrics = sac.sac_update(tf.nest.map_structure(tf.constant, BATCH), actor, critics, targets,
                             log_alpha, opts)
    e = _expected()
    np.testing.assert_allclose(metrics["actor_loss"], e["loss_actor"], rtol=1e-5)
    np.testing.assert_allclose(metrics["critic_loss"], e["loss_critic"], rtol=1e-5)
    np.testing.assert_allclose(actor.k, e["k"], rtol=1e-5)
    np.testing.assert_allclose(critics[0].w, e["w1"], rtol=1e-5)
    np.testing.assert_allclose(critics[1].v, e["v2"], rtol=1e-5)
    np.testing.assert_allclose(log_alpha, e["log_alpha"], rtol=1e-5)
    np.testing.assert_allclose(targets[0].w, e["target_w1"], rtol=1e-6)
    # Target copies were not trained by the critic optimizer.
    np.testing.assert_allclose(targets[1].v, 0.995 * 1.0 + 0.005 * e["v2"], rtol=1e-6)


def test_sac_update_scales_rewards_in_the_critic_target_only():
    actor, critics, targets, log_alpha, opts = _make_agent()
    metrics = sac.sac_update(tf.nest.map_structure(tf.constant, BATCH), actor, critics, targets,
                             log_alpha, opts, reward_scale=3.0)
    e = _expected(reward_scale=3.0)
    np.testing.assert_allclose(metrics["critic_loss"], e["loss_critic"], rtol=1e-5)
    np.testing.assert_allclose(critics[0].w, e["w1"], rtol=1e-5)
    np.testing.assert_allclose(actor.k, e["k"], rtol=1e-5)  # the actor step does not see r
    assert not np.isclose(e["loss_critic"], _expected()["loss_critic"])


def test_sac_update_one_vs_two_replicas():
    batch = tf.nest.map_structure(tf.constant, BATCH)
    with deterministic_sampling():
        single = _make_agent()
        tf.function(lambda b: sac.sac_update(b, *single))(batch)
        strategy = two_cpu_strategy()
        with strategy.scope():
            mirrored = _make_agent()
        ds = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors(BATCH).unbatch().batch(2))
        step = tf.function(lambda b: strategy.run(lambda x: sac.sac_update(x, *mirrored),
                                                  args=(b,)))
        step(next(iter(ds)))

    def variables(agent):
        actor, critics, targets, log_alpha, _ = agent
        return [actor.k, critics[0].w, critics[0].v, critics[1].w, critics[1].v,
                targets[0].w, targets[1].v, log_alpha]

    for a, b in zip(variables(single), variables(mirrored)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert not np.isclose(float(single[0].k), 0.5)


# ---- replay buffer -----------------------------------------------------------
def test_replay_buffer_fifo_and_uniform_sampling():
    spec = {"obs": tf.TensorSpec((2,), tf.float32), "r": tf.TensorSpec((), tf.float32)}
    buf = ReplayBuffer(spec, capacity=5, seed=3)
    assert int(buf.size) == 0
    buf.add({"obs": tf.ones((3, 2)), "r": tf.constant([1.0, 2.0, 3.0])})
    assert int(buf.size) == 3
    buf.add({"obs": tf.ones((3, 2)), "r": tf.constant([4.0, 5.0, 6.0])})
    assert int(buf.size) == 5
    # FIFO: 6 overwrote the oldest (1).
    np.testing.assert_allclose(np.sort(buf._storage[1].numpy()), [2, 3, 4, 5, 6])
    draws = tf.function(lambda: buf.sample(4000))()["r"].numpy()
    counts = np.array([(draws == v).sum() for v in [2, 3, 4, 5, 6]])
    assert counts.sum() == 4000 and counts.min() > 650, counts  # ~800 each
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(spec, capacity=0)


def test_replay_buffer_only_samples_filled_slots():
    buf = ReplayBuffer({"r": tf.TensorSpec((), tf.float32)}, capacity=100, seed=0)
    buf.add({"r": tf.constant([7.0, 8.0])})
    draws = buf.sample(200)["r"].numpy()
    assert set(np.unique(draws)) == {7.0, 8.0}


def test_replay_buffer_keeps_one_buffer_per_replica():
    """Under MirroredStrategy each replica stores and samples its own shard."""
    strategy = two_cpu_strategy()
    with strategy.scope():
        buf = ReplayBuffer({"r": tf.TensorSpec((), tf.float32)}, capacity=8, seed=0)
    ds = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(tf.constant([1.0, 2.0, 10.0, 20.0])).batch(4))

    @tf.function
    def step(r):
        def replica(x):
            buf.add({"r": x})
            return buf.sample(50)["r"], buf.size
        return strategy.run(replica, args=(r,))

    draws, sizes = step(next(iter(ds)))
    first, second = [v.numpy() for v in strategy.experimental_local_results(draws)]
    assert set(np.unique(first)) <= {1.0, 2.0} and set(np.unique(second)) <= {10.0, 20.0}
    assert [int(s) for s in strategy.experimental_local_results(sizes)] == [2, 2]
