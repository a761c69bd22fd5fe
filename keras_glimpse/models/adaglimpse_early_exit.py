"""AdaGlimpse's early-exit episode (classification): stop each image once sure.

`AdaGlimpse.rollout(images, stop_threshold=p)` lands here. Unlike the
preset's `early_stop_threshold` (evaluation masks the later glimpses of a
confident image, but every step of the batch still runs), this episode runs in
`keras_glimpse.early_exit.early_exit_loop`: an image stops once the classifier
reads probability >= p after a glimpse, and the loop (encoder, actor, sensor)
ends when every image of the batch has stopped.

Step t (t = 0..T-1): the actor picks glimpse t from the state of the glimpses
so far, the sensor takes it, its patches fill slots `[t*G^2, (t+1)*G^2)` of
the encoder's token buffer, and the encoder re-reads the buffer: the
prediction after t + 1 glimpses. The initial state (no glimpse) is encoded
once before the loop, as in the full episode, so `p = 1` gives the full
episode's prediction and boxes.
"""

import keras
import tensorflow as tf

from keras_glimpse import early_exit
from keras_glimpse.models.adaglimpse_schedule import grid_actions


def early_exit_episode(model, images, stop_threshold, mode="greedy", policy="learned"):
    """The early-exit episode of an AdaGlimpse classifier; see the module docstring.

    Returns:
        dict: `predictions` (B, K) logits where each image stopped, `boxes`
        (B, T, 4) the glimpses' pixel boxes (repeating the last one after an
        image stopped), `glimpses_used` (B,) and `steps_run`.
    """
    if model.task != "classification":
        raise ValueError("`stop_threshold` needs a classifier (a class probability to "
                         f"stop on); this AdaGlimpse's task is {model.task!r}.")
    b = tf.shape(images)[0]
    g2, p = model.grid_size ** 2, model.patch_size
    c = model.image_shape[2]
    T = model.num_glimpses
    slots = tf.range(T * g2) // g2  # which glimpse fills each token slot
    patches = tf.zeros([b, T * g2, p, p, c])
    boxes = tf.zeros([b, T * g2, 4])
    mask = tf.ones([b, T * g2])
    _, state = model._encode(patches, boxes, mask)
    grid = (tf.stack(grid_actions(b, T, model.image_shape, p, model.grid_size,
                                  model.max_glimpse_size_ratio)) if policy == "grid" else None)

    def step(t, carry, index):  # the images `index` still looking
        patches, boxes, mask, state = carry
        if policy == "grid":
            action = tf.gather(tf.gather(grid, t), index)
        elif policy == "random":
            action = keras.random.uniform(tf.stack([tf.shape(index)[0], 3]),
                                          seed=model.seed_generator)
        else:
            action = model.actor(state, mode="sample" if mode == "sample" else "greedy")["action"]
        new_patches, new_boxes = model.sensor(tf.gather(images, index), action)
        fill = tf.equal(slots, t)  # (T*G^2,)
        patches = tf.where(fill[None, :, None, None, None], tf.tile(new_patches, [1, T, 1, 1, 1]),
                           patches)
        boxes = tf.where(fill[None, :, None], tf.tile(new_boxes, [1, T, 1]), boxes)
        mask = tf.where(fill[None, :], 0.0, mask)
        predictions, state = model._encode(patches, boxes, mask)
        box = tf.concat([tf.reduce_min(new_boxes[:, :, :2], 1),
                         tf.reduce_max(new_boxes[:, :, 2:], 1)], -1)
        return (patches, boxes, mask, state), predictions, {"boxes": box}

    out = early_exit.early_exit_loop(step, (patches, boxes, mask, state), T, stop_threshold)
    return {"predictions": out["logits"], "boxes": out["boxes"],
            "glimpses_used": out["glimpses_used"], "steps_run": out["steps_run"]}
