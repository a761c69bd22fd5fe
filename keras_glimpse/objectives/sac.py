"""Soft Actor-Critic: pure per-example loss terms and one reusable update step.

The terms follow SAC "v2" as configured by AdaGlimpse (twin Q-nets with
target copies, no V-net, learned temperature, TD(0)):

- `td_target`: `y = c r + gamma (1 - terminated) [min_j Qbar_j(s', a') - alpha log pi(a'|s')]`
  (`c` = `reward_scale`, 1 in AdaGlimpse; TF-Agents calls it `reward_scale_factor`)
- `critic_loss`: `sum_j (Q_j(s, a) - y)^2` (plain squared error, no 1/2)
- `actor_loss`: `alpha log pi(a~|s) - min_j Q_j(s, a~)`
- `temperature_loss`: `-log_alpha (log pi(a~|s) + H_target)`
- `polyak_update`: `theta_bar <- (1 - tau) theta_bar + tau theta`

Each returns per-example values (shape `(B,)`); reduce them with
`tf.nn.compute_average_loss` (`reduce_loss`) so that MirroredStrategy sums
replica gradients correctly. `actor_step`, `critic_step` and
`temperature_step` take one optimizer step each (explicit variable lists);
`sac_update` composes them into one iteration (actor step, critic step,
temperature step, target update) for any continuous-action agent whose actor
returns `{"action", "log_prob"}` (e.g. `TanhNormalHead`) and whose critics
map `(observation, action)` to `(B,)`.

Reference:
    Haarnoja et al., "Soft Actor-Critic Algorithms and Applications", 2018
    (arXiv:1812.05905); Pardyl et al., "AdaGlimpse", ECCV 2024.
"""

import tensorflow as tf

from keras_glimpse import optimizers
from keras_glimpse.objectives.reinforce import reduce_loss


def td_target(rewards, next_q1, next_q2, next_log_prob, alpha, terminated, gamma=0.99,
              reward_scale=1.0):
    """Soft TD(0) target per example (no gradient).

    Args:
        rewards: `(B,)` r_t.
        next_q1, next_q2: `(B,)` target-critic values at `(s', a')`, `a' ~ pi(.|s')`.
        next_log_prob: `(B,)` `log pi(a'|s')`.
        alpha: scalar temperature `exp(log_alpha)`.
        terminated: `(B,)` 1 where `s'` is terminal (not bootstrapped).
        gamma: discount.
        reward_scale: multiplies the rewards. Raising it is the same as
            lowering the temperature's weight against the return; it helps
            when per-step rewards are small next to `alpha * log pi`.

    Returns:
        `(B,)` targets, wrapped in `stop_gradient`.
    """
    rewards = tf.convert_to_tensor(rewards)
    dtype = rewards.dtype
    soft_value = tf.minimum(next_q1, next_q2) - tf.cast(alpha, dtype) * next_log_prob
    not_done = 1.0 - tf.cast(terminated, dtype)
    return tf.stop_gradient(reward_scale * rewards + gamma * not_done * soft_value)


def critic_loss(q1, q2, target):
    """Twin-critic squared TD error `(q1 - y)^2 + (q2 - y)^2`, per example `(B,)`."""
    target = tf.stop_gradient(target)
    return tf.square(q1 - target) + tf.square(q2 - target)


def actor_loss(log_prob, q1, q2, alpha):
    """`alpha * log pi(a~|s) - min(q1, q2)` per example `(B,)`; alpha is not trained here."""
    alpha = tf.stop_gradient(tf.cast(alpha, log_prob.dtype))
    return alpha * log_prob - tf.minimum(q1, q2)


def temperature_loss(log_alpha, log_prob, target_entropy):
    """`-log_alpha * (log pi + H_target)` per example `(B,)`; log pi is not trained here."""
    log_prob = tf.stop_gradient(log_prob)
    return -tf.cast(log_alpha, log_prob.dtype) * (log_prob + target_entropy)


def polyak_update(target_variables, source_variables, tau=0.005):
    """Soft target update `target <- (1 - tau) target + tau source` (in place)."""
    target_variables = list(target_variables)
    source_variables = list(source_variables)
    if len(target_variables) != len(source_variables):
        raise ValueError(
            f"polyak_update needs matching variable lists; received {len(target_variables)} "
            f"target and {len(source_variables)} source variables.")
    if not 0.0 <= float(tau) <= 1.0:
        raise ValueError(f"`tau` must be in [0, 1]; received tau={tau!r}.")
    for t, s in zip(target_variables, source_variables):
        t.assign((1.0 - tau) * t + tau * tf.cast(s, t.dtype))


def _variables(module):
    return list(module.trainable_variables)


def actor_step(observation, actor, critics, log_alpha, optimizer, global_batch_size=None):
    """One actor gradient step on `actor_loss` (the critics are not updated).

    Returns:
        `(pi, loss)`: the actor's output on `observation` before the step
        (`action`, `log_prob`; the temperature step reuses `log_prob`) and the
        reduced loss.
    """
    alpha = tf.exp(tf.convert_to_tensor(log_alpha))
    variables = _variables(actor)
    with tf.GradientTape() as tape:
        pi = actor(observation, mode="sample")
        q1_pi = critics[0](observation, pi["action"])
        q2_pi = critics[1](observation, pi["action"])
        loss = reduce_loss(actor_loss(pi["log_prob"], q1_pi, q2_pi, alpha), global_batch_size)
    optimizer.apply_gradients(zip(optimizers.gradients(tape, loss, variables, optimizer),
                                  variables))
    return pi, loss


def critic_step(batch, actor, critics, target_critics, log_alpha, optimizer, gamma=0.99,
                global_batch_size=None, reward_scale=1.0):
    """One twin-critic gradient step on `critic_loss` towards `td_target`
    (next actions sampled from the current actor, valued by the target critics).

    Returns:
        dict with the reduced `loss`, `q` (mean `min(q1, q2)` before the step)
        and `target` (mean TD target).
    """
    obs, nxt = batch["observation"], batch["next_observation"]
    alpha = tf.exp(tf.convert_to_tensor(log_alpha))
    variables = _variables(critics[0]) + _variables(critics[1])
    next_pi = actor(nxt, mode="sample")
    next_action = tf.stop_gradient(next_pi["action"])
    tq1 = target_critics[0](nxt, next_action)
    tq2 = target_critics[1](nxt, next_action)
    y = td_target(batch["reward"], tq1, tq2, tf.stop_gradient(next_pi["log_prob"]), alpha,
                  batch["terminated"], gamma, reward_scale)
    with tf.GradientTape() as tape:
        q1 = critics[0](obs, batch["action"])
        q2 = critics[1](obs, batch["action"])
        loss = reduce_loss(critic_loss(q1, q2, y), global_batch_size)
    optimizer.apply_gradients(zip(optimizers.gradients(tape, loss, variables, optimizer),
                                  variables))
    return {"loss": loss, "q": reduce_loss(tf.minimum(q1, q2), global_batch_size),
            "target": reduce_loss(y, global_batch_size)}


def temperature_step(log_alpha, log_prob, target_entropy, optimizer, global_batch_size=None):
    """One gradient step of `log_alpha` on `temperature_loss`; returns the reduced loss."""
    with tf.GradientTape() as tape:
        loss = reduce_loss(temperature_loss(log_alpha, log_prob, target_entropy),
                           global_batch_size)
    optimizer.apply_gradients(
        zip(optimizers.gradients(tape, loss, [log_alpha], optimizer), [log_alpha]))
    return loss


def sac_update(batch, actor, critics, target_critics, log_alpha, optimizers, gamma=0.99,
               tau=0.005, target_entropy=-3.0, global_batch_size=None, reward_scale=1.0):
    """One SAC iteration: actor step, critic step, temperature step, target update.

    Args:
        batch: dict with `observation`, `action` `(B, A)`, `reward` `(B,)`,
            `next_observation`, `terminated` `(B,)`; observations are any
            structure the networks accept.
        actor: callable `actor(observation, mode="sample")` returning a dict
            with `action` (reparameterised) and `log_prob` `(B,)`; has
            `trainable_variables`.
        critics: pair of callables `critic(observation, action) -> (B,)`.
        target_critics: their target copies (same variable order).
        log_alpha: scalar variable, `alpha = exp(log_alpha)`.
        optimizers: dict with `"actor"`, `"critic"`, `"alpha"` optimizers.
        gamma: discount. tau: Polyak rate. target_entropy: H_target (-A).
        global_batch_size: for the loss reduction (default: replicas x B).
        reward_scale: see `td_target`.

    Returns:
        dict of scalar metrics: `actor_loss`, `critic_loss`, `alpha_loss`,
        `alpha`, `q`, `log_prob`, `target`.
    """
    pi, loss_actor = actor_step(batch["observation"], actor, critics, log_alpha,
                                optimizers["actor"], global_batch_size)
    critic = critic_step(batch, actor, critics, target_critics, log_alpha, optimizers["critic"],
                         gamma, global_batch_size, reward_scale)
    loss_alpha = temperature_step(log_alpha, pi["log_prob"], target_entropy,
                                  optimizers["alpha"], global_batch_size)
    polyak_update(_variables_all(target_critics),
                  _variables(critics[0]) + _variables(critics[1]), tau)
    return {
        "actor_loss": loss_actor,
        "critic_loss": critic["loss"],
        "alpha_loss": loss_alpha,
        "alpha": tf.exp(tf.convert_to_tensor(log_alpha)),
        "q": critic["q"],
        "log_prob": reduce_loss(tf.stop_gradient(pi["log_prob"]), global_batch_size),
        "target": critic["target"],
    }


def _variables_all(modules):
    out = []
    for m in modules:
        # Target copies are frozen (trainable=False); use all their weights in order.
        out.extend(m.weights if hasattr(m, "weights") else m.variables)
    return out
