import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse.layers.attention_rollout import attention_rollout


def _reference(att, discard=0.5):
    """Straight numpy version of the rollout for one sample without padding."""
    n1 = att.shape[-1]
    r = np.eye(n1)
    for layer in att:
        a = layer.mean(0).copy()
        flat = a.reshape(-1)
        k = int(np.floor(flat.size * discard))
        order = np.argsort(flat, kind="stable")
        drop = order[:k]
        drop = drop[drop != 0]
        flat[drop] = 0
        a = flat.reshape(n1, n1)
        a = (a + np.eye(n1)) / 2
        a = a / a.sum(-1, keepdims=True)
        r = a @ r
    row = r[0, 1:]
    e = np.exp(row - row.max())
    return e / e.sum()


def test_matches_reference_and_masks_padding():
    rng = np.random.default_rng(0)
    att = rng.random((2, 1, 3, 5, 5)).astype("float32")  # L, B, heads, N+1, N+1
    att /= att.sum(-1, keepdims=True)
    got = attention_rollout(list(att))[0, :, 0].numpy()
    np.testing.assert_allclose(got, _reference(att[:, 0]), atol=1e-5)
    # Padding: the last two slots are empty -> zero importance, the rest sums to 1.
    mask = tf.constant([[0.0, 0.0, 1.0, 1.0]])
    padded = att.copy()
    padded[..., 3:] = 0.0
    padded /= padded.sum(-1, keepdims=True)
    imp = attention_rollout(list(padded), mask)[0, :, 0].numpy()
    np.testing.assert_allclose(imp[2:], 0.0)
    np.testing.assert_allclose(imp.sum(), 1.0, atol=1e-5)
    np.testing.assert_allclose(imp[:2], _reference(padded[:, 0, :, :3, :3]), atol=1e-5)


def test_validation():
    with pytest.raises(ValueError, match="discard_ratio"):
        attention_rollout([tf.zeros((1, 1, 2, 2))], discard_ratio=1.5)
