import keras
import numpy as np
import pytest

import helpers
from keras_glimpse.layers.glimpse_network import GlimpseNetwork


def _inputs(b=3):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(b, 2, 4, 4, 1)).astype("float32"),
            rng.uniform(-1, 1, size=(b, 2)).astype("float32"))


def test_matches_hand_computation():
    net = GlimpseNetwork(glimpse_units=5, location_units=3, output_units=7)
    g, l = _inputs()
    out = net(g, l).numpy()
    relu = lambda z: np.maximum(z, 0)
    w = {d.name: (d.kernel.numpy(), d.bias.numpy()) for d in
         (net.glimpse_dense, net.location_dense, net.what_dense, net.where_dense)}
    h_g = relu(g.reshape(3, -1) @ w["glimpse_dense"][0] + w["glimpse_dense"][1])
    h_l = relu(l @ w["location_dense"][0] + w["location_dense"][1])
    expected = relu(h_g @ w["what_dense"][0] + w["what_dense"][1]
                    + h_l @ w["where_dense"][0] + w["where_dense"][1])
    assert out.shape == (3, 7)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_location_changes_output():
    net = GlimpseNetwork(8, 8, 8)
    g, l = _inputs()
    assert not np.allclose(net(g, l), net(g, -l))


def test_jit_and_roundtrips():
    net = GlimpseNetwork(8, 8, 16)
    g, l = _inputs()
    helpers.assert_jit_compiles(lambda a, b: net(a, b), g, l)
    helpers.assert_config_roundtrip(net)
    gi, li = keras.Input((2, 4, 4, 1)), keras.Input((2,))
    model = keras.Model([gi, li], GlimpseNetwork(8, 8, 16)(gi, li))
    helpers.assert_keras_roundtrip(model, [g, l])


@pytest.mark.parametrize("kwargs", [{"glimpse_units": 0}, {"location_units": -1},
                                    {"output_units": 2.5}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        GlimpseNetwork(**kwargs)
