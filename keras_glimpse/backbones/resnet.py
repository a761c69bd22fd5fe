"""ImageNet-style ResNets: ResNet-18/34 (basic blocks) and ResNet-50."""

import os

import keras
import tensorflow as tf

from keras_glimpse import precision
from keras_glimpse.backbones.residual_block import BasicBlock, batch_norm, build_blocks, he_normal
from keras_glimpse.validation import positive_int


_BASIC_BLOCKS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
_DEPTHS = tuple(sorted(_BASIC_BLOCKS)) + (50,)
_WIDTHS = (64, 128, 256, 512)


@keras.saving.register_keras_serializable(package="keras_glimpse")
class ResNet(keras.layers.Layer):
    """ImageNet-style ResNet-10/18/34 (basic blocks) or ResNet-50 (bottleneck).

    Depths 10/18/34 use the torchvision layout: a 7x7 stride-2 convolution
    with 64 channels, BN, ReLU and a 3x3 stride-2 max-pool, then four stages
    of basic blocks (64/128/256/512 channels, strides 1/2/2/2, 1x1 conv+BN
    projection shortcuts), then global average pooling, so any input size
    works (56x56 LR views for the PatchDrop policy, 224x224 HR images).
    `stem="cifar"` replaces the stem by a 3x3 stride-1 convolution without
    max-pool (the CVPR PatchDrop release's stem for small images).

    Depth 50 is `keras.applications.ResNet50` (bottleneck blocks) without its
    top, with `weights=None` (random) or the path of a local weights file;
    nothing is downloaded.

    Note on PatchDrop: the CVPR release's "R50_ImgNet" and "R34_fMoW" models
    both build a ResNet-34-shaped net with a stride-1 stem that cannot run on
    224x224 inputs (spec A4.1). keras_glimpse uses the networks the paper and
    README name: a true ResNet-50 (ImageNet) / ResNet-34 (fMoW) HR classifier
    and a ResNet-18 policy on the 56x56 LR view.

    Args:
        depth: 10, 18, 34 or 50.
        num_classes: if given, a linear layer returns `num_classes` logits;
            otherwise the pooled features (512-d, 2048-d for depth 50).
        input_shape: `(H, W, C)`; required for depth 50 (keras.applications
            builds a functional model), optional otherwise.
        weights: depth 50 only: None (random), or the path of a local
            weights file of `keras.applications.ResNet50` without its top
            (e.g. the `..._notop.h5` file). A missing file raises
            `FileNotFoundError`, an incompatible one `ValueError`.
        stem: `"imagenet"` (7x7/2 conv + max-pool) or `"cifar"` (3x3/1 conv).
        synchronized_bn: cross-replica BatchNorm (depths 10/18/34).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        images: `(B, H, W, C)` float tensor.
        training: BatchNorm mode.

    Returns:
        `(B, features)` or `(B, num_classes)`.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.backbones import ResNet
    >>> net = ResNet(depth=18, num_classes=16)
    >>> net(np.zeros((1, 56, 56, 3), "float32")).shape
    TensorShape([1, 16])

    Reference:
        He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition",
        CVPR 2016.
    """

    def __init__(self, depth=18, num_classes=None, input_shape=None, weights=None,
                 stem="imagenet", synchronized_bn=False, **kwargs):
        super().__init__(**kwargs)
        if depth not in _DEPTHS or isinstance(depth, bool):
            raise ValueError(f"`depth` must be one of {_DEPTHS}; received depth={depth!r}.")
        positive_int("num_classes", num_classes, allow_none=True)
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"`stem` must be 'imagenet' or 'cifar'; received stem={stem!r}.")
        if input_shape is not None:
            input_shape = tuple(int(d) for d in input_shape)
            if len(input_shape) != 3:
                raise ValueError(
                    f"`input_shape` must be (H, W, C); received input_shape={input_shape!r}.")
        if depth == 50 and input_shape is None:
            raise ValueError("ResNet(depth=50) needs `input_shape` (H, W, C); received "
                             "input_shape=None.")
        if weights is not None and depth != 50:
            raise ValueError(
                f"`weights` is supported for depth=50 (keras.applications.ResNet50); "
                f"received weights={weights!r} with depth={depth}. Load the weights of "
                "a basic-block ResNet through the model that holds it.")
        if weights is not None and not os.path.exists(str(weights)):
            raise FileNotFoundError(
                f"ResNet-{depth} weights file '{weights}' does not exist. Pass the path of "
                "a local weights file (nothing is downloaded), or weights=None for a "
                "random initialisation.")
        self.depth = depth
        self.num_classes = num_classes
        self.input_shape_ = input_shape
        self.weights_path = None if weights is None else str(weights)
        self.stem_type = stem
        self.synchronized_bn = bool(synchronized_bn)
        self.application = None
        if depth == 50:
            self.application = keras.applications.ResNet50(
                include_top=False, weights=None, input_shape=input_shape, pooling="avg")
            if weights is not None:
                try:
                    self.application.load_weights(str(weights))
                except Exception as e:  # noqa: BLE001 - re-raised with the path
                    raise ValueError(
                        f"Could not load ResNet-50 weights from '{weights}' (expected the "
                        "weights of keras.applications.ResNet50 without its top, e.g. "
                        f"resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5): {e}") from e
            features = 2048
        else:
            if stem == "imagenet":
                self.stem = keras.layers.Conv2D(64, 7, strides=2, padding="same",
                                                use_bias=False,
                                                kernel_initializer=he_normal(),
                                                name="stem_conv")
            else:
                self.stem = keras.layers.Conv2D(64, 3, padding="same", use_bias=False,
                                                kernel_initializer=he_normal(),
                                                name="stem_conv")
            self.stem_bn = batch_norm(self.synchronized_bn, "stem_bn")
            self.residual_blocks = []
            for s, (n, width) in enumerate(zip(_BASIC_BLOCKS[depth], _WIDTHS)):
                for b in range(n):
                    stride = 2 if (s > 0 and b == 0) else 1
                    self.residual_blocks.append(BasicBlock(
                        width, stride, self.synchronized_bn, name=f"stage{s + 1}_block{b + 1}"))
            features = _WIDTHS[-1]
        self.classifier = (keras.layers.Dense(num_classes, name="classifier",
                                              dtype=precision.output_dtype())
                           if num_classes is not None else None)
        self.output_dim = num_classes if num_classes is not None else features
        self._features = features

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.application is None:
            self.stem.build(shape)
            shape = self.stem.compute_output_shape(shape)
            self.stem_bn.build(shape)
            if self.stem_type == "imagenet":
                shape = (shape[0], None if shape[1] is None else -(-shape[1] // 2),
                         None if shape[2] is None else -(-shape[2] // 2), shape[3])
            shape = build_blocks(self.residual_blocks, shape)
        if self.classifier is not None:
            self.classifier.build((shape[0], self._features))
        self.built = True

    def call(self, images, training=False):
        if self.application is not None:
            x = self.application(images, training=training)
        else:
            x = tf.nn.relu(self.stem_bn(self.stem(images), training=training))
            if self.stem_type == "imagenet":
                x = tf.nn.max_pool2d(x, 3, 2, "SAME")
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
        config.update(depth=self.depth, num_classes=self.num_classes,
                      input_shape=None if self.input_shape_ is None else list(self.input_shape_),
                      weights=self.weights_path, stem=self.stem_type,
                      synchronized_bn=self.synchronized_bn)
        return config

