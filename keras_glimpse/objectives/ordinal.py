"""The ordinal-embedding localiser's agent loss (Li et al. 2021, spec section 1.8)."""

import tensorflow as tf

from keras_glimpse.objectives import reinforce


def agent_loss(log_probs, entropies, distances, gamma=0.99, entropy_weight=5.0):
    """Per-example REINFORCE loss of the box agent, rewarded in embedding space.

    Rewards are the decrease of the embedding distance to the ground truth,
    `r_t = d_{t-1} - d_t`; returns are discounted with `gamma`; the baseline
    is the per-step mean of the returns over the (global) batch
    (`reinforce.batch_mean_baseline`); the loss is
    `l_b = sum_t (-log pi(a_t) A_t) - entropy_weight * sum_t H_t`.

    Args:
        log_probs: `(B, T)` log-probabilities of the actions taken.
        entropies: `(B, T)` policy entropies.
        distances: `(B, T + 1)` embedding distances `d_0 .. d_T` of the boxes
            (stop-gradient: rewards and advantages are constants).
        gamma: discount of the returns.
        entropy_weight: weight of the entropy bonus.

    Returns:
        dict of tensors: `loss` `(B,)`, `rewards`, `returns` and `advantages` `(B, T)`.
        Reduce `loss` over the global batch (sum or mean) in the caller.
    """
    d = tf.convert_to_tensor(distances)
    rewards = d[:, :-1] - d[:, 1:]
    returns = reinforce.discounted_returns(rewards, gamma)
    advantages = returns - reinforce.batch_mean_baseline(returns)
    loss = (reinforce.policy_gradient_loss(log_probs, advantages)
            - entropy_weight * reinforce.entropy_bonus(entropies))
    return {"loss": loss, "rewards": rewards, "returns": returns, "advantages": advantages}
