"""PatchDrop's patch mask over a fixed G x G grid."""

import keras
import tensorflow as tf

from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class PatchMask(keras.layers.Layer):
    """Keeps the high-resolution patches chosen by the agent and zeroes the rest.

    The image is split into a `grid_size x grid_size` grid of equal patches
    (the grid size must divide the height and the width). Patch `i` is the
    one at row `i // G`, column `i % G` (row-major, as in the reference code).
    Patches whose action is 1 are copied, the others become 0 (which is the
    dataset mean colour when images are normalised). The mask is built on
    device by broadcasting the `(B, G, G)` action over each patch, which is
    the same as repeating it by the patch size along H and W and multiplying;
    it compiles under XLA and passes gradients to the kept pixels.

    `low_resolution(images)` returns the cheap view the policy sees:
    `images[:, ::f, ::f]`, the exact equivalent of PyTorch's default
    nearest-neighbour `F.interpolate` used by the reference (not
    `tf.image.resize`, which samples different pixels).

    Args:
        grid_size: int, patches per side `G` (4 in the paper: 16 patches).
        lr_factor: int, down-sampling factor `f` of `low_resolution`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        images: float tensor `(B, H, W, C)`.
        actions: 0/1 tensor `(B, G*G)` (row-major) or `(B, G, G)`.

    Returns:
        The masked images, `(B, H, W, C)`.

    Example:
    >>> from keras_glimpse.layers.patch_mask import PatchMask
    >>> mask = PatchMask(grid_size=4)
    >>> images = tf.ones((2, 32, 32, 3))
    >>> kept = mask(images, tf.one_hot([0, 15], 16))
    >>> float(tf.reduce_sum(kept))  # one 8x8x3 patch per image
    384.0
    >>> mask.low_resolution(images).shape
    TensorShape([2, 8, 8, 3])

    Reference:
        Uzkent & Ermon, "Learning When and Where to Zoom With Deep
        Reinforcement Learning", CVPR 2020 (PatchDrop).
    """

    def __init__(self, grid_size=4, lr_factor=4, **kwargs):
        super().__init__(**kwargs)
        positive_int("grid_size", grid_size)
        positive_int("lr_factor", lr_factor)
        self.grid_size = grid_size
        self.lr_factor = lr_factor
        self._channels = None

    def _check_images(self, shape):
        if shape.rank != 4:
            raise ValueError(
                "PatchMask expects images of shape (batch, height, width, channels); "
                f"received shape {tuple(shape)} (rank {shape.rank})."
            )
        for dim, what in ((shape[1], "height"), (shape[2], "width")):
            if dim is not None and dim % self.grid_size:
                raise ValueError(
                    f"PatchMask(grid_size={self.grid_size}) needs the image {what} to be a "
                    f"multiple of {self.grid_size}; received images of shape {tuple(shape)}."
                )
        if self._channels is not None and shape[-1] is not None and shape[-1] != self._channels:
            raise ValueError(
                f"PatchMask was built for {self._channels} channels; received images of "
                f"shape {tuple(shape)}."
            )

    def build(self, images_shape):
        shape = tf.TensorShape(images_shape)
        self._check_images(shape)
        self._channels = shape[-1]

    def call(self, images, actions):
        images = tf.convert_to_tensor(images)
        actions = tf.convert_to_tensor(actions)
        self._check_images(images.shape)
        g = self.grid_size
        if not images.dtype.is_floating:
            images = tf.cast(images, self.compute_dtype)
        ashape = tuple(actions.shape)
        if not (
            (len(ashape) == 2 and ashape[1] in (g * g, None))
            or (len(ashape) == 3 and ashape[1:] in ((g, g),))
        ):
            raise ValueError(
                f"`actions` must have shape (batch, {g * g}) or (batch, {g}, {g}) for "
                f"grid_size={g}; received shape {ashape}."
            )
        shape = tf.shape(images)
        b, h, w, c = shape[0], shape[1], shape[2], shape[3]
        # (B, G, ph, G, pw*C) * (B, G, 1, G, 1): the action broadcast over its patch.
        actions = tf.reshape(tf.cast(actions, images.dtype), [-1, g, 1, g, 1])
        x = tf.reshape(images, [b, g, h // g, g, (w // g) * c]) * actions
        return tf.reshape(x, shape)

    def low_resolution(self, images):
        """Strided nearest-neighbour view `images[:, ::f, ::f]`."""
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4:
            raise ValueError(
                "PatchMask.low_resolution expects images of shape (batch, height, width, "
                f"channels); received shape {tuple(images.shape)}."
            )
        f = self.lr_factor
        return images[:, ::f, ::f, :]

    def compute_output_shape(self, images_shape, actions_shape):
        return tuple(images_shape)

    def get_config(self):
        config = super().get_config()
        config.update(grid_size=self.grid_size, lr_factor=self.lr_factor)
        return config
