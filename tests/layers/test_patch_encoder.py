import keras
import numpy as np
import pytest

import helpers
from keras_glimpse.layers.patch_encoder import PatchEncoder


def _inputs(b=4, p=8, c=1):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(b, p, p, c)).astype("float32"),
            rng.uniform(-1, 1, size=(b, 2)).astype("float32"))


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_shapes_and_norm_type(norm):
    enc = PatchEncoder(embed_dim=16, norm=norm, filters=(8, 16), hidden_units=32)
    x, l = _inputs()
    out = enc(x, l, training=True)
    assert out.shape == (4, 16)
    assert enc.conv2.strides == (2, 2)
    if norm == "batch":
        assert isinstance(enc.norm1, keras.layers.BatchNormalization) and enc.norm1.synchronized
    else:
        assert isinstance(enc.norm1, keras.layers.LayerNormalization)
    # conv2 halves the spatial size (stride 2, 'same' like PyTorch pad=1)
    assert tuple(enc.conv2.compute_output_shape((None, 8, 8, 8))) == (None, 4, 4, 16)


def test_location_is_added_after_pooling():
    enc = PatchEncoder(embed_dim=8, filters=(4, 8), hidden_units=16)
    x, l = _inputs()
    a = enc(x, l).numpy()
    assert not np.allclose(a, enc(x, -l).numpy())
    # with a zero location kernel and bias, the location has no effect
    enc.location_dense.kernel.assign(np.zeros((2, 8), "float32"))
    np.testing.assert_allclose(enc(x, l), enc(x, -l), atol=1e-6)


def test_jit_and_roundtrips():
    enc = PatchEncoder(embed_dim=8, filters=(4, 8), hidden_units=16)
    x, l = _inputs()
    helpers.assert_jit_compiles(lambda a, b: enc(a, b), x, l)
    helpers.assert_config_roundtrip(enc)
    xi, li = keras.Input((8, 8, 1)), keras.Input((2,))
    model = keras.Model([xi, li], PatchEncoder(embed_dim=8, norm="batch", filters=(4, 8),
                                               hidden_units=16)(xi, li))
    helpers.assert_keras_roundtrip(model, [x, l])


@pytest.mark.parametrize("kwargs", [{"embed_dim": 0}, {"norm": "group"}, {"filters": (8,)},
                                    {"hidden_units": None}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        PatchEncoder(**kwargs)
