"""MAE-style decoder that predicts every patch of the full image from elastic tokens."""

import keras
import tensorflow as tf

from keras_glimpse import precision
from keras_glimpse.layers.elastic_position_encoding import grid_position_table
from keras_glimpse.layers.vit_block import ViTBlock
from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class ReconstructionDecoder(keras.layers.Layer):
    """Decodes encoder tokens into the whole image, MAE style.

    Encoder tokens (CLS + N patch slots) are projected to `decoder_dim`; one
    mask token per cell of the regular `H/p x W/p` grid is appended (a single
    learned vector plus the fixed MAE 2-D sin-cos grid table; the encoder
    tokens get no decoder position encoding). `depth` LayerScale blocks run
    over the joint sequence (padded encoder slots masked as keys), then a
    LayerNorm; the grid outputs are projected to `p*p*C` pixels and
    reassembled into `(B, H, W, C)`.

    Args:
        image_shape: `(H, W, C)` of the images to predict (H, W divisible by
            `patch_size`).
        patch_size: patch side p (16).
        decoder_dim: decoder width (512 for base, 256 for small).
        depth: decoder blocks (8).
        num_heads: decoder heads (16).
        return_tokens: if True return the normalised grid tokens
            `(B, H/p * W/p, decoder_dim)` instead of pixels (used by
            `SegmentationDecoder`).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        tokens: `(B, N+1, D)` encoder output, CLS first.
        padding_mask: optional `(B, N)`, 1 marks an empty slot.

    Returns:
        `(B, H, W, C)` predicted image (normalised pixel space), or the grid
        tokens when `return_tokens=True`.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.reconstruction_decoder import ReconstructionDecoder
    >>> dec = ReconstructionDecoder((32, 32, 1), patch_size=16, decoder_dim=32, depth=1,
    ...                             num_heads=2)
    >>> tuple(dec(np.zeros((2, 3, 24), "float32")).shape)
    (2, 32, 32, 1)

    Reference:
        He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR
        2022; Pardyl et al., "AdaGlimpse", ECCV 2024.
    """

    def __init__(self, image_shape, patch_size=16, decoder_dim=512, depth=8, num_heads=16,
                 return_tokens=False, **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        positive_int("patch_size", patch_size)
        if len(image_shape) != 3 or image_shape[0] % patch_size or image_shape[1] % patch_size:
            raise ValueError(
                "`image_shape` must be (H, W, C) with H and W divisible by patch_size="
                f"{patch_size}; received image_shape={image_shape}.")
        positive_int("decoder_dim", decoder_dim)
        positive_int("depth", depth)
        positive_int("num_heads", num_heads)
        if decoder_dim % 4 or decoder_dim % num_heads:
            raise ValueError(
                "`decoder_dim` must be divisible by 4 and by num_heads; received "
                f"decoder_dim={decoder_dim}, num_heads={num_heads}.")
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.decoder_dim = decoder_dim
        self.depth = depth
        self.num_heads = num_heads
        self.return_tokens = bool(return_tokens)
        self.grid = (image_shape[0] // patch_size, image_shape[1] // patch_size)
        self.num_cells = self.grid[0] * self.grid[1]
        self.embed = keras.layers.Dense(decoder_dim, name="decoder_embed")
        self.blocks = [ViTBlock(decoder_dim, num_heads, name=f"decoder_block_{i}")
                       for i in range(depth)]
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")
        self.pred = keras.layers.Dense(patch_size * patch_size * image_shape[2],
                                       name="decoder_pred",
                                       dtype=precision.output_dtype())

    def build(self, tokens_shape, padding_mask_shape=None):
        self.embed.build(tuple(tokens_shape))
        self.mask_token = self.add_weight(
            shape=(1, 1, self.decoder_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02), name="mask_token")
        for block in self.blocks:
            block.build((None, None, self.decoder_dim))
        self.norm.build((None, None, self.decoder_dim))
        if not self.return_tokens:
            self.pred.build((None, None, self.decoder_dim))
        self.built = True

    def decode_tokens(self, tokens, padding_mask=None):
        x = self.embed(tokens)
        b = tf.shape(x)[0]
        table = tf.constant(grid_position_table(*self.grid, self.decoder_dim), x.dtype)
        masks = tf.tile(tf.cast(self.mask_token, x.dtype), [b, self.num_cells, 1]) + table[None]
        x = tf.concat([x, masks], axis=1)
        key_mask = None
        if padding_mask is not None:
            key_mask = tf.concat([
                tf.zeros([b, 1], x.dtype), tf.cast(padding_mask, x.dtype),
                tf.zeros([b, self.num_cells], x.dtype)], axis=1)
        for block in self.blocks:
            x = block(x, padding_mask=key_mask)
        return self.norm(x)[:, -self.num_cells:]

    def unpatchify(self, patches):
        """`(B, gh*gw, p*p*C)` -> `(B, H, W, C)`."""
        (gh, gw), p, c = self.grid, self.patch_size, self.image_shape[2]
        x = tf.reshape(patches, [-1, gh, gw, p, p, c])
        x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
        return tf.reshape(x, [-1, gh * p, gw * p, c])

    def call(self, tokens, padding_mask=None):
        x = self.decode_tokens(tokens, padding_mask)
        if self.return_tokens:
            return x
        return self.unpatchify(self.pred(x))

    def get_config(self):
        config = super().get_config()
        config.update(image_shape=list(self.image_shape), patch_size=self.patch_size,
                      decoder_dim=self.decoder_dim, depth=self.depth,
                      num_heads=self.num_heads, return_tokens=self.return_tokens)
        return config
