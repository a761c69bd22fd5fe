"""The basic residual block shared by the CIFAR and ImageNet-style ResNets."""

import keras
import tensorflow as tf


def he_normal():
    """He-normal on the fan-out, std = sqrt(2 / (k*k*C_out)) (torchvision / the
    PatchDrop reference initialise their convolutions so)."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out",
                                              distribution="untruncated_normal")


def batch_norm(synchronized, name):
    """BatchNorm with PyTorch's defaults (momentum 0.1 == Keras 0.9, eps 1e-5)."""
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                           synchronized=synchronized, name=name)


def build_blocks(blocks, shape):
    """Builds a stack of `BasicBlock`s in order; returns the NHWC output shape."""
    for block in blocks:
        block.build(shape)
        h = None if shape[1] is None else -(-shape[1] // block.stride)
        w = None if shape[2] is None else -(-shape[2] // block.stride)
        shape = (shape[0], h, w, block.filters)
    return shape


class BasicBlock(keras.layers.Layer):
    """Two 3x3 conv+BN with a residual shortcut, ReLU after the sum.

    `shortcut="projection"`: a 1x1 conv+BN when the shape changes (torchvision
    ResNet-18/34). `shortcut="pad"`: parameter-free average pooling by the
    stride and zero-padded new channels ("option B" of the CIFAR ResNets).
    """

    def __init__(self, filters, stride, synchronized_bn, shortcut="projection", **kwargs):
        super().__init__(**kwargs)
        if shortcut not in ("projection", "pad"):
            raise ValueError(f"`shortcut` must be 'projection' or 'pad'; received {shortcut!r}.")
        self.filters = filters
        self.stride = stride
        self.synchronized_bn = synchronized_bn
        self.shortcut = shortcut
        self.conv1 = keras.layers.Conv2D(filters, 3, strides=stride, padding="same",
                                         use_bias=False, kernel_initializer=he_normal(),
                                         name="conv1")
        self.bn1 = batch_norm(synchronized_bn, "bn1")
        self.conv2 = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                         kernel_initializer=he_normal(), name="conv2")
        self.bn2 = batch_norm(synchronized_bn, "bn2")
        self.proj = None
        self.proj_bn = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if self.shortcut == "projection" and (self.stride != 1 or input_shape[-1] != self.filters):
            self.proj = keras.layers.Conv2D(self.filters, 1, strides=self.stride,
                                            use_bias=False, kernel_initializer=he_normal(),
                                            name="proj")
            self.proj_bn = batch_norm(self.synchronized_bn, "proj_bn")
            self.proj.build(input_shape)
            self.proj_bn.build(self.proj.compute_output_shape(input_shape))
        self.conv1.build(input_shape)
        mid = self.conv1.compute_output_shape(input_shape)
        self.bn1.build(mid)
        self.conv2.build(mid)
        self.bn2.build(mid)
        self.built = True

    def call(self, x, training=False):
        h = tf.nn.relu(self.bn1(self.conv1(x), training=training))
        h = self.bn2(self.conv2(h), training=training)
        shortcut = x
        if self.proj is not None:
            shortcut = self.proj_bn(self.proj(x), training=training)
        elif self.shortcut == "pad":
            if self.stride > 1:
                shortcut = tf.nn.avg_pool2d(shortcut, self.stride, self.stride, "SAME")
            extra = self.filters - x.shape[-1]
            if extra > 0:
                shortcut = tf.pad(shortcut, [[0, 0], [0, 0], [0, 0], [0, extra]])
        return tf.nn.relu(h + shortcut)
