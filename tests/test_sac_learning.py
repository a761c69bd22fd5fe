"""The SAC objective learns a small continuous-control task on its own.

A 2-D point must reach a target: state = (position, target), action =
displacement in [-1, 1]^2 (scaled by STEP), reward = decrease of the distance
to the target, 8 steps, the last one terminal. Only the public pieces are
used: `TanhNormalHead`, `sac.sac_update` and `ReplayBuffer`.
"""

import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse.layers.tanh_normal_head import TanhNormalHead
from keras_glimpse.objectives import sac
from keras_glimpse.objectives.replay_buffer import ReplayBuffer

STEP = 0.25
HORIZON = 8
NUM_ENVS = 32


class PointActor(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.body = keras.layers.Dense(64, activation="relu")
        self.head = TanhNormalHead(action_dim=2, hidden_units=64, low=-1.0, high=1.0, seed=1)

    def call(self, obs, mode="sample"):
        return self.head(self.body(obs), mode=mode)


class PointCritic(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.h1 = keras.layers.Dense(64, activation="relu")
        self.h2 = keras.layers.Dense(64, activation="relu")
        self.out = keras.layers.Dense(1)

    def call(self, obs, action):
        return self.out(self.h2(self.h1(tf.concat([obs, action], -1))))[:, 0]


def _env_step(obs, action):
    pos, target = obs[:, :2], obs[:, 2:]
    new = tf.clip_by_value(pos + STEP * action, -1.0, 1.0)
    reward = tf.norm(target - pos, axis=-1) - tf.norm(target - new, axis=-1)
    return tf.concat([new, target], -1), reward


def _reset(rng, n):
    return tf.constant(rng.uniform(-1, 1, size=(n, 4)).astype("float32"))


def _final_distance(policy, rng, n=512):
    obs = _reset(rng, n)
    for _ in range(HORIZON):
        obs, _ = _env_step(obs, policy(obs))
    return float(tf.reduce_mean(tf.norm(obs[:, :2] - obs[:, 2:], axis=-1)))


@pytest.mark.slow
def test_sac_learns_point_reaching():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    actor = PointActor(name="actor")
    critics = [PointCritic(name="q1"), PointCritic(name="q2")]
    targets = [PointCritic(name="tq1", trainable=False), PointCritic(name="tq2", trainable=False)]
    dummy_o, dummy_a = tf.zeros((1, 4)), tf.zeros((1, 2))
    actor(dummy_o)
    for c, t in zip(critics, targets):
        c(dummy_o, dummy_a)
        t(dummy_o, dummy_a)
        t.set_weights(c.get_weights())
    log_alpha = tf.Variable(0.0)
    opts = {k: keras.optimizers.Adam(3e-3) for k in ("actor", "critic", "alpha")}
    spec = {"observation": tf.TensorSpec((4,), tf.float32),
            "action": tf.TensorSpec((2,), tf.float32),
            "reward": tf.TensorSpec((), tf.float32),
            "next_observation": tf.TensorSpec((4,), tf.float32),
            "terminated": tf.TensorSpec((), tf.float32)}
    buffer = ReplayBuffer(spec, capacity=10000, seed=0)
    warmup = 2 * HORIZON

    @tf.function
    def step(obs, t, random_phase):
        sampled = actor(obs, mode="sample")["action"]
        uniform = tf.random.stateless_uniform(tf.shape(sampled), [t, 7], -1.0, 1.0)
        action = tf.where(random_phase, uniform, sampled)
        nxt, reward = _env_step(obs, action)
        term = tf.fill([NUM_ENVS], tf.cast(tf.equal(t % HORIZON, HORIZON - 1), tf.float32))
        buffer.add({"observation": obs, "action": action, "reward": reward,
                    "next_observation": nxt, "terminated": term})
        metrics = sac.sac_update(buffer.sample(128), actor, critics, targets, log_alpha, opts,
                                 gamma=0.9, target_entropy=-2.0)
        return nxt, metrics

    start = time.time()
    obs = _reset(rng, NUM_ENVS)
    for t in range(1200):
        if t % HORIZON == 0:
            obs = _reset(rng, NUM_ENVS)
        obs, metrics = step(obs, tf.constant(t), tf.constant(t < warmup))
    elapsed = time.time() - start

    greedy = _final_distance(lambda o: actor(o, mode="greedy")["action"], np.random.default_rng(1))
    random = _final_distance(
        lambda o: tf.constant(np.random.default_rng(2).uniform(-1, 1, (o.shape[0], 2)), tf.float32),
        np.random.default_rng(1))
    print(f"SAC point reaching: final distance {greedy:.3f} (random {random:.3f}), "
          f"alpha {float(metrics['alpha']):.3f}, {elapsed:.1f}s")
    assert np.isfinite(float(metrics["critic_loss"]))
    assert greedy < 0.35 * random, (greedy, random)
    assert greedy < 0.25, greedy
