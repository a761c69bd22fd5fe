"""AdaGlimpse's training schedule, reward and fixed-grid baseline: pure functions.

`phase_of_epoch` says what an epoch trains (`PHASES`), `rewards_from_scores`
turns the task scores of an episode into the agent's per-step rewards, and
`grid_actions` is the fixed lattice of glimpses used as a baseline policy.
The model (`models.adaglimpse`) calls these; they hold no state.
"""

import collections
import math

import numpy as np
import tensorflow as tf

STAGES = ("rl", "pretrain")
BACKBONE_TRAINING = ("alternating", "rl_only", "backbone_only")

# The phases of training and what each trains (see `phase_of_epoch`): `trains`
# is "agent" (SAC on the replay buffer; backbone frozen) or "backbone" (one
# task-loss step on the glimpses of `policy`; agent frozen), `first_actions`
# the fixed first glimpses (pretraining starts with the whole image).
Phase = collections.namedtuple("Phase", ["trains", "policy", "first_actions"])
PHASES = {
    "pretrain": Phase("backbone", "random", ((0.0, 0.0, 1.0),)),
    "rl": Phase("agent", "actor", None),
    "backbone": Phase("backbone", "actor", None),
}


def phase_of_epoch(epoch, stage="rl", backbone_training="alternating",
                   freeze_backbone_epochs=10):
    """The phase (a `PHASES` key) of 0-based `epoch`: the whole schedule.

    `stage="pretrain"`: every epoch is "pretrain". `stage="rl"`: epochs before
    `freeze_backbone_epochs` are "rl"; then `backbone_training="alternating"`
    gives "rl" and "backbone" in turn, "rl_only" always "rl",
    "backbone_only" always "backbone" (from the first epoch).
    """
    if stage == "pretrain":
        return "pretrain"
    if backbone_training == "backbone_only":
        return "backbone"
    if backbone_training == "rl_only" or epoch < freeze_backbone_epochs:
        return "rl"
    return "rl" if (epoch - freeze_backbone_epochs) % 2 == 0 else "backbone"


def rewards_from_scores(scores, reward_type="diff"):
    """Rewards from the task scores `S_0..S_T` `(B, T+1)` -> `(B, T)`.

    `"diff"`: `r_t = S_t - S_{t-1}` (telescopes to `S_T - S_0`); `"simple"`: `r_t = S_t`.
    """
    if reward_type == "diff":
        return scores[:, 1:] - scores[:, :-1]
    if reward_type == "simple":
        return scores[:, 1:]
    raise ValueError(f"`reward_type` must be 'diff' or 'simple'; received {reward_type!r}.")


def grid_actions(batch, num_glimpses, image_shape, patch_size, grid_size,
                 max_glimpse_size_ratio=1.0):
    """A fixed lattice of glimpses (baseline): k x k positions, tile-sized,
    `k = ceil(sqrt(num_glimpses))`; a list of `num_glimpses` actions `(batch, 3)`."""
    k = int(math.ceil(math.sqrt(num_glimpses)))
    h, w = image_shape[0], image_shape[1]
    d_min = float(patch_size * grid_size)
    d_max = min(h, w) * max_glimpse_size_ratio
    side = min(h, w) / k
    scale = 0.0 if d_max <= d_min else float(np.clip((side - d_min) / (d_max - d_min), 0, 1))
    pos = np.linspace(0.0, 1.0, k) if k > 1 else np.array([0.5])
    acts = tf.constant(np.asarray([(pos[i // k], pos[i % k], scale)
                                   for i in range(num_glimpses)], "float32"))
    return [tf.tile(acts[t][None], [batch, 1]) for t in range(num_glimpses)]
