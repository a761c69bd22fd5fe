"""RECAP's early-exit episode: stop reading an image's cells once it is sure.

`RECAP.rollout(images, stop_threshold=p)` (agent stage, inference) lands
here. The episode runs in `keras_glimpse.early_exit.early_exit_loop`: after
each glimpse the classifier reads the glimpses so far, an image stops once
its top class probability reaches p, and the loop (grid glimpse, encoder,
memory, policy, classifier) ends when every image of the batch has stopped.

Step t (t = 0..T-1), for the images still looking: the grid glimpse of cell
`cell_t`, its embedding `e_t` (written to slot t of a `(T, D)` buffer), the
memory `h_t`, the policy's next cell (visited cells masked, as in the full
rollout) and the prediction after t + 1 glimpses,
`_classify(e_0..e_t)`: the summarizer (self-attention, then an LSTM) and
the gated pooling re-read the prefix, because attention lets every earlier
glimpse's summary change with the new one. That prefix is sliced from the
buffer (no padding, no mask), so it is exactly the prediction of a rollout
truncated to t + 1 steps, and at t = T - 1 the full rollout's prediction.

The price: the classifier runs after every glimpse instead of once, and its
cost grows with the prefix (`early_exit_macs`): unlike RAM, whose per-step
read is one dense layer, a RECAP image that uses every glimpse costs more
than the plain rollout, and the savings come from the images that stop early.
"""

import warnings

import tensorflow as tf

from keras_glimpse import early_exit


def early_exit_rollout(model, images, stop_threshold, mode="greedy", policy="learned"):
    """The early-exit episode of an agent-stage RECAP; see the module docstring.

    Args:
        model: an agent-stage `RECAP`.
        images: `(B, I, I, C)` float tensor (checked by the caller).
        stop_threshold: probability in (0, 1] (checked by the caller), float
            or scalar tensor.
        mode: `"greedy"` or `"sample"` (the policy's next cell).
        policy: `"learned"` or `"random"`.

    Returns:
        dict: `predictions` (B, K) the logits after each image's last glimpse,
        `locations` (B, T, 2), `actions` (B, T) and `action_probs` (B, T, A)
        (after an image stopped, its last glimpse's entries repeat),
        `glimpses_used` (B,) int32 in [1, T] and `steps_run` (the loop's
        iterations: the batch's largest `glimpses_used`).
    """
    if model.stage != "agent":
        raise ValueError("`stop_threshold` needs the agent stage (a glimpse sequence to cut "
                         f"short); this RECAP's stage is {model.stage!r}, which reads every "
                         "cell at once.")
    batch, T = tf.shape(images)[0], model.num_steps
    cell, visited, states = model._episode_start(batch)
    feats = tf.zeros([batch, T, model.embed_dim], model.encoder.compute_dtype)
    slots = tf.range(T)

    def step(t, carry, index):  # the images `index` still looking
        cell, visited, states, feats = carry
        step = model._glimpse_step(tf.gather(images, index), cell, visited, states, mode,
                                   training=False, policy=policy)
        feat, action, out = step["feat"], step["action"], step["out"]
        feats = tf.where(tf.equal(slots, t)[None, :, None],
                         tf.cast(feat, feats.dtype)[:, None, :], feats)
        with warnings.catch_warnings():  # the one-glimpse prefix: a softmax over one step
            warnings.filterwarnings("ignore", "You are using a softmax over axis")
            logits = model._classify(feats[:, :t + 1])  # the prediction after t + 1 glimpses
        record = {"locations": step["location"], "actions": action, "action_probs": out["probs"]}
        return (action, step["visited"], step["states"], feats), logits, record

    out = early_exit.early_exit_loop(step, (cell, visited, states, feats), T, stop_threshold)
    result = {k: out[k] for k in ("locations", "actions", "action_probs", "glimpses_used",
                                  "steps_run")}
    result["predictions"] = out["logits"]
    return result


def early_exit_macs(model, glimpses):
    """Analytic MACs (`keras_glimpse.flops`) of the early-exit episode of one
    image that used `glimpses` glimpses: per glimpse the encoder, memory and
    policy head, plus the classifier (summarizer, gate, dense) on each prefix
    of 1..`glimpses` embeddings. The plain rollout's cost is
    `flops.count(model).per_image_macs` (the classifier once, on T; the value
    head, which early exit skips, per step)."""
    from keras_glimpse import flops

    k = int(glimpses)
    if not 1 <= k <= model.num_steps:
        raise ValueError(f"`glimpses` must be in [1, {model.num_steps}]; received "
                         f"glimpses={glimpses!r}.")
    p, d = model.patch_size, model.embed_dim
    per_glimpse = (flops.layer_macs(model.encoder, (1, p, p, model.channels))
                   + flops.layer_macs(model.memory, (1, d))
                   + flops.layer_macs(model.policy_head, (1, d + 2)))
    reads = sum(flops.layer_macs(model.summarizer, (1, j, d))
                + flops.layer_macs(model.gate, (1, j, d))
                + flops.layer_macs(model.classifier, (1, d)) for j in range(1, k + 1))
    return k * per_glimpse + reads
