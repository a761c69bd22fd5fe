"""Early exit: a glimpse rollout that stops looking at an image once it is sure.

A sequential model (RAM, RECAP, AdaGlimpse) predicts a class after every
glimpse. With a `stop_threshold` p, an image stops once its predicted class
probability reaches p (or its glimpses run out): its prediction and state are
frozen from then on, and the loop itself ends as soon as every image of the
batch has stopped. The compute saved is real: a batch of confident images
runs fewer steps, and a single image (the exported `serve_early_exit`
endpoint with a batch of one) runs exactly the glimpses it uses.

`early_exit_loop` is the one piece every method shares; a method supplies
`step(t, carry, index) -> (carry, logits, record)`, one glimpse for the
images still looking (`index`: their rows in the batch).
The loop is a `tf.while_loop`, so it runs the same eagerly, in a
`tf.function` and in a SavedModel.
"""

import tensorflow as tf


def check_threshold(stop_threshold):
    """`stop_threshold` as a float in (0, 1], or a one-line ValueError."""
    try:
        value = float(stop_threshold)
    except (TypeError, ValueError):
        raise ValueError("`stop_threshold` must be a probability in (0, 1]; received "
                         f"stop_threshold={stop_threshold!r}.") from None
    if not 0.0 < value <= 1.0:
        raise ValueError("`stop_threshold` must be a probability in (0, 1] (1 never stops "
                         f"early); received stop_threshold={stop_threshold!r}.")
    return value


def resolve_threshold(stop_threshold, training=False):
    """The threshold of a `rollout(..., stop_threshold=p)` call: a checked
    float (a tensor is passed through, as from a SavedModel signature), or a
    one-line ValueError (also when `training`: training runs every glimpse)."""
    if training:
        raise ValueError("`stop_threshold` is for inference; call rollout(..., "
                         "training=False) (training always runs every glimpse).")
    return stop_threshold if tf.is_tensor(stop_threshold) else check_threshold(stop_threshold)


def early_exit_loop(step, carry, num_steps, stop_threshold):
    """Runs `step` until every image is confident or `num_steps` glimpses are used.

    Each step computes only the images still looking: their rows of the carry
    are gathered, stepped and scattered back, so a batch's cost per step falls
    with the number of images still active, and the loop ends when none is.

    Args:
        step: `step(t, carry, index) -> (carry, logits, record)`: one glimpse
            for the images `index` (int32 `(K,)`, their rows in the batch;
            gather the images with it): `carry` a nest of `(K, ...)` tensors
            (the recurrent state and the next location), `logits` `(K, C)`
            the prediction after glimpse `t`, `record` a dict of `(K, ...)`
            tensors to keep per step (e.g. the glimpse's location).
        carry: the initial carry, a nest of `(B, ...)` tensors.
        num_steps: T, the most glimpses an image may use (a Python int).
        stop_threshold: probability p (float or scalar tensor) at which an
            image stops.

    Returns:
        dict: `logits` `(B, C)` each image's prediction when it stopped,
        `glimpses_used` `(B,)` int32 in `[1, T]`, `steps_run` the number of
        loop iterations (the batch's largest `glimpses_used`), and each
        `record` key stacked to `(B, T, ...)`; the entries after an image
        stopped repeat its last glimpse's.
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"`num_steps` must be a positive int; received {num_steps!r}.")
    threshold = tf.cast(stop_threshold, tf.float32)

    def confident(logits):
        return tf.reduce_max(tf.nn.softmax(tf.cast(logits, tf.float32)), -1) >= threshold

    # Every image takes the first glimpse; its outputs give the loop's shapes.
    batch = tf.shape(tf.nest.flatten(carry)[0])[0]
    carry, logits, record = step(tf.constant(0), carry, tf.range(batch))
    done = confident(logits)
    used = tf.ones_like(done, tf.int32)
    arrays = {k: tf.TensorArray(v.dtype, size=0, dynamic_size=True,
                                element_shape=v.shape).write(0, v)
              for k, v in record.items()}

    def cond(t, carry, logits, done, used, record, arrays):
        return tf.logical_not(tf.reduce_all(done))

    def body(t, carry, logits, done, used, record, arrays):
        index = tf.cast(tf.where(tf.logical_not(done))[:, 0], tf.int32)
        rows = index[:, None]
        sub = tf.nest.map_structure(lambda x: tf.gather(x, index), carry)
        sub, sub_logits, sub_record = step(t, sub, index)
        carry = tf.nest.map_structure(
            lambda full, part: tf.tensor_scatter_nd_update(full, rows, part), carry, sub)
        logits = tf.tensor_scatter_nd_update(logits, rows, sub_logits)
        used = tf.tensor_scatter_nd_add(used, rows, tf.ones_like(index))
        done = tf.tensor_scatter_nd_update(done, rows, confident(sub_logits))
        record = {k: tf.tensor_scatter_nd_update(record[k], rows, sub_record[k])
                  for k in record}
        arrays = {k: arrays[k].write(t, record[k]) for k in arrays}
        return t + 1, carry, logits, done, used, record, arrays

    t, carry, logits, done, used, record, arrays = tf.while_loop(
        cond, body, (tf.constant(1), carry, logits, done, used, record, arrays),
        maximum_iterations=num_steps - 1)
    out = {"logits": logits, "glimpses_used": used, "steps_run": t}
    for k, ta in arrays.items():
        stacked = ta.stack()  # (t, B, ...)
        ran = tf.transpose(stacked, [1, 0] + list(range(2, stacked.shape.rank)))
        out[k] = _pad_steps(ran, used, num_steps)
    return out


def _pad_steps(ran, used, num_steps):
    """`(B, t, ...)` -> `(B, T, ...)`, each image's entries after its last
    glimpse set to that glimpse's."""
    steps = tf.range(num_steps)
    last = tf.maximum(used - 1, 0)
    index = tf.minimum(steps[None, :], last[:, None])  # (B, T)
    return tf.gather(ran, index, batch_dims=1)
