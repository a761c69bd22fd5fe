import numpy as np
import pytest
import tensorflow as tf

from helpers import assert_config_roundtrip, assert_jit_compiles, assert_layer_saved_model_roundtrip
from keras_glimpse.layers.glimpse_actor_critic import GlimpseActorCritic


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
