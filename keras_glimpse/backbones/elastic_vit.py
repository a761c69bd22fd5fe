"""The elastic ViT encoder of AdaGlimpse: tokens from patches of arbitrary boxes."""

import keras
import tensorflow as tf

from keras_glimpse.layers.attention_rollout import attention_rollout
from keras_glimpse.layers.elastic_position_encoding import ElasticPositionEncoding
from keras_glimpse.layers.vit_block import ViTBlock
from keras_glimpse.validation import positive_int

# size -> (embed_dim, depth, num_heads)
VIT_SIZES = {
    "tiny": (96, 4, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}


@keras.saving.register_keras_serializable(package="keras_glimpse")
class ElasticViT(keras.layers.Layer):
    """ViT encoder over a padded set of patches with arbitrary pixel boxes.

    Each `patch_size x patch_size` patch is flattened and embedded by a dense
    layer (a kernel = stride = patch conv, xavier-uniform); the fixed elastic
    sin-cos encoding of its box (`ElasticPositionEncoding`) is added; a learned
    CLS token (N(0, 0.02^2), no position encoding) is prepended; then `depth`
    LayerScale pre-norm blocks (`ViTBlock`) with the key-padding mask (never on
    CLS) and a final LayerNorm.

    Sizes (`embed_dim`, `depth`, `num_heads`): `tiny` (96, 4, 3, for CPU and
    tests), `small` (384, 12, 6), `base` (768, 12, 12), `large` (1024, 24, 16).

    Args:
        size: one of `"tiny"`, `"small"`, `"base"`, `"large"`.
        patch_size: patch side in pixels (16).
        embed_dim, depth, num_heads: optional overrides of the size table.
        mlp_ratio: MLP width / D (4).
        layer_scale_init: LayerScale initial value (1e-4).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        patches: `(B, N, patch_size, patch_size, C)`.
        boxes: `(B, N, 4)` pixel boxes `(y1, x1, y2, x2)`.
        padding_mask: optional `(B, N)`, 1 marks an empty slot.
        return_importance: also return the attention-rollout importance.
        latent_layer: optional int k: also return the input of block k as
            `"latent"` (AdaGlimpse's `--extract-latent-layer`).

    Returns:
        dict with `"tokens"` `(B, N+1, D)` (CLS first), and optionally
        `"importance"` `(B, N, 1)` and `"latent"` `(B, N+1, D)`.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.backbones.elastic_vit import ElasticViT
    >>> vit = ElasticViT("tiny")
    >>> out = vit(np.zeros((2, 4, 16, 16, 3), "float32"), np.zeros((2, 4, 4), "float32"))
    >>> tuple(out["tokens"].shape)
    (2, 5, 96)

    Reference:
        Pardyl et al., "AdaGlimpse", ECCV 2024; Dosovitskiy et al., "An Image
        is Worth 16x16 Words", ICLR 2021; Touvron et al., "DeiT III", 2022.
    """

    def __init__(self, size="base", patch_size=16, embed_dim=None, depth=None, num_heads=None,
                 mlp_ratio=4.0, layer_scale_init=1e-4, **kwargs):
        super().__init__(**kwargs)
        if size not in VIT_SIZES:
            raise ValueError(f"`size` must be one of {sorted(VIT_SIZES)}; received size={size!r}.")
        positive_int("patch_size", patch_size)
        d, l, h = VIT_SIZES[size]
        self.size = size
        self.patch_size = patch_size
        self.embed_dim = int(embed_dim or d)
        self.depth = int(depth or l)
        self.num_heads = int(num_heads or h)
        self.mlp_ratio = float(mlp_ratio)
        self.layer_scale_init = layer_scale_init
        if self.embed_dim % 8:
            raise ValueError(f"`embed_dim` must be a multiple of 8; received {self.embed_dim}.")
        self.patch_embed = keras.layers.Dense(
            self.embed_dim, kernel_initializer="glorot_uniform", name="patch_embed")
        self.position_encoding = ElasticPositionEncoding(self.embed_dim, patch_size,
                                                         name="position_encoding")
        self.blocks = [
            ViTBlock(self.embed_dim, self.num_heads, mlp_ratio=mlp_ratio,
                     layer_scale_init=layer_scale_init, name=f"block_{i}")
            for i in range(self.depth)
        ]
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")

    def build(self, patches_shape, boxes_shape=None, padding_mask_shape=None):
        shape = tuple(patches_shape)
        flat = shape[2] * shape[3] * shape[4]
        self.patch_embed.build((None, None, flat))
        self.cls_token = self.add_weight(
            shape=(1, 1, self.embed_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02), name="cls_token")
        for block in self.blocks:
            block.build((None, None, self.embed_dim))
        self.norm.build((None, None, self.embed_dim))
        self.built = True

    def embed(self, patches, boxes):
        """Patch embedding plus elastic position encoding: `(B, N, D)`."""
        shape = tf.shape(patches)
        flat = tf.reshape(patches, [shape[0], shape[1], -1])
        return self.patch_embed(flat) + self.position_encoding(boxes)

    def call(self, patches, boxes, padding_mask=None, return_importance=False,
             latent_layer=None):
        x = self.embed(patches, boxes)
        b = tf.shape(x)[0]
        cls = tf.tile(tf.cast(self.cls_token, x.dtype), [b, 1, 1])
        x = tf.concat([cls, x], axis=1)
        key_mask = None
        if padding_mask is not None:
            key_mask = tf.concat([tf.zeros([b, 1], x.dtype), tf.cast(padding_mask, x.dtype)], 1)
        attentions = []
        out = {}
        for i, block in enumerate(self.blocks):
            if latent_layer is not None and i == latent_layer:
                out["latent"] = x
            if return_importance:
                x, probs = block(x, padding_mask=key_mask, return_attention=True)
                attentions.append(probs)
            else:
                x = block(x, padding_mask=key_mask)
        out["tokens"] = self.norm(x)
        if return_importance:
            out["importance"] = attention_rollout(attentions, padding_mask)
        return out

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, patch_size=self.patch_size, embed_dim=self.embed_dim,
                      depth=self.depth, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio,
                      layer_scale_init=self.layer_scale_init)
        return config
