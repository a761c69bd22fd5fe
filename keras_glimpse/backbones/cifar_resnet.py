"""The CIFAR ResNet family of He et al. (ResNet-8/20/32/44/56/110)."""

import keras
import tensorflow as tf

from keras_glimpse import precision
from keras_glimpse.backbones.residual_block import BasicBlock, batch_norm, build_blocks, he_normal
from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class CifarResNet(keras.layers.Layer):
    """The genuine CIFAR ResNet (He et al. 2016, section 4.2), e.g. ResNet-32.

    A 3x3 convolution with 16 channels, then three stages of `n` basic blocks
    with 16/32/64 channels and strides 1/2/2, then global average pooling
    (and an optional linear classifier). Depth = 6n + 2: n=5 is ResNet-32
    (0.46 M parameters with 10 classes), n=1 is the ResNet-8 that PatchDrop's
    AAAI-era code used as the CIFAR policy network. Shortcuts are "option B"
    of that code: average-pool by the stride, then zero-pad the new channels
    (parameter-free). Convolutions are He-normal on the fan-out, BatchNorm
    starts at gamma=1, beta=0.

    Global average pooling makes the same weights run on 32x32 HR images and
    on 8x8 LR views (the PatchDrop LR classifier and policy).

    Note: the PatchDrop CVPR release calls its CIFAR model "R32" but builds a
    4-stage 64..512-channel ResNet-34-shaped network; keras_glimpse uses this
    genuine ResNet-32 (the paper's and the AAAI code's network) instead.

    Args:
        depth: 6n+2 (8, 20, 32, 44, 56, 110, ...). Ignored if `blocks` is given.
        blocks: optional number of blocks per stage `n` (overrides `depth`).
        num_classes: if given, a linear layer maps the pooled features to
            `num_classes` logits; if None the layer returns the pooled features.
        widths: channels of the three stages (16, 32, 64 in the paper;
            narrower for CPU-sized demos).
        synchronized_bn: use cross-replica (synchronized) BatchNorm, for
            exact equivalence under `MirroredStrategy`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        images: `(B, H, W, C)` float tensor (any H, W >= 1).
        training: BatchNorm mode.

    Returns:
        `(B, widths[-1])` features, or `(B, num_classes)` logits.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.backbones import CifarResNet
    >>> net = CifarResNet(depth=8, num_classes=10)
    >>> net(np.zeros((2, 8, 8, 3), "float32")).shape
    TensorShape([2, 10])

    Reference:
        He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition",
        CVPR 2016 (CIFAR-10 architecture, section 4.2).
    """

    def __init__(self, depth=32, blocks=None, num_classes=None, widths=(16, 32, 64),
                 synchronized_bn=False, **kwargs):
        super().__init__(**kwargs)
        if blocks is None:
            if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (
                    depth - 2) % 6:
                raise ValueError(
                    f"`depth` must be an integer 6n+2 >= 8 (8, 20, 32, 44, 56, 110); "
                    f"received depth={depth!r}."
                )
            n = (depth - 2) // 6
        else:
            positive_int("blocks", blocks)
            n = blocks
        positive_int("num_classes", num_classes, allow_none=True)
        widths = tuple(widths) if isinstance(widths, (list, tuple)) else widths
        if not isinstance(widths, tuple) or len(widths) != 3 or any(
                isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths) or any(
                b < a for a, b in zip(widths, widths[1:])):
            raise ValueError(
                "`widths` must be three non-decreasing positive integers (16, 32, 64 in "
                f"the paper); received widths={widths!r}.")
        self.widths = widths
        self.depth = depth
        self.blocks = blocks
        self.num_classes = num_classes
        self.synchronized_bn = bool(synchronized_bn)
        self.blocks_per_stage = n
        self.stem = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False,
                                        kernel_initializer=he_normal(), name="stem_conv")
        self.stem_bn = batch_norm(self.synchronized_bn, "stem_bn")
        self.residual_blocks = []
        for s, width in enumerate(widths):
            for b in range(n):
                stride = 2 if (s > 0 and b == 0) else 1
                self.residual_blocks.append(BasicBlock(
                    width, stride, self.synchronized_bn, shortcut="pad", name=f"stage{s + 1}_block{b + 1}"))
        self.classifier = (keras.layers.Dense(num_classes, name="classifier",
                                              dtype=precision.output_dtype())
                           if num_classes is not None else None)
        self.output_dim = num_classes if num_classes is not None else widths[-1]

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.stem.build(shape)
        shape = self.stem.compute_output_shape(shape)
        self.stem_bn.build(shape)
        shape = build_blocks(self.residual_blocks, shape)
        if self.classifier is not None:
            self.classifier.build((shape[0], self.widths[-1]))
        self.built = True

    def call(self, images, training=False):
        x = tf.nn.relu(self.stem_bn(self.stem(images), training=training))
        for block in self.residual_blocks:
            x = block(x, training=training)
        x = tf.reduce_mean(x, axis=[1, 2])
        if self.classifier is not None:
            x = self.classifier(x)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(depth=self.depth, blocks=self.blocks, num_classes=self.num_classes,
                      widths=list(self.widths), synchronized_bn=self.synchronized_bn)
        return config
