"""A patch-token classifier that computes only the patches it is given."""

import keras
import tensorflow as tf

from keras_glimpse import precision
from keras_glimpse.backbones.elastic_vit import VIT_SIZES, ElasticViT
from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class SparsePatchViT(keras.layers.Layer):
    """ViT classifier over the kept patches of a G x G grid (sparse PatchDrop).

    The image is cut into `grid_size^2` patches; the ones `actions` keeps are
    gathered to the front (in grid order), the batch is cut to its largest
    number of kept patches K, the others of an image are padding (masked
    keys), and an `ElasticViT` (patch embedding + the patch's box encoding,
    CLS token) reads the K tokens; a dense layer on the CLS token gives the
    logits. Dropped patches are never embedded or attended to, so the cost
    falls with K (attention as K^2, the rest as K), unlike a dense network on
    the zero-filled image.

    Args:
        num_classes: number of classes.
        image_shape: `(H, W, C)`; `grid_size` must divide H and W.
        grid_size: G, patches per side.
        size: `ElasticViT` size (`"tiny"`, `"small"`, ...).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        images: `(B, H, W, C)`.
        actions: optional `(B, G^2)` 0/1 (1 keeps the patch); all kept if None.

    Returns:
        `(B, num_classes)` logits.
    """

    takes_actions = True  # PatchDrop passes the kept patches, not a masked image

    def __init__(self, num_classes, image_shape, grid_size=4, size="tiny", **kwargs):
        super().__init__(**kwargs)
        self.num_classes = positive_int("num_classes", num_classes)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.grid_size = positive_int("grid_size", grid_size)
        h, w, _ = self.image_shape
        if h % grid_size or w % grid_size or h != w:
            raise ValueError(f"SparsePatchViT needs square images that `grid_size` divides; "
                             f"received image_shape={self.image_shape}, grid_size={grid_size}.")
        if size not in VIT_SIZES:
            raise ValueError(f"`size` must be one of {sorted(VIT_SIZES)}; received size={size!r}.")
        self.size = size
        self.patch = h // grid_size
        self.encoder = ElasticViT(size, patch_size=self.patch, name="encoder")
        self.head = keras.layers.Dense(num_classes, name="head",
                                       dtype=precision.output_dtype())
        g, p = grid_size, self.patch
        rows, cols = tf.meshgrid(tf.range(g), tf.range(g), indexing="ij")
        y1, x1 = tf.reshape(rows, [-1]) * p, tf.reshape(cols, [-1]) * p
        self._boxes = tf.cast(tf.stack([y1, x1, y1 + p, x1 + p], -1), tf.float32)  # (N, 4)

    @property
    def output_dim(self):
        return self.num_classes

    def build(self, input_shape=None):
        c, n, p = self.image_shape[2], self.grid_size ** 2, self.patch
        self.encoder.build((None, n, p, p, c))
        self.head.build((None, self.encoder.embed_dim))
        self.built = True

    def patches(self, images):
        """`(B, G^2, p, p, C)` patches in row-major grid order."""
        g, p, c = self.grid_size, self.patch, self.image_shape[2]
        x = tf.reshape(images, [-1, g, p, g, p, c])
        return tf.reshape(tf.transpose(x, [0, 1, 3, 2, 4, 5]), [-1, g * g, p, p, c])

    def call(self, images, actions=None, training=None):
        patches = self.patches(images)
        b, n = tf.shape(patches)[0], self.grid_size ** 2
        boxes = tf.tile(self._boxes[None], [b, 1, 1])
        if actions is None:
            tokens = self.encoder(patches, boxes)["tokens"]
            return self.head(tokens[:, 0])
        keep = tf.cast(actions > 0.5, tf.int32)
        k = tf.maximum(tf.reduce_max(tf.reduce_sum(keep, 1)), 1)
        # Kept patches first, each image in grid order (stable sort on "dropped").
        order = tf.argsort(1 - keep, axis=1, stable=True)[:, :k]
        kept = tf.gather(keep, order, batch_dims=1)
        tokens = self.encoder(tf.gather(patches, order, batch_dims=1),
                              tf.gather(boxes, order, batch_dims=1),
                              padding_mask=tf.cast(1 - kept, patches.dtype))["tokens"]
        return self.head(tokens[:, 0])

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, image_shape=list(self.image_shape),
                      grid_size=self.grid_size, size=self.size)
        return config
