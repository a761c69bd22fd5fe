"""REINFORCE toolkit: returns, baselines, advantages and per-example losses.

Every function is pure (no state, no variables). Loss terms return
**per-example** values of shape `(B,)`; reduce them with `reduce_loss`
(`tf.nn.compute_average_loss`, i.e. divided by the *global* batch size), so
that a step under `MirroredStrategy` equals a step on one device (DESIGN rule
2). Batch statistics (`batch_mean_baseline`, `normalize_advantages`) are taken
over the global batch: inside a replica context with more than one replica
they all-reduce across replicas.

Shapes: rewards, returns, log-probabilities and advantages are `(B, T)`
(batch, time) or `(B,)` for one-step episodes.
"""

import tensorflow as tf


def _replica_context():
    """The replica context when there is more than one replica, else None."""
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        return ctx
    return None


def _global_sum(x):
    ctx = _replica_context()
    if ctx is None:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def discounted_returns(rewards, gamma):
    """Discounted reward-to-go, `G_t = sum_{k >= t} gamma^(k - t) r_k`.

    Computed as `G = R D` with the (T, T) discount matrix
    `D[k, t] = gamma^(k - t)` for `k >= t`, else 0.

    Args:
        rewards: `(B, T)` float tensor, `r_t` for t = 0..T-1.
        gamma: discount factor in `[0, 1]` (Python float or scalar tensor).

    Returns:
        `(B, T)` float tensor of returns.
    """
    rewards = tf.convert_to_tensor(rewards)
    if not rewards.dtype.is_floating:
        rewards = tf.cast(rewards, tf.float32)
    t = tf.shape(rewards)[-1]
    steps = tf.range(t)
    lag = steps[:, None] - steps[None, :]  # lag[k, t] = k - t
    gamma = tf.cast(gamma, rewards.dtype)
    powers = tf.pow(gamma, tf.cast(tf.maximum(lag, 0), rewards.dtype))
    discount = tf.where(lag >= 0, powers, tf.zeros_like(powers))
    return tf.linalg.matmul(rewards, discount)


def terminal_returns(final_reward, num_steps):
    """RAM's undiscounted terminal reward broadcast over all steps, `G_t = R`.

    Args:
        final_reward: `(B,)` float tensor (e.g. 1[correct]).
        num_steps: T, Python int.

    Returns:
        `(B, T)` float tensor with `G[b, t] = final_reward[b]`.
    """
    final_reward = tf.convert_to_tensor(final_reward)
    if not final_reward.dtype.is_floating:
        final_reward = tf.cast(final_reward, tf.float32)
    return tf.tile(final_reward[:, None], [1, num_steps])


def batch_mean_baseline(returns):
    """Per-step mean of the returns over the global batch, `b_t = mean_b G[b, t]`.

    The ordinal agent's baseline (spec section 1.8). Under a distribution
    strategy (a replica context with more than one replica) the sum and the
    count are all-reduced across replicas, so the baseline is the same as on
    one device with the whole batch. The baseline is a constant
    (stop-gradient).

    Args:
        returns: `(B, T)` or `(B,)` float tensor.

    Returns:
        A tensor shaped like `returns` (the per-step mean broadcast over the
        batch), so that `returns - batch_mean_baseline(returns)` is the
        advantage.
    """
    returns = tf.stop_gradient(tf.convert_to_tensor(returns))
    if not returns.dtype.is_floating:
        returns = tf.cast(returns, tf.float32)
    step_shape = tf.shape(returns)[1:]
    # One all-reduce of [per-step sums..., count]: a single collective per call.
    packed = tf.concat([tf.reshape(tf.reduce_sum(returns, axis=0), [-1]),
                        tf.cast(tf.shape(returns)[:1], returns.dtype)], axis=0)
    packed = _global_sum(packed)
    mean = tf.reshape(packed[:-1] / packed[-1], step_shape)
    return tf.broadcast_to(mean, tf.shape(returns))


def self_critical_advantage(sample_reward, greedy_reward):
    """Self-critical advantage, `A = R(a_sample) - R(a_greedy)` (PatchDrop A7).

    Args:
        sample_reward: `(B,)` reward of the sampled action.
        greedy_reward: `(B,)` reward of the greedy action.

    Returns:
        `(B,)` stop-gradient advantage.
    """
    return tf.stop_gradient(tf.convert_to_tensor(sample_reward)
                            - tf.convert_to_tensor(greedy_reward))


def normalize_advantages(advantages, eps=1e-8):
    """Normalises over all entries of the global batch, `(A - mean) / max(std, eps)`.

    RECAP normalises over all T*B entries (spec section 3.6). `std` is the
    unbiased sample standard deviation (divisor N - 1, as PyTorch's
    `Tensor.std()` the reference uses), computed in two passes. Under a
    distribution strategy, the sums and counts are all-reduced across replicas.
    The result is stop-gradient.

    Args:
        advantages: float tensor of any shape, `(B, T)` or `(B,)`.
        eps: floor of the standard deviation.

    Returns:
        Tensor shaped like `advantages`.
    """
    adv = tf.stop_gradient(tf.convert_to_tensor(advantages))
    if not adv.dtype.is_floating:
        adv = tf.cast(adv, tf.float32)
    # Two dependent all-reduces (so their order is the same on every replica):
    # [sum, count], then the sum of squared deviations from the global mean.
    sum_count = _global_sum(tf.stack([tf.reduce_sum(adv), tf.cast(tf.size(adv), adv.dtype)]))
    count = sum_count[1]
    centred = adv - sum_count[0] / count
    var = _global_sum(tf.reduce_sum(tf.square(centred))) / tf.maximum(count - 1.0, 1.0)
    std = tf.sqrt(var)
    return centred / tf.maximum(std, tf.cast(eps, adv.dtype))


def _sum_over_time(x):
    x = tf.convert_to_tensor(x)
    if x.shape.rank is not None and x.shape.rank > 1:
        return tf.reduce_sum(x, axis=list(range(1, x.shape.rank)))
    return x


def _check_same_rank(a, b, name_a, name_b):
    # A (B,) tensor times a (B, 1) one would silently broadcast to (B, B).
    if a.shape.rank is not None and b.shape.rank is not None and a.shape.rank != b.shape.rank:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same rank; received shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}."
        )


def policy_gradient_loss(log_probs, advantages):
    """Per-example REINFORCE loss, `L_b = -sum_t log pi(a_t) * stop_gradient(A_t)`.

    Args:
        log_probs: `(B, T)` or `(B,)` log-probabilities of the taken actions.
        advantages: same shape (or broadcastable), treated as constants.

    Returns:
        `(B,)` per-example loss. (For RECAP's mean over time, divide by T.)
    """
    log_probs = tf.convert_to_tensor(log_probs)
    advantages = tf.cast(tf.stop_gradient(advantages), log_probs.dtype)
    _check_same_rank(log_probs, advantages, "log_probs", "advantages")
    return _sum_over_time(-log_probs * advantages)


def entropy_bonus(entropy):
    """Per-example entropy summed over time, `H_b = sum_t H_t`.

    Subtract `beta * entropy_bonus(...)` from the loss to encourage exploration.

    Args:
        entropy: `(B, T)` or `(B,)` policy entropies.

    Returns:
        `(B,)` tensor.
    """
    return _sum_over_time(entropy)


def baseline_loss(values, returns):
    """Per-example baseline regression, `L_b = mean_t (v_t - stop_gradient(G_t))^2`.

    Args:
        values: `(B, T)` or `(B,)` predicted values / baselines.
        returns: same shape, regression targets (treated as constants).

    Returns:
        `(B,)` tensor.
    """
    values = tf.convert_to_tensor(values)
    returns = tf.cast(tf.stop_gradient(returns), values.dtype)
    _check_same_rank(values, returns, "values", "returns")
    sq = tf.square(values - returns)
    if sq.shape.rank is not None and sq.shape.rank > 1:
        return tf.reduce_mean(sq, axis=list(range(1, sq.shape.rank)))
    return sq


def reduce_loss(per_example, global_batch_size=None):
    """Averages per-example losses over the global batch (`tf.nn.compute_average_loss`).

    `sum(per_example) / global_batch_size`, where the global batch size
    defaults to the per-replica batch times the number of replicas; the
    gradients summed over replicas then equal the single-device gradient.

    Args:
        per_example: `(B,)` float tensor.
        global_batch_size: optional int, the global batch size.

    Returns:
        Scalar tensor.
    """
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
