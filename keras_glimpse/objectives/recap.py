"""RECAP's rewards and entropy schedule: pure functions, tested by hand values.

`step_rewards` (the per-step confidence reward), `add_terminal_reward` (+-2 on
the last step) and `entropy_weight` (the linear entropy-bonus decay) are what
`models.recap.RECAP.agent_losses` feeds to `objectives.reinforce`.
"""

import tensorflow as tf


def step_rewards(cross_entropies, clip=0.1, original_sign=False):
    """RECAP's per-step confidence rewards from the CE of every prefix.

    `r_0 = 0` and, for `t > 0`, `r_t = clip(CE_{t-1} - CE_t, -clip, clip)`:
    a step is rewarded when the cross-entropy of the classifier on the glimpses
    seen so far **falls**. `original_sign=True` uses the original code's
    `CE_t - CE_{t-1}` (it rewards a rising cross-entropy, contradicting the
    README's intent; a probable bug, spec section 3.6).

    Args:
        cross_entropies: `(B, T)` CE of the classifier on the prefix `0..t`.
        clip: the clamp bound (0.1).
        original_sign: use the original's (rising-CE) sign.

    Returns:
        `(B, T)` stop-gradient rewards.
    """
    ce = tf.stop_gradient(tf.convert_to_tensor(cross_entropies))
    delta = ce[:, :-1] - ce[:, 1:]  # CE_{t-1} - CE_t for t = 1..T-1
    if original_sign:
        delta = -delta
    delta = tf.clip_by_value(delta, -clip, clip)
    return tf.concat([tf.zeros_like(ce[:, :1]), delta], axis=1)


def add_terminal_reward(rewards, correct, terminal_reward=2.0):
    """Adds `+terminal_reward` (correct) or `-terminal_reward` (wrong) to `r_{T-1}`.

    Args:
        rewards: `(B, T)` step rewards.
        correct: `(B,)` bool, the final prediction is right.
        terminal_reward: magnitude of the terminal reward (2 in RECAP).

    Returns:
        `(B, T)` rewards.
    """
    rewards = tf.convert_to_tensor(rewards)
    sign = tf.where(correct, 1.0, -1.0) * terminal_reward
    last = tf.one_hot(tf.shape(rewards)[1] - 1, tf.shape(rewards)[1], dtype=rewards.dtype)
    return rewards + tf.cast(sign, rewards.dtype)[:, None] * last[None, :]


def entropy_weight(epoch, epochs, initial=0.03, floor=0.01):
    """`max(floor, initial * (1 - epoch / epochs))`: RECAP's linear entropy decay."""
    epoch = tf.cast(epoch, tf.float32)
    epochs = tf.maximum(tf.cast(epochs, tf.float32), 1.0)
    return tf.maximum(tf.cast(floor, tf.float32), initial * (1.0 - epoch / epochs))
