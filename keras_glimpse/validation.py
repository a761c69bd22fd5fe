"""Argument checks shared by the layers and models (one message format everywhere)."""

import numpy as np


def positive_int(name, value, allow_none=False):
    """Returns `value` if it is an int >= 1 (or None when `allow_none`), else raises.

    Raises:
        ValueError: "`name` must be a positive integer; received name=value."
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        either = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be a positive integer{either}; received {name}={value!r}.")
    return value


def number(name, value):
    """Returns `float(value)` for an int or float (not a bool), else raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a number; received {name}={value!r}.")
    return float(value)


def check_seed(value):
    """Returns `value` if it is an int or None (a layer's sampling seed), else raises."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"`seed` must be an int or None; received seed={value!r}.")
    return value
