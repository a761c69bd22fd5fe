"""Mixed precision: which layers compute in float32, and the global policy.

Under a mixed policy (`mixed_float16`, `mixed_bfloat16`: float16/bfloat16
compute, float32 variables) every layer computes in the low precision except
the ones whose outputs become a probability distribution, a value estimate, a
prediction scored by a loss or a reward, or a glimpse location: those take
`dtype=output_dtype()` and compute in float32 (Keras casts their inputs), so
that log-probabilities, advantages, losses and box arithmetic stay float32.
Under a plain policy `output_dtype()` is that policy, so nothing changes.

The loss scaling that `mixed_float16` needs in custom train steps is in
`keras_glimpse.optimizers` (`loss_scaled`, `gradients`).
"""

import keras
import tensorflow as tf

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def output_dtype(dtype=None):
    """The dtype policy for a layer whose outputs feed a loss, a distribution
    or a location: `dtype` when given, else the variable dtype (float32) of
    the global policy when that policy is mixed, else None (the global one)."""
    if dtype is not None:
        return dtype
    policy = keras.config.dtype_policy()
    if policy.compute_dtype != policy.variable_dtype:
        return policy.variable_dtype
    return None


def check_policy(name):
    """Raises a one-line ValueError unless `name` is one of `POLICIES`."""
    if name not in POLICIES:
        raise ValueError(f"training.dtype_policy must be one of {POLICIES}; received {name!r}.")


def set_policy(name):
    """Sets Keras' global dtype policy to `name` (one of `POLICIES`) for the
    models built next; returns the previous policy's name."""
    check_policy(name)
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(name)
    return previous


def mask_value(dtype, value):
    """`value` (a large negative logit that masks an entry out of a softmax)
    as a finite number of `dtype`: under float16, where -1e8 is -inf and a row
    with every entry masked would turn into NaN, half float16's most negative
    number (-32752); unchanged in float32."""
    return max(float(value), 0.5 * float(tf.as_dtype(dtype).min))
