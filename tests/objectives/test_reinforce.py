import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.categorical_head import CategoricalHead
from keras_glimpse.layers.value_head import ValueHead
from keras_glimpse.objectives import reinforce as rl


@pytest.fixture(autouse=True)
def _fresh_collective_keys():
    """Gives every MirroredStrategy of this module its own collective keys.

    Each new MirroredStrategy numbers its collectives from the same group and
    instance keys; the runtime caches them per process, so a later strategy
    reusing an instance key with another shape aborts ("Shape mismatch in the
    collective instance 100"). TF's own tests bump this base (see
    mirrored_strategy.py, "Only set this in tests").
    """
    tf.distribute.MirroredStrategy._collective_key_base += 10_000
    yield


def test_discounted_returns():
    r = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], "float32")
    np.testing.assert_allclose(rl.discounted_returns(r, 0.5), [[1.5, 1.0, 2.0], [0.5, 1.0, 0.0]])
    np.testing.assert_allclose(rl.discounted_returns(r, 0.0), r)
    np.testing.assert_allclose(rl.discounted_returns(r, 1.0), [[3, 2, 2], [1, 1, 0]])
    # dynamic time length inside a tf.function
    fn = tf.function(lambda x: rl.discounted_returns(x, 0.9),
                     input_signature=[tf.TensorSpec((None, None), tf.float32)])
    np.testing.assert_allclose(fn(r[:, :2]), [[1.0, 0.0], [0.9, 1.0]], atol=1e-6)


def test_terminal_returns():
    np.testing.assert_allclose(rl.terminal_returns(np.array([1.0, 0.0], "float32"), 3),
                               [[1, 1, 1], [0, 0, 0]])
    assert rl.terminal_returns(np.array([1, 0]), 2).dtype == tf.float32


def test_batch_mean_baseline():
    g = np.array([[1.0, 2.0], [3.0, 6.0]], "float32")
    np.testing.assert_allclose(rl.batch_mean_baseline(g), [[2, 4], [2, 4]])
    np.testing.assert_allclose(rl.batch_mean_baseline(g[:, 0]), [2, 2])


def test_self_critical_advantage():
    s = tf.Variable([1.0, -10.0])
    with tf.GradientTape() as tape:
        adv = rl.self_critical_advantage(s, tf.constant([1.0, 1.0]))
    np.testing.assert_allclose(adv, [0.0, -11.0])
    assert tape.gradient(adv, s) is None


def test_normalize_advantages():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    std = np.sqrt(5.0 / 3.0)  # unbiased (N - 1) std of 1, 2, 3, 4
    np.testing.assert_allclose(rl.normalize_advantages(a), (a - 2.5) / std, atol=1e-6)
    np.testing.assert_allclose(rl.normalize_advantages(np.full((2, 3), 7.0, "float32")), 0.0)


def test_policy_gradient_loss():
    lp = tf.Variable([[-1.0, -2.0], [-0.5, -0.1]])
    adv = tf.Variable([[0.5, -1.0], [2.0, 0.0]])
    with tf.GradientTape(persistent=True) as tape:
        loss = rl.policy_gradient_loss(lp, adv)
    np.testing.assert_allclose(loss, [-1.5, 1.0])
    np.testing.assert_allclose(tape.gradient(loss, lp), -adv.numpy())
    assert tape.gradient(loss, adv) is None
    np.testing.assert_allclose(rl.policy_gradient_loss(np.array([-1.0, -2.0]), np.array([1.0, 3.0])),
                               [1.0, 6.0])
    with pytest.raises(ValueError, match="same rank"):  # (B,) x (B, 1) would broadcast to (B, B)
        rl.policy_gradient_loss(np.array([-1.0, -2.0]), np.array([[1.0], [3.0]]))
    with pytest.raises(ValueError, match="same rank"):
        rl.baseline_loss(np.array([1.0, 2.0]), np.array([[1.0], [3.0]]))


def test_entropy_bonus_and_baseline_loss():
    np.testing.assert_allclose(rl.entropy_bonus(np.array([[1.0, 2.0], [3.0, 4.0]])), [3, 7])
    np.testing.assert_allclose(rl.entropy_bonus(np.array([1.0, 2.0])), [1, 2])
    v = tf.Variable([[1.0, 2.0]])
    g = tf.Variable([[0.0, 4.0]])
    with tf.GradientTape(persistent=True) as tape:
        loss = rl.baseline_loss(v, g)
    np.testing.assert_allclose(loss, [2.5])
    np.testing.assert_allclose(tape.gradient(loss, v), [[1.0, -2.0]])
    assert tape.gradient(loss, g) is None
    np.testing.assert_allclose(rl.baseline_loss(np.array([1.0, 0.0]), np.array([3.0, 0.0])), [4, 0])


def test_reduce_loss():
    x = np.array([1.0, 2.0, 3.0, 4.0], "float32")
    np.testing.assert_allclose(rl.reduce_loss(x), 2.5)
    np.testing.assert_allclose(rl.reduce_loss(x, global_batch_size=8), 1.25)


def test_statistics_are_global_inside_a_replica_context():
    strategy = helpers.two_cpu_strategy()
    x = np.array([[1.0], [3.0], [10.0], [30.0]], "float32")  # replica 0: 1, 3; replica 1: 10, 30
    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(x))

    @tf.function
    def step(batch):
        return strategy.run(lambda b: (rl.batch_mean_baseline(b), rl.normalize_advantages(b)),
                            args=(batch,))

    base, norm = step(next(iter(dist)))
    base = np.concatenate([t.numpy() for t in strategy.experimental_local_results(base)])
    norm = np.concatenate([t.numpy() for t in strategy.experimental_local_results(norm)])
    np.testing.assert_allclose(base, np.full((4, 1), 11.0))
    np.testing.assert_allclose(norm, (x - x.mean()) / x.std(ddof=1), atol=1e-5)


# --------------------------------------------- a REINFORCE train_step, 1 vs 2 replicas
def _local_baseline(g):
    return tf.broadcast_to(tf.reduce_mean(g, axis=0), tf.shape(g))


def _local_normalize(a):
    return (a - tf.reduce_mean(a)) / tf.maximum(tf.math.reduce_std(a), 1e-8)


class _Agent(keras.Model):
    """Two-step REINFORCE agent: categorical policy, batch-mean baseline,
    normalised advantages, entropy bonus and a learned value baseline."""

    def __init__(self, local_statistics=False, **kwargs):
        super().__init__(**kwargs)
        self.policy = CategoricalHead(3, hidden_units=8, seed=1)
        self.value = ValueHead()
        self.local_statistics = local_statistics

    def call(self, x):
        return self.policy(x, mode="greedy")["logits"], self.value(x)

    def train_step(self, data):
        x, reward_scale = data
        baseline = _local_baseline if self.local_statistics else rl.batch_mean_baseline
        normalize = _local_normalize if self.local_statistics else rl.normalize_advantages
        with tf.GradientTape() as tape:
            log_probs, entropies, rewards, values = [], [], [], []
            for t in range(2):
                feats = x * float(t + 1)
                out = self.policy(feats, mode="sample")
                log_probs.append(out["log_prob"])
                entropies.append(out["entropy"])
                rewards.append(reward_scale[:, t] * (1.0 + tf.cast(out["action"], tf.float32)))
                values.append(self.value(tf.stop_gradient(feats)))
            log_probs, entropies = tf.stack(log_probs, 1), tf.stack(entropies, 1)
            rewards, values = tf.stack(rewards, 1), tf.stack(values, 1)
            returns = rl.discounted_returns(rewards, 0.9)
            adv = normalize(returns - baseline(returns))
            per_example = (rl.policy_gradient_loss(log_probs, adv)
                           - 0.01 * rl.entropy_bonus(entropies)
                           + 0.5 * rl.baseline_loss(values, returns))
            loss = rl.reduce_loss(per_example)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    # the two halves (the two replicas' shards) get very different rewards
    scale = np.concatenate([np.full((4, 2), 5.0), np.full((4, 2), 0.2)]).astype("float32")
    scale[::3] *= -1.0
    return x, scale


def _build(local_statistics=False):
    def build():
        model = _Agent(local_statistics=local_statistics)
        model(np.zeros((1, 4), "float32"))
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        return model
    return build


def test_reinforce_train_step_one_vs_two_replicas():
    x, scale = _data()
    single, _ = helpers.assert_replica_equivalence(_build(), x, scale, steps=2,
                                                   trained="all", control=True)
    assert any(not np.allclose(w, 0) for w in single.get_weights())


def test_replica_check_catches_per_replica_statistics():
    """Negative control: per-replica baselines/normalisation break equivalence."""
    x, scale = _data()
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        helpers.assert_replica_equivalence(_build(local_statistics=True), x, scale, steps=2)
