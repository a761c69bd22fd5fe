"""Pure objective functions (per-example values, no state).

- `reinforce`: returns, baselines, advantages, policy-gradient/entropy/baseline losses.
- `sac`: Soft Actor-Critic critic/actor/temperature losses, TD target, Polyak update.
- `replay_buffer`: the on-device ring buffer SAC samples from.
- `triplet`: the ordinal triplet loss, ordinal accuracies and the box-pair sampler.
- `box_dynamics`: the ordinal agent's 10 box actions and IoU.
"""

from keras_glimpse.objectives import box_dynamics, reinforce, replay_buffer, sac, triplet  # noqa: F401
