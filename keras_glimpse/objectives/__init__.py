"""Pure objective functions (per-example values, no state).

- `reinforce`: returns, baselines, advantages, policy-gradient/entropy/baseline losses.
- `sac`: Soft Actor-Critic critic/actor/temperature losses, TD target, Polyak update.
- `replay_buffer`: the on-device ring buffer SAC samples from.
- `triplet`: the ordinal triplet loss, ordinal accuracies and the box-pair sampler.
- `box_dynamics`: the ordinal agent's 10 box actions and IoU.
- `ordinal`: the ordinal localiser's agent loss (embedding-distance rewards).
- `patchdrop`: PatchDrop's reward and self-critical REINFORCE (+ CE) loss.
- `recap`: RECAP's per-step confidence reward, terminal reward and entropy-weight decay.

RAM's and URAM's losses are `keras_glimpse.models.ram.ram_loss` / `keras_glimpse.models.uram.uram_loss`.
"""

from keras_glimpse.objectives import (  # noqa: F401
    box_dynamics, ordinal, patchdrop, recap, reinforce, replay_buffer, sac, triplet)
