"""Digits and clutter pasted onto canvases: the XLA-compiled kernels of the
MNIST canvas datasets (`cluttered_mnist`, `digits_canvas`).

The datasets draw every random number with plain TF stateless ops (XLA's
generators give other numbers, and a seed's canvases must never change) and
hand the positions to these kernels. Compiled, the index building and
scatters cost about a sixth of TF's kernels on CPU, where the input pipeline
shares the cores with the training step. Results are exact: placement and an
elementwise maximum (order-free, so duplicate indices are deterministic).
"""

import tensorflow as tf


def _digit_indices(offsets, size):
    """`(B, size, size, 3)` scatter indices (batch, row, column) of a `size`-square
    block whose top-left corner is `offsets (B, 2)`."""
    batch = tf.shape(offsets)[0]
    shape = tf.stack([batch, size, size])
    r = tf.range(size)
    return tf.stack([
        tf.broadcast_to(tf.range(batch)[:, None, None], shape),
        tf.broadcast_to(r[None, :, None] + offsets[:, 0, None, None], shape),
        tf.broadcast_to(r[None, None, :] + offsets[:, 1, None, None], shape)], axis=-1)


@tf.function(jit_compile=True, reduce_retracing=True)
def paste(digits, offsets, image_size):
    """Zero canvases `(B, S, S)` with `digits (B, d, d)` written at `offsets (B, 2)` (top-left)."""
    batch = tf.shape(digits)[0]
    return tf.scatter_nd(tf.reshape(_digit_indices(offsets, tf.shape(digits)[1]), (-1, 3)),
                         tf.reshape(digits, (-1,)), tf.stack([batch, image_size, image_size]))


@tf.function(jit_compile=True, reduce_retracing=True)
def paste_with_clutter(digits, offsets, clutter_sources, src, dst, image_size, clutter_size):
    """`paste`, then `k` clutter pieces per canvas combined by maximum.

    Piece `j` of image `b` is the `clutter_size` square of
    `clutter_sources[b, j] (d, d)` whose top-left is `src[b, j]`, placed with
    its top-left at `dst[b, j]`.
    """
    canvas = paste.python_function(digits, offsets, image_size)
    batch, k, c = tf.shape(src)[0], tf.shape(src)[1], clutter_size
    r = tf.range(c)
    shape_bkcc = tf.stack([batch, k, c, c])
    bb = tf.broadcast_to(tf.range(batch)[:, None, None, None], shape_bkcc)
    kk = tf.broadcast_to(tf.range(k)[None, :, None, None], shape_bkcc)
    pieces = tf.gather_nd(tf.convert_to_tensor(clutter_sources, tf.float32), tf.stack(
        [bb, kk, tf.broadcast_to(src[..., 0, None, None] + r[:, None], shape_bkcc),
         tf.broadcast_to(src[..., 1, None, None] + r[None, :], shape_bkcc)], axis=-1))
    idx = tf.stack([bb, tf.broadcast_to(dst[..., 0, None, None] + r[:, None], shape_bkcc),
                    tf.broadcast_to(dst[..., 1, None, None] + r[None, :], shape_bkcc)], axis=-1)
    return tf.tensor_scatter_nd_max(canvas, tf.reshape(idx, (-1, 3)), tf.reshape(pieces, (-1,)))
