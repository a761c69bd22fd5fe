"""PatchDrop's reward and per-example loss (Uzkent & Ermon, CVPR 2020; spec A6-A7)."""

import keras
import tensorflow as tf

from keras_glimpse.objectives.reinforce import policy_gradient_loss, self_critical_advantage


def patchdrop_reward(correct, actions, penalty):
    """PatchDrop's per-image reward (spec A6).

    `R = 1 - (kept / N)^2` when the prediction is correct, else `penalty`,
    where `kept` is the number of acquired patches out of N.

    Args:
        correct: `(B,)` bool or 0/1, whether the classifier was right.
        actions: `(B, N)` 0/1 patch actions.
        penalty: the (negative) reward of a wrong prediction.

    Returns:
        `(B,)` float32 rewards.
    """
    actions = tf.cast(actions, tf.float32)
    used = tf.reduce_mean(actions, axis=-1)
    return tf.where(tf.cast(correct, tf.bool), 1.0 - tf.square(used),
                    tf.cast(penalty, tf.float32) * tf.ones_like(used))


def patchdrop_loss(log_prob_per_patch, sample_reward, greedy_reward, logits=None, labels=None):
    """PatchDrop's per-example loss, REINFORCE with a self-critical baseline.

    The advantage `A = R(sampled) - R(greedy)` is a constant; the policy term
    is `pg_b = -A_b sum_i log p(a_bi)` over the N patches.

    - Policy only (stage `"pretrain"`, `logits=None`): `pg_b / N`, so that the
      batch mean is the mean over all B x N (image, patch) entries.
    - Joint (stages `"finetune"`, `"finetune2stream"`): `pg_b + CE(logits_b, y_b)`
      with the logits of the classifier on the sampled mask.

    Args:
        log_prob_per_patch: `(B, N)` log-probabilities of the sampled patch actions.
        sample_reward: `(B,)` reward of the sampled actions.
        greedy_reward: `(B,)` reward of the greedy actions (the baseline).
        logits: optional `(B, K)` class logits of the sampled mask (joint stages).
        labels: `(B,)` integer labels, with `logits`.

    Returns:
        `(B,)` per-example loss (reduce it with `reinforce.reduce_loss`).
    """
    log_prob_per_patch = tf.convert_to_tensor(log_prob_per_patch)
    advantage = self_critical_advantage(sample_reward, greedy_reward)
    pg = policy_gradient_loss(log_prob_per_patch, advantage[:, None])
    if logits is None:
        n = log_prob_per_patch.shape[-1]
        n = float(n) if n is not None else tf.cast(tf.shape(log_prob_per_patch)[-1], pg.dtype)
        return pg / n  # mean over the B x N (image, patch) entries
    ce = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return pg + ce
