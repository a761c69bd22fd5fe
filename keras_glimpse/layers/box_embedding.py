"""The ordinal box-embedding network: linear conv backbone + ROI-Align + MLP."""

import keras
import tensorflow as tf

from keras_glimpse.layers.roi_align import RoiAlign
from keras_glimpse.validation import positive_int, check_seed


@keras.saving.register_keras_serializable(package="keras_glimpse")
class BoxEmbedding(keras.layers.Layer):
    """Embeds boxes of an image so that closer boxes (IoU) are closer in L2.

    Backbone: four **linear** valid convolutions (10@5x5 stride 2, 32@3x3
    stride 2, 64@3x3, 128@3x3: 84x84 -> 15x15x128), no nonlinearity between
    them. Each box is pooled to `pooling_size^2` bins with legacy ROI-Align
    (`RoiAlign`, scale 15/84, 2x2 samples per bin), flattened and passed
    through Dense(1024) -> ReLU -> Dropout(0.5) -> Dense(512) (linear).
    Conv kernels are Kaiming-normal (fan-out, ReLU gain), dense kernels
    N(0, 0.01), biases zero (spec §1.4). About 3.90 M parameters.

    The backbone map is computed once per image (`feature_map`) and reused for
    any number of boxes (`embed_boxes`), which is how the agent embeds every
    box of its trajectory.

    Args:
        embedding_dim: output width (512).
        hidden_units: width of the hidden dense layer (1024).
        dropout: dropout rate after the hidden layer (0.5), in [0, 1).
        pooling_size: ROI-Align bins per side (5).
        spatial_scale: feature pixels per image pixel (15/84).
        sampling_ratio: ROI-Align samples per bin and axis (2).
        seed: int or None, seeds the dropout.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        images: `(B, H, W, C)` float images (normalised as the data pipeline).
        boxes: `(B, K, 4)` boxes `(x1, y1, x2, y2)` in image pixels.
        training: enables dropout.

    Returns:
        `(B, K, embedding_dim)` embeddings.

    Example:
    >>> from keras_glimpse.layers.box_embedding import BoxEmbedding
    >>> net = BoxEmbedding()
    >>> images = tf.zeros((2, 84, 84, 1))
    >>> fmap = net.feature_map(images)  # (2, 15, 15, 128)
    >>> net.embed_boxes(fmap, tf.constant([[[0.0, 0.0, 83.0, 83.0]]] * 2)).shape
    TensorShape([2, 1, 512])

    Reference:
        Li, Han, Min, Metaxas. Localization by ordinal embedding (2021),
        `models/mnist_scale_model.py::Net`.
    """

    def __init__(self, embedding_dim=512, hidden_units=1024, dropout=0.5, pooling_size=5,
                 spatial_scale=15 / 84, sampling_ratio=2, seed=None, **kwargs):
        super().__init__(**kwargs)
        positive_int("embedding_dim", embedding_dim)
        positive_int("hidden_units", hidden_units)
        positive_int("pooling_size", pooling_size)
        positive_int("sampling_ratio", sampling_ratio)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
                0.0 <= dropout < 1.0):
            raise ValueError(f"`dropout` must be a float in [0, 1); received dropout={dropout!r}.")
        check_seed(seed)
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.dropout = float(dropout)
        self.pooling_size = pooling_size
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = sampling_ratio
        self.seed = seed
        conv_init = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal",
                                                       seed=seed)
        dense_init = keras.initializers.RandomNormal(0.0, 0.01, seed=seed)
        spec = [(10, 5, 2), (32, 3, 2), (64, 3, 1), (128, 3, 1)]
        self.convs = [
            keras.layers.Conv2D(f, k, strides=s, padding="valid", kernel_initializer=conv_init,
                                bias_initializer="zeros", name=f"conv{i + 1}")
            for i, (f, k, s) in enumerate(spec)
        ]
        self.roi_align = RoiAlign(pooling_size, spatial_scale, sampling_ratio, name="roi_align")
        self.fc1 = keras.layers.Dense(hidden_units, activation="relu",
                                      kernel_initializer=dense_init, name="fc1")
        self.dropout_layer = keras.layers.Dropout(self.dropout, seed=seed, name="dropout")
        self.fc2 = keras.layers.Dense(embedding_dim, kernel_initializer=dense_init, name="fc2")

    def build(self, images_shape, boxes_shape=None):
        shape = tuple(images_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = tuple(conv.compute_output_shape(shape))
        self.roi_align.build(shape)
        flat = self.pooling_size * self.pooling_size * shape[-1]
        self.fc1.build((None, flat))
        self.fc2.build((None, self.hidden_units))
        self.built = True

    def feature_map(self, images):
        """The backbone map `(B, h, w, 128)` (15x15 for 84x84 images)."""
        x = tf.cast(images, self.compute_dtype)
        for conv in self.convs:
            x = conv(x)
        return x

    def embed_boxes(self, features, boxes, training=None):
        """Embeds `(B, K, 4)` boxes from a precomputed `feature_map`: `(B, K, D)`."""
        boxes = tf.cast(boxes, tf.float32)
        pooled = self.roi_align(features, boxes)  # (B, K, P, P, C)
        shape = tf.shape(pooled)
        b, k = shape[0], shape[1]
        flat = tf.reshape(pooled, [b * k, -1])
        x = self.fc1(flat)
        x = self.dropout_layer(x, training=training)
        x = self.fc2(x)
        return tf.reshape(x, [b, k, self.embedding_dim])

    def call(self, images, boxes, training=None):
        return self.embed_boxes(self.feature_map(images), boxes, training=training)

    def compute_output_shape(self, images_shape, boxes_shape=None):
        k = None if boxes_shape is None else boxes_shape[1]
        return (images_shape[0], k, self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "embedding_dim": self.embedding_dim,
            "hidden_units": self.hidden_units,
            "dropout": self.dropout,
            "pooling_size": self.pooling_size,
            "spatial_scale": self.spatial_scale,
            "sampling_ratio": self.sampling_ratio,
            "seed": self.seed,
        })
        return config
