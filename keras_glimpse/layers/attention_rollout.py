"""Attention rollout: per-patch importance from a ViT's attention maps (AdaGlimpse B4)."""

import tensorflow as tf


def attention_rollout(attentions, padding_mask=None, discard_ratio=0.5):
    """CLS-to-patch attention rollout with discarding of weak links.

    For every layer: average the attention over heads (`A`, `(N+1) x (N+1)`
    with the CLS token first), zero the smallest `discard_ratio` of its
    entries among the valid (non-padded) ones, always keeping `A[0, 0]`,
    form `(A + I) / 2`, normalise rows, and accumulate `R <- A_hat R` from
    `R = I`. The importance is the softmax over the valid patches of
    `R[0, 1:]`; padded patches get 0. The result carries no gradient.

    Args:
        attentions: list (one per layer) of `(B, heads, N+1, N+1)` attention
            probabilities, or a stacked `(L, B, heads, N+1, N+1)` tensor.
        padding_mask: optional `(B, N)`, 1 marks an empty patch slot.
        discard_ratio: fraction of the smallest entries zeroed per layer.

    Returns:
        `(B, N, 1)` float importance (sums to 1 over valid patches; zeros
        when a sample has no valid patch).

    Reference:
        Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL
        2020; Pardyl et al., AdaGlimpse, ECCV 2024 (state input).
    """
    if not 0.0 <= float(discard_ratio) < 1.0:
        raise ValueError(f"`discard_ratio` must be in [0, 1); received {discard_ratio!r}.")
    if isinstance(attentions, (list, tuple)):
        attentions = tf.stack(attentions, axis=0)
    attentions = tf.stop_gradient(tf.cast(attentions, tf.float32))
    shape = tf.shape(attentions)
    b, n1 = shape[1], shape[3]
    if padding_mask is None:
        padding_mask = tf.zeros([b, n1 - 1], tf.float32)
    valid = 1.0 - tf.cast(padding_mask, tf.float32)
    valid = tf.concat([tf.ones([b, 1]), valid], axis=1)  # (B, N+1), CLS always valid
    valid2 = valid[:, :, None] * valid[:, None, :]  # (B, N+1, N+1)
    flat_valid = tf.reshape(valid2, [b, -1])
    count = tf.reduce_sum(flat_valid, axis=1)  # (B,)
    k = tf.cast(tf.floor(count * float(discard_ratio)), tf.int32)
    eye = tf.eye(n1, batch_shape=[b])
    keep00 = tf.one_hot(0, n1 * n1, dtype=tf.float32)[None]  # (1, (N+1)^2)
    num_layers = attentions.shape[0]
    rollout = eye
    for layer in range(num_layers):
        a = tf.reduce_mean(attentions[layer], axis=1) * valid2  # (B, N+1, N+1)
        flat = tf.reshape(a, [b, -1])
        big = tf.where(flat_valid > 0, flat, tf.fill(tf.shape(flat), 3.0e38))
        ordered = tf.sort(big, axis=1)
        threshold = tf.gather(ordered, tf.maximum(k, 0), axis=1, batch_dims=1)  # k-th smallest
        drop = tf.logical_and(flat < threshold[:, None], k[:, None] > 0)
        drop = tf.logical_and(drop, keep00 < 0.5)
        flat = tf.where(drop, tf.zeros_like(flat), flat)
        a = tf.reshape(flat, [b, n1, n1])
        a = (a + eye * valid[:, :, None]) / 2.0
        a = a / tf.maximum(tf.reduce_sum(a, axis=-1, keepdims=True), 1e-12)
        rollout = tf.matmul(a, rollout)
    cls_row = rollout[:, 0, 1:]  # (B, N)
    patch_valid = valid[:, 1:]
    logits = tf.where(patch_valid > 0, cls_row, tf.fill(tf.shape(cls_row), -1e9))
    importance = tf.nn.softmax(logits, axis=-1) * patch_valid
    return tf.stop_gradient(importance[..., None])
