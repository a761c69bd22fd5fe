import numpy as np
import pytest
import tensorflow as tf

from helpers import assert_config_roundtrip, assert_jit_compiles, assert_layer_saved_model_roundtrip
from keras_glimpse.backbones.elastic_vit import VIT_SIZES, ElasticViT


def _inputs(b=2, n=5, p=8):
    patches = tf.random.uniform((b, n, p, p, 1), seed=1)
    boxes = tf.random.uniform((b, n, 4), 0, 32, seed=2)
    mask = tf.constant([[0.0, 0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0, 1.0]])[:b]
    return patches, boxes, mask


def test_sizes_and_outputs():
    assert VIT_SIZES["base"] == (768, 12, 12)
    assert VIT_SIZES["small"] == (384, 12, 6)
    assert VIT_SIZES["large"] == (1024, 24, 16)
    vit = ElasticViT("tiny", patch_size=8)
    patches, boxes, mask = _inputs()
    out = vit(patches, boxes, mask, return_importance=True, latent_layer=2)
    assert out["tokens"].shape == (2, 6, 96)
    assert out["latent"].shape == (2, 6, 96)
    imp = out["importance"][..., 0].numpy()
    np.testing.assert_allclose(imp.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(imp[0, 3:], 0.0)
    np.testing.assert_allclose(imp[1, 0], 1.0, atol=1e-6)


def test_padded_slots_do_not_change_valid_tokens():
    vit = ElasticViT("tiny", patch_size=8, depth=2)
    patches, boxes, mask = _inputs(1)
    a = vit(patches, boxes, mask)["tokens"]
    patches2 = tf.concat([patches[:, :3], 9.0 + patches[:, 3:]], axis=1)
    b = vit(patches2, boxes, mask)["tokens"]
    np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-5)


def test_validation_config_jit_saved_model():
    with pytest.raises(ValueError, match="size='huge'"):
        ElasticViT("huge")
    vit = ElasticViT("tiny", patch_size=8, depth=1)
    assert_config_roundtrip(vit)
    patches, boxes, mask = _inputs()
    fn = lambda p, b, m: vit(p, b, m, return_importance=True)
    assert_jit_compiles(fn, patches, boxes, mask)
    assert_layer_saved_model_roundtrip(
        vit, (patches, boxes, mask), call=lambda l, x: l(x[0], x[1], x[2])["tokens"])
