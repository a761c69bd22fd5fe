import keras
import numpy as np
import pytest

import helpers
from keras_glimpse.layers.value_head import ValueHead


def test_linear_and_hidden_match_hand_computation():
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    lin = ValueHead()
    v = lin(x).numpy()
    assert v.shape == (4,)
    np.testing.assert_allclose(v, (x @ lin.value_dense.kernel.numpy()
                                   + lin.value_dense.bias.numpy())[:, 0], atol=1e-5)
    mlp = ValueHead(hidden_units=5)
    out = mlp(x)
    h = np.maximum(x @ mlp.hidden_dense.kernel.numpy() + mlp.hidden_dense.bias.numpy(), 0)
    np.testing.assert_allclose(out, (h @ mlp.value_dense.kernel.numpy())[:, 0]
                               + mlp.value_dense.bias.numpy()[0], atol=1e-5)


def test_jit_and_roundtrips():
    head = ValueHead(hidden_units=6)
    x = np.ones((2, 3), "float32")
    helpers.assert_jit_compiles(head, x)
    helpers.assert_config_roundtrip(head)
    inp = keras.Input((3,))
    helpers.assert_keras_roundtrip(keras.Model(inp, ValueHead(4)(inp)), x)
    with pytest.raises(ValueError, match="received"):
        ValueHead(hidden_units=0)
