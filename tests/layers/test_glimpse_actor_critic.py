import numpy as np
import pytest
import tensorflow as tf

from helpers import assert_config_roundtrip, assert_jit_compiles, assert_layer_saved_model_roundtrip
from keras_glimpse.layers.glimpse_actor_critic import GlimpseActorCritic, conv_matrix_index


def _state(b=2, n=4, p=16, d=8):
    mask = np.zeros((b, n, 1), "float32")
    mask[:, 2:] = 1.0
    return {"patches": tf.random.uniform((b, n, p, p, 3), seed=1),
            "importance": tf.random.uniform((b, n, 1), seed=2),
            "coords": tf.random.uniform((b, n, 4), seed=3),
            "latent": tf.random.normal((b, n, d), seed=4),
            "mask": tf.constant(mask)}


def test_actor_outputs_in_unit_box_and_critic_shape():
    state = _state()
    actor = GlimpseActorCritic("actor", hidden_units=32, seed=0)
    out = actor(state, mode="sample")
    a = out["action"].numpy()
    assert a.shape == (2, 3) and (a >= 0).all() and (a <= 1).all()
    assert out["log_prob"].shape == (2,)
    greedy = actor(state, mode="greedy")
    np.testing.assert_allclose(greedy["action"], greedy["mean"])
    q = GlimpseActorCritic("critic", hidden_units=32)(state, tf.zeros((2, 3)))
    assert q.shape == (2,)


def test_empty_slots_are_ignored_and_small_patches_work():
    critic = GlimpseActorCritic("critic", hidden_units=16, num_heads=4)
    state = _state(p=8)
    q = critic(state, tf.ones((2, 3)) * 0.5)
    changed = dict(state)
    changed["latent"] = tf.concat([state["latent"][:, :2], state["latent"][:, 2:] + 9.0], 1)
    changed["patches"] = tf.concat([state["patches"][:, :2], state["patches"][:, 2:] + 9.0], 1)
    np.testing.assert_allclose(critic(changed, tf.ones((2, 3)) * 0.5), q, atol=1e-5)


def test_ablation_and_validation():
    actor = GlimpseActorCritic("actor", hidden_units=24, num_heads=4, exclude_inputs=["latent"])
    assert actor.parts == ["patches", "importance", "coords"]
    actor(_state())
    with pytest.raises(ValueError, match="role='value'"):
        GlimpseActorCritic("value")
    with pytest.raises(ValueError, match="num_heads=5"):
        GlimpseActorCritic("actor", hidden_units=32, num_heads=5)
    with pytest.raises(ValueError, match="exclude_inputs"):
        GlimpseActorCritic("actor", exclude_inputs=("pixels",))
    with pytest.raises(ValueError, match="actions"):
        GlimpseActorCritic("critic", hidden_units=16)(_state())


def test_config_jit_saved_model():
    critic = GlimpseActorCritic("critic", hidden_units=16, num_heads=4)
    assert_config_roundtrip(critic)
    state = _state()
    act = tf.random.uniform((2, 3))
    assert_jit_compiles(lambda s, a: critic(s, a), state, act)
    assert_layer_saved_model_roundtrip(critic, (state, act), call=lambda l, x: l(x[0], x[1]))
    actor = GlimpseActorCritic("actor", hidden_units=16, num_heads=4, seed=1)
    assert_jit_compiles(lambda s: actor(s, mode="greedy")["action"], state)


def test_an_empty_or_black_state_keeps_gradients_moderate():
    """The first state of an episode is all empty and most digit-canvas patches are
    black: every layer feeding a LayerNorm then outputs its bias alone. With Keras'
    zero bias init that has zero variance and the norm multiplies gradients by
    1/sqrt(1e-6) per layer (gradients of 1e13 measured); random biases keep them O(1)."""
    zeros = {k: tf.zeros_like(v) for k, v in _state().items()}
    zeros["mask"] = tf.ones_like(zeros["mask"])  # all slots empty: the first step
    for role in ("critic", "actor"):
        net = GlimpseActorCritic(role, hidden_units=32, seed=0)
        with tf.GradientTape() as tape:
            out = (net(zeros, tf.fill((2, 3), 0.5)) if role == "critic"
                   else net(zeros, mode="greedy")["mean"])
            total = tf.reduce_sum(out)
        grads = tape.gradient(total, net.trainable_variables)
        largest = max(float(tf.reduce_max(tf.abs(g))) for g in grads if g is not None)
        assert np.isfinite(largest) and largest < 20.0, (role, largest)


@pytest.mark.parametrize("p", [8, 16])
def test_fast_path_equals_the_plain_call(p):
    """`fast=True` (the RL training step's CNN: filled slots only, and for small
    patches the convolutions as matrix products) gives the plain call's values
    and weight gradients when empty slots hold zero patches, as AdaGlimpse's
    do: a row with every slot empty (the first state of an episode), one with
    some and one with none."""
    b, n = 3, 5
    mask = np.zeros((b, n, 1), "float32")
    mask[0] = 1.0
    mask[1, 2:] = 1.0
    state = _state(b, n, p)
    state["mask"] = tf.constant(mask)
    state["patches"] = state["patches"] * (1.0 - mask)[..., None, None]
    actions = tf.random.uniform((b, 3), seed=5)
    for role in ("actor", "critic"):
        net = GlimpseActorCritic(role, hidden_units=16, num_heads=4, seed=0)
        results = []
        for fast in (False, True):
            with tf.GradientTape() as tape:
                if role == "critic":
                    out = net(state, actions, fast=fast)
                else:
                    pi = net(state, mode="greedy", fast=fast)
                    out = tf.concat([pi["mean"], pi["log_prob"][:, None]], -1)
                loss = tf.reduce_sum(tf.sin(3.0 * out))
            results.append((out, tape.gradient(loss, net.trainable_variables)))
        (plain, plain_grads), (fast, fast_grads) = results
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5, err_msg=role)
        for v, a, g in zip(net.trainable_variables, plain_grads, fast_grads):
            # (conv as a matrix product sums in another order: 1.6e-5 seen on |g| ~ 0.1)
            np.testing.assert_allclose(g, a, rtol=1e-4, atol=5e-5, err_msg=f"{role} {v.path}")


def test_conv_as_a_matrix_product():
    rng = np.random.default_rng(0)
    for shape, filters, padding in (((8, 8, 1), 8, "same"), ((4, 4, 8), 32, "same"),
                                    ((6, 6, 3), 4, "valid")):
        index, out_shape = conv_matrix_index(shape, 5, filters, padding)
        kernel = rng.normal(size=(5, 5, shape[2], filters)).astype("float32")
        x = rng.normal(size=(2,) + shape).astype("float32")
        matrix = np.append(kernel.reshape(-1), 0.0)[index]
        np.testing.assert_allclose(
            (x.reshape(2, -1) @ matrix).reshape((2,) + out_shape),
            tf.nn.conv2d(x, kernel, 1, padding.upper()), rtol=1e-5, atol=1e-5)
    # A sparse product (a 5x5 window over 16x16: under 10 % taps) stays a convolution.
    assert conv_matrix_index((16, 16, 3), 5, 8, "valid") is None
