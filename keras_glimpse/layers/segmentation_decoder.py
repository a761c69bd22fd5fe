"""Transformer decoder plus convolutional up-head for per-pixel class logits."""

import math

import keras
import tensorflow as tf

from keras_glimpse import precision
from keras_glimpse.layers.reconstruction_decoder import ReconstructionDecoder
from keras_glimpse.validation import integer

IGNORE_LABEL = 255


def segmentation_cross_entropy(labels, logits, ignore_label=IGNORE_LABEL):
    """Per-example pixel cross-entropy averaged over labelled pixels.

    Args:
        labels: `(B, H, W)` int labels; `ignore_label` pixels are skipped.
        logits: `(B, H, W, K)`.
        ignore_label: label value excluded from the loss (255).

    Returns:
        `(B,)` mean CE over each image's labelled pixels (0 if none).
    """
    labels = tf.cast(labels, tf.int32)
    valid = tf.cast(tf.not_equal(labels, ignore_label), logits.dtype)
    safe = tf.where(labels == ignore_label, tf.zeros_like(labels), labels)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    total = tf.reduce_sum(ce * valid, axis=[1, 2])
    return total / tf.maximum(tf.reduce_sum(valid, axis=[1, 2]), 1.0)


@keras.saving.register_keras_serializable(package="keras_glimpse")
class SegmentationDecoder(keras.layers.Layer):
    """Per-pixel class logits from elastic encoder tokens (AdaGlimpse 'segment').

    The same MAE-style transformer decoder as `ReconstructionDecoder` yields
    one token per regular grid cell; the `(H/p, W/p, decoder_dim)` map goes
    through `log2(p)` stages of [3x3 conv -> BatchNorm (synchronized) -> GELU
    -> bilinear x2] with widths `head_channels`, then 3x3 conv -> BN -> GELU
    and a 1x1 conv to `num_classes`. For p=16 and 512-d this is the paper's
    512-512-256-256-256 head.

    Args:
        image_shape: `(H, W, C)`.
        num_classes: number of classes K (150 for ADE20K).
        patch_size: p, a power of two.
        decoder_dim, depth, num_heads: the transformer decoder.
        head_channels: list of conv widths, one per up-stage (default
            `[decoder_dim, decoder_dim, decoder_dim/2, ...]` halving once).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        tokens: `(B, N+1, D)` encoder output, CLS first.
        padding_mask: optional `(B, N)`, 1 marks an empty slot.
        training: BatchNorm mode.

    Returns:
        `(B, H, W, num_classes)` logits.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.segmentation_decoder import SegmentationDecoder
    >>> dec = SegmentationDecoder((32, 32, 3), num_classes=5, patch_size=16,
    ...                           decoder_dim=32, depth=1, num_heads=2)
    >>> tuple(dec(np.zeros((2, 3, 24), "float32")).shape)
    (2, 32, 32, 5)

    Reference:
        Pardyl et al., "AdaGlimpse", ECCV 2024.
    """

    def __init__(self, image_shape, num_classes, patch_size=16, decoder_dim=512, depth=8,
                 num_heads=16, head_channels=None, **kwargs):
        super().__init__(**kwargs)
        integer("num_classes", num_classes, minimum=2)
        stages = int(round(math.log2(patch_size))) if patch_size > 0 else -1
        if patch_size <= 1 or 2 ** stages != patch_size:
            raise ValueError(f"`patch_size` must be a power of two > 1; received patch_size={patch_size!r}.")
        if head_channels is None:
            head_channels = [decoder_dim] * min(2, stages) + [max(decoder_dim // 2, 8)] * max(
                stages - 2, 0)
        head_channels = [int(c) for c in head_channels]
        if len(head_channels) != stages:
            raise ValueError(
                f"`head_channels` needs one width per up-stage ({stages} for patch_size="
                f"{patch_size}); received head_channels={head_channels}.")
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_classes = num_classes
        self.patch_size = patch_size
        self.decoder_dim = decoder_dim
        self.depth = depth
        self.num_heads = num_heads
        self.head_channels = head_channels
        self.decoder = ReconstructionDecoder(self.image_shape, patch_size, decoder_dim, depth,
                                             num_heads, return_tokens=True, name="decoder")
        self.convs, self.norms = [], []
        for i, c in enumerate(head_channels + [head_channels[-1]]):
            self.convs.append(keras.layers.Conv2D(c, 3, padding="same", name=f"conv_{i}"))
            self.norms.append(keras.layers.BatchNormalization(synchronized=True, name=f"bn_{i}"))
        self.classifier = keras.layers.Conv2D(num_classes, 1, name="classifier",
                                              dtype=precision.output_dtype())

    def build(self, tokens_shape, padding_mask_shape=None):
        self.decoder.build(tokens_shape)
        gh, gw = self.decoder.grid
        h, w, c = gh, gw, self.decoder_dim
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            conv.build((None, h, w, c))
            c = conv.filters
            norm.build((None, h, w, c))
            if i < len(self.head_channels):
                h, w = h * 2, w * 2
        self.classifier.build((None, h, w, c))
        self.built = True

    def call(self, tokens, padding_mask=None, training=False):
        x = self.decoder(tokens, padding_mask)
        gh, gw = self.decoder.grid
        x = tf.reshape(x, [-1, gh, gw, self.decoder_dim])
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = keras.activations.gelu(norm(conv(x), training=training))
            if i < len(self.head_channels):
                s = tf.shape(x)
                x = tf.image.resize(x, [s[1] * 2, s[2] * 2], method="bilinear")
        return self.classifier(x)

    def get_config(self):
        config = super().get_config()
        config.update(image_shape=list(self.image_shape), num_classes=self.num_classes,
                      patch_size=self.patch_size, decoder_dim=self.decoder_dim,
                      depth=self.depth, num_heads=self.num_heads,
                      head_channels=list(self.head_channels))
        return config
