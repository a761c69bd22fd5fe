"""RAM and URAM: shapes, config, losses, saving, export, replicas, XLA."""

import numpy as np
import pytest
import tensorflow as tf
import keras

import helpers
from keras_glimpse.models.ram import RAM, URAM, ram_loss, reconstruction_errors, uram_loss

SMALL = dict(num_glimpses=3, glimpse_size=4, num_scales=2, glimpse_units=8, location_units=8,
             hidden_units=16, location_hidden_units=8)


def small_ram(**kw):
    args = dict(image_shape=(16, 16, 1), num_classes=3, seed=1, **SMALL)
    args.update(kw)
    model = RAM(**args)
    model.build_from_image_shape()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def small_uram(**kw):
    args = dict(image_shape=(12, 12, 3), seed=1, **SMALL)
    args.update(kw)
    model = URAM(**args)
    model.build_from_image_shape()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def images(shape=(4, 16, 16, 1), seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


# ----------------------------------------------------------------- losses by hand
def test_ram_loss_hand_computed():
    logits = tf.constant([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = tf.constant([0, 2])
    log_probs = tf.constant([[-1.0, -2.0], [-0.5, 0.5]])
    baselines = tf.constant([[0.5, 0.25], [0.2, 0.1]])
    t = ram_loss(logits, labels, log_probs, baselines, reinforce_weight=0.1)
    lse0 = np.log(np.exp(2) + 2)
    lse1 = np.log(np.exp(1) + 2)
    nll = np.array([lse0 - 2.0, lse1 - 0.0])
    reward = np.array([1.0, 0.0])  # argmax 0 == 0; argmax 1 != 2
    base = np.array([((0.5 - 1) ** 2 + (0.25 - 1) ** 2) / 2, (0.2 ** 2 + 0.1 ** 2) / 2])
    pg = np.array([-(-1.0 * 0.5 + -2.0 * 0.75), -(-0.5 * -0.2 + 0.5 * -0.1)])
    np.testing.assert_allclose(t["nll"], nll, rtol=1e-6)
    np.testing.assert_allclose(t["reward"], reward)
    np.testing.assert_allclose(t["baseline"], base, rtol=1e-6)
    np.testing.assert_allclose(t["reinforce"], pg, rtol=1e-6)
    np.testing.assert_allclose(t["total"], nll + base + 0.1 * pg, rtol=1e-6)


def test_ram_loss_gradient_routing():
    logits = tf.Variable([[2.0, 0.0, 0.0]])
    log_probs = tf.Variable([[-1.0, -2.0]])
    baselines = tf.Variable([[0.5, 0.25]])
    with tf.GradientTape() as tape:
        t = ram_loss(logits, tf.constant([0]), log_probs, baselines)
        loss = t["reinforce"]
    g_logits, g_lp, g_b = tape.gradient(loss, [logits, log_probs, baselines])
    assert g_logits is None and g_b is None  # advantage and reward are constants
    np.testing.assert_allclose(g_lp, [[-0.5, -0.75]])


def test_uram_loss_hand_computed():
    x = tf.fill((1, 1, 1, 2), 1.0)  # e_0 = 1
    # Cumulative reconstructions after 3 glimpses: 0.5, 0.75, 1.0 (+ second pixel 0, 0.5, 1).
    recon = tf.constant([[[[[0.5, 0.0]]], [[[0.75, 0.5]]], [[[1.0, 1.0]]]]])
    errors = reconstruction_errors(x, recon)
    e = np.array([1.0, (0.25 + 1) / 2, (0.0625 + 0.25) / 2, 0.0])
    np.testing.assert_allclose(errors[0], e, rtol=1e-6)
    log_probs = tf.constant([[-1.0, -2.0]])
    baselines = tf.constant([[0.1, 0.2]])
    t = uram_loss(x, recon, log_probs, baselines, reinforce_weight=0.5, discount=1.0)
    r = e[:-1] - e[1:]  # r_1, r_2, r_3
    g = np.array([r[1] + r[2], r[2]])  # returns of the locations chosen at h_1, h_2
    assert g[0] == pytest.approx(e[1] - e[3])
    base = np.mean((np.array([0.1, 0.2]) - g) ** 2)
    pg = -(-1.0 * (g[0] - 0.1) + -2.0 * (g[1] - 0.2))
    rec = e[1:].mean()
    np.testing.assert_allclose(t["reconstruction"], [rec], rtol=1e-6)
    np.testing.assert_allclose(t["baseline"], [base], rtol=1e-6)
    np.testing.assert_allclose(t["reinforce"], [pg], rtol=1e-6)
    np.testing.assert_allclose(t["reward"], [e[0] - e[3]], rtol=1e-6)
    np.testing.assert_allclose(t["total"], [rec + base + 0.5 * pg], rtol=1e-6)
    # Lower error is a higher reward: an action followed by improvement is reinforced.
    assert g[0] > 0
    half = uram_loss(x, recon, log_probs, baselines, discount=0.5)
    np.testing.assert_allclose(half["baseline"],
                               [np.mean((np.array([0.1, 0.2]) - [r[1] + 0.5 * r[2], r[2]]) ** 2)],
                               rtol=1e-6)


def test_uram_reward_has_no_gradient():
    x = tf.ones((1, 2, 2, 1))
    recon = tf.Variable(tf.fill((1, 3, 2, 2, 1), 0.3))
    log_probs = tf.Variable([[-1.0, -1.0]])
    with tf.GradientTape() as tape:
        pg = uram_loss(x, recon, log_probs, tf.zeros((1, 2)))["reinforce"]
    assert tape.gradient(pg, recon) is None


# ----------------------------------------------------------------- model contract
def test_ram_shapes_and_policies():
    model = small_ram()
    x = images()
    assert model(x).shape == (4, 3)
    out = model.rollout(tf.constant(x), mode="sample", training=True)
    assert out["locations"].shape == (4, 3, 2)
    assert out["log_probs"].shape == (4, 2) and out["baselines"].shape == (4, 2)
    assert out["hidden_states"].shape == (4, 3, 16)
    greedy = model.rollout(tf.constant(x), mode="greedy")
    np.testing.assert_array_equal(greedy["locations"][:, 0], 0.0)  # l_0 = centre
    np.testing.assert_allclose(greedy["predictions"], model.rollout(tf.constant(x))["predictions"])
    # RAM: every learned rollout starts at the centre (training = evaluation),
    # and the untrained policy mean is the centre too (zero output kernel).
    np.testing.assert_array_equal(out["locations"][:, 0], 0.0)
    np.testing.assert_array_equal(model.location_head.mean_dense.kernel, 0.0)
    np.testing.assert_array_equal(greedy["locations"], 0.0)
    assert 0 < np.abs(out["locations"][:, 1:]).max() < 0.5  # std 0.05 around the centre
    rnd_sampled = model.rollout(tf.constant(x), mode="sample", policy="random")["locations"]
    assert np.abs(rnd_sampled[:, 0]).max() > 0.1  # the random policy's l_0 is random
    uram = small_uram()  # URAM keeps upstream's uniform random l_0 when sampling
    u_out = uram.rollout(tf.constant(images((4, 12, 12, 3))), mode="sample")
    assert np.abs(u_out["locations"][:, 0]).max() > 0.1
    assert np.abs(uram.location_head.mean_dense.kernel).max() > 0
    centre = model.rollout(tf.constant(x), mode="sample", policy="center")["locations"]
    np.testing.assert_array_equal(centre, 0.0)
    rnd = model.rollout(tf.constant(x), mode="greedy", policy="random")["locations"]
    assert np.abs(rnd).max() <= 1.0 and np.std(rnd) > 0.2
    learned = greedy["locations"][:, 1:]
    assert np.abs(learned).max() <= 1.0
    one = small_ram(num_glimpses=1)
    assert one.rollout(tf.constant(x))["log_probs"].shape == (4, 0)
    one.fit(x, np.zeros(4), epochs=1, verbose=0)


def test_constructor_validation_and_config():
    with pytest.raises(ValueError, match="policy='greedy'"):
        RAM(policy="greedy")
    with pytest.raises(ValueError, match="num_glimpses=0"):
        RAM(num_glimpses=0)
    with pytest.raises(ValueError, match="std=0"):
        RAM(std=0)
    with pytest.raises(ValueError, match="discount=2"):
        URAM(discount=2.0)
    with pytest.raises(ValueError, match="decoder_activation='nope'"):
        URAM(decoder_activation="nope")
    for model in (small_ram(policy="random"), small_uram(decoder_activation="sigmoid")):
        clone = helpers.assert_config_roundtrip(model)
        assert clone.policy == model.policy
    cfg = small_ram().get_config()
    import inspect

    params = set(inspect.signature(RAM.__init__).parameters) - {"self", "kwargs"}
    assert params <= set(cfg) and set(cfg) - params <= {"name", "trainable"}


def test_ram_keras_and_export_roundtrip():
    model = small_ram()
    model.fit(images(), np.arange(4) % 3, epochs=1, verbose=0)
    helpers.assert_keras_roundtrip(model, images(seed=2))
    served, sampled = helpers.assert_export_roundtrip(model, images(seed=3), num_samples=3)
    assert served["locations"].shape == (4, 3, 2)
    assert sampled["predictions"].shape == (4, 3)
    # Monte Carlo predictions are averaged log-probabilities (a geometric mean of
    # the M distributions: each entry <= 0, total mass <= 1 by Jensen).
    mass = np.exp(np.asarray(sampled["predictions"])).sum(-1)
    assert np.all(np.asarray(sampled["predictions"]) <= 0)
    assert np.all(mass <= 1 + 1e-5) and np.all(mass > 0.5)


def test_uram_shapes_keras_and_export_roundtrip():
    model = small_uram()
    x = images((2, 12, 12, 3))
    out = model.rollout(tf.constant(x))
    assert out["reconstructions"].shape == (2, 3, 12, 12, 3)
    np.testing.assert_allclose(out["predictions"], out["reconstructions"][:, -1])
    # cumulative: X_t - X_{t-1} is the decoder of h_t
    step = model.decoder(out["hidden_states"][:, 1])
    np.testing.assert_allclose(
        np.reshape(out["reconstructions"][:, 1] - out["reconstructions"][:, 0], (2, -1)), step,
        atol=1e-5)
    model.fit(x, epochs=1, verbose=0)
    helpers.assert_keras_roundtrip(model, x)
    helpers.assert_export_roundtrip(model, x, num_samples=2)


_SHARED = {}


def _sgd(make):
    # Plain SGD: Adam is scale invariant and would hide a gradient N times too large.
    def build():
        model = make()
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        return model
    return build


@pytest.mark.parametrize("make,y", [(small_ram, np.array([0, 1, 2, 1])), (small_uram, None)])
def test_replica_equivalence(make, y, monkeypatch):
    """One SGD step on 2 replicas equals one on 1 device; every weight (the
    location head's too: the sampling noise is non-zero) moves, and a planted
    per-replica loss mean is caught."""
    # Two MirroredStrategy objects in one process reuse collective instance
    # keys and abort with a shape mismatch; share one strategy per session.
    if "strategy" not in _SHARED:
        _SHARED["strategy"] = helpers.two_cpu_strategy()
    monkeypatch.setattr(helpers, "two_cpu_strategy", lambda: _SHARED["strategy"])
    x = images((4, 16, 16, 1)) if make is small_ram else images((4, 12, 12, 3))
    # Two steps: the location head's output kernel starts at zero, so its
    # hidden layer gets a gradient from the second step on.
    helpers.assert_replica_equivalence(_sgd(make), x, y, steps=2, trained="all",
                                       control=True)


def test_train_step_jit_compiles():
    """The XLA-compiled train step gives the eager step's losses and weights.

    Same seed and weights; the sampling noise is the fixed (non-zero) one of
    `deterministic_sampling`, because TF's stateless RNG picks another
    algorithm under XLA than on the CPU kernels (different draws for one seed)."""
    x, y = images(), np.array([0, 1, 2, 1])
    for make, data in ((small_ram, (x, y)), (small_uram, (images((4, 12, 12, 3)),))):
        results = []
        for jit in (False, True):
            keras.utils.set_random_seed(7)
            model = make()  # seed=1: the same initial weights
            model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
            ds = tf.data.Dataset.from_tensors(data).repeat(2)
            with helpers.deterministic_sampling():
                hist = model.fit(ds, epochs=2, steps_per_epoch=1, verbose=0).history
            results.append((hist, model.get_weights()))
        (eager, w_eager), (xla, w_xla) = results
        expected = ({"loss", "accuracy", "reward", "baseline_loss"} if make is small_ram
                    else {"loss", "reconstruction_mse", "reward", "baseline_loss"})
        assert set(eager) == set(xla) == expected
        for k in eager:
            np.testing.assert_allclose(xla[k], eager[k], rtol=1e-4, atol=1e-5, err_msg=k)
        for a, b in zip(w_xla, w_eager):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    helpers.assert_jit_compiles(lambda t: small_ram_fixed(t), tf.constant(images()))


_FIXED = {}


def small_ram_fixed(x):
    if "m" not in _FIXED:
        _FIXED["m"] = small_ram()
    return _FIXED["m"].rollout(x, mode="greedy")["predictions"]


def test_train_step_updates_heads_only_by_their_losses():
    model = small_ram()
    x, y = tf.constant(images()), tf.constant([0, 1, 2, 1])
    with tf.GradientTape(persistent=True) as tape:
        out = model.rollout(x, mode="sample", training=True)
        t = ram_loss(out["predictions"], y, out["log_probs"], out["baselines"])
        nll, pg = tf.reduce_mean(t["nll"]), tf.reduce_mean(t["reinforce"])
    head_vars = model.location_head.trainable_variables
    assert all(g is None for g in tape.gradient(nll, head_vars))
    assert all(g is not None for g in tape.gradient(pg, head_vars))
    assert all(g is None for g in tape.gradient(pg, model.core.trainable_variables))


def test_monte_carlo_and_policy_evaluation():
    model = small_ram()
    ds = tf.data.Dataset.from_tensor_slices((images((6, 16, 16, 1)), np.arange(6) % 3)).batch(3)
    for m in (1, 4):
        r = model.evaluate_monte_carlo(ds, num_samples=m)
        assert r["count"] == 6 and 0 <= r["error"] <= 100
    for policy in ("learned", "random", "center"):
        assert model.evaluate_policy(ds, policy=policy)["count"] == 6
    metrics = model.evaluate(ds, verbose=0, return_dict=True)
    assert set(metrics) == {"loss", "accuracy", "reward", "baseline_loss"}


def test_uram_evaluation_helpers():
    model = small_uram()
    x = images((6, 12, 12, 3))
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(6) % 2)).batch(3)
    curve = model.reconstruction_curve(ds)
    assert curve.shape == (4,)
    assert curve[0] == pytest.approx(float(np.mean(x ** 2)), rel=1e-5)
    probe = model.linear_probe(ds, test_dataset=ds, num_classes=2, epochs=2)
    assert 0.0 <= probe["train_accuracy"] <= 1.0 and "test_accuracy" in probe


def test_registry_presets_build():
    import keras_glimpse

    for name, shape, out in [("ram_mnist28", (28, 28, 1), (1, 10)),
                             ("uram_c10", (32, 32, 3), (1, 32, 32, 3)),
                             ("uram_mnist28", (28, 28, 1), (1, 28, 28, 1))]:
        model = keras_glimpse.build(name, compile=False)
        assert model(tf.zeros((1,) + shape)).shape == out
    model = keras_glimpse.build("ram_cluttered100", compile=False, hidden_units=16)
    assert model.num_scales == 4 and model.image_shape == (100, 100, 1)


def test_random_start_is_uniform_when_sampling_and_centred_when_greedy():
    from keras_glimpse.models.ram import RAM

    model = RAM(image_shape=(28, 28, 1), num_glimpses=2, hidden_units=16, glimpse_units=8,
                location_units=8, location_hidden_units=8, start="random", seed=4)
    x = tf.zeros((400, 28, 28, 1))
    first = model.rollout(x, mode="sample")["locations"][:, 0].numpy()
    assert first.min() > -1.0 and first.max() < 1.0
    assert abs(first.mean()) < 0.1 and 0.25 < first.var() < 0.42  # uniform [-1, 1]: var 1/3
    greedy = model.rollout(x, mode="greedy")["locations"][:, 0].numpy()
    np.testing.assert_array_equal(greedy, 0.0)
    centred = RAM(image_shape=(28, 28, 1), num_glimpses=2, hidden_units=16, seed=4)
    np.testing.assert_array_equal(centred.rollout(x, mode="sample")["locations"][:, 0], 0.0)
    assert RAM.from_config(model.get_config()).start == "random"
    with pytest.raises(ValueError, match="start"):
        RAM(start="corner")
