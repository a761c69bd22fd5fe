"""Pre-norm transformer block with LayerScale and an additive key-padding mask."""

import keras
import tensorflow as tf

from keras_glimpse import precision
from keras_glimpse.validation import positive_int

MASK_VALUE = -1e8


@keras.saving.register_keras_serializable(package="keras_glimpse")
class ViTBlock(keras.layers.Layer):
    """DeiT-III transformer block: pre-norm attention and MLP, each scaled by LayerScale.

    `x = x + gamma_1 * Attn(LN(x)); x = x + gamma_2 * MLP(LN(x))` with
    per-channel `gamma` initialised to `layer_scale_init` (1e-4), multi-head
    self-attention with a qkv bias, a GELU MLP of width `mlp_ratio * dim`, and
    LayerNorm eps 1e-6. Padded tokens are removed from attention by adding
    `-1e8` to their logits **as keys** (their own outputs are computed but
    meaningless). No drop-path.

    Args:
        dim: token width D.
        num_heads: attention heads (must divide `dim`).
        mlp_ratio: MLP hidden width / D.
        layer_scale_init: initial LayerScale value; `None` disables LayerScale.
        qkv_bias: bias on the qkv projection.
        epsilon: LayerNorm epsilon.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        x: `(B, N, dim)` tokens.
        padding_mask: optional `(B, N)`, 1/True marks a padded key to ignore.
        return_attention: if True also return the attention probabilities.

    Returns:
        `(B, N, dim)` tokens, or `(tokens, attention (B, heads, N, N))`.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.vit_block import ViTBlock
    >>> block = ViTBlock(dim=32, num_heads=4)
    >>> tuple(block(np.zeros((2, 5, 32), "float32")).shape)
    (2, 5, 32)

    Reference:
        Touvron et al., "DeiT III: Revenge of the ViT", ECCV 2022; Touvron et
        al., "Going deeper with Image Transformers" (LayerScale), ICCV 2021.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, layer_scale_init=1e-4, qkv_bias=True,
                 epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        positive_int("dim", dim)
        positive_int("num_heads", num_heads)
        if dim % num_heads:
            raise ValueError(
                f"`num_heads` must divide `dim`; received dim={dim}, num_heads={num_heads}.")
        if not float(mlp_ratio) > 0:
            raise ValueError(f"`mlp_ratio` must be > 0; received mlp_ratio={mlp_ratio!r}.")
        if layer_scale_init is not None and not float(layer_scale_init) > 0:
            raise ValueError(
                f"`layer_scale_init` must be > 0 or None; received {layer_scale_init!r}.")
        self.dim = dim
        self.num_heads = num_heads
        self.mlp_ratio = float(mlp_ratio)
        self.layer_scale_init = None if layer_scale_init is None else float(layer_scale_init)
        self.qkv_bias = bool(qkv_bias)
        self.epsilon = float(epsilon)
        init = keras.initializers.GlorotUniform()
        self.norm1 = keras.layers.LayerNormalization(epsilon=epsilon, name="norm1")
        self.qkv = keras.layers.Dense(3 * dim, use_bias=qkv_bias, kernel_initializer=init,
                                      name="qkv")
        self.proj = keras.layers.Dense(dim, kernel_initializer=init, name="proj")
        self.norm2 = keras.layers.LayerNormalization(epsilon=epsilon, name="norm2")
        hidden = int(dim * self.mlp_ratio)
        self.fc1 = keras.layers.Dense(hidden, activation="gelu", kernel_initializer=init,
                                      name="fc1")
        self.fc2 = keras.layers.Dense(dim, kernel_initializer=init, name="fc2")

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.norm1.build(shape)
        self.qkv.build(shape)
        self.proj.build(shape[:-1] + (self.dim,))
        self.norm2.build(shape)
        self.fc1.build(shape)
        self.fc2.build(shape[:-1] + (int(self.dim * self.mlp_ratio),))
        if self.layer_scale_init is not None:
            init = keras.initializers.Constant(self.layer_scale_init)
            self.gamma1 = self.add_weight(shape=(self.dim,), initializer=init, name="gamma1")
            self.gamma2 = self.add_weight(shape=(self.dim,), initializer=init, name="gamma2")
        self.built = True

    def _attention(self, x, padding_mask):
        b, n = tf.shape(x)[0], tf.shape(x)[1]
        hd = self.dim // self.num_heads
        qkv = tf.reshape(self.qkv(x), [b, n, 3, self.num_heads, hd])
        qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])  # (3, B, h, N, hd)
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = tf.matmul(q, k, transpose_b=True) * (hd ** -0.5)
        if padding_mask is not None:
            pad = tf.cast(padding_mask, logits.dtype)[:, None, None, :]
            logits = logits + pad * precision.mask_value(logits.dtype, MASK_VALUE)
        probs = tf.nn.softmax(logits, axis=-1)
        out = tf.matmul(probs, v)  # (B, h, N, hd)
        out = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b, n, self.dim])
        return self.proj(out), probs

    def call(self, x, padding_mask=None, return_attention=False):
        attn, probs = self._attention(self.norm1(x), padding_mask)
        if self.layer_scale_init is not None:
            attn = attn * self.gamma1
        x = x + attn
        mlp = self.fc2(self.fc1(self.norm2(x)))
        if self.layer_scale_init is not None:
            mlp = mlp * self.gamma2
        x = x + mlp
        if return_attention:
            return x, probs
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio,
                      layer_scale_init=self.layer_scale_init, qkv_bias=self.qkv_bias,
                      epsilon=self.epsilon)
        return config
