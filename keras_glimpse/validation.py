"""Argument checks shared by the layers and models (one message format everywhere)."""

import numpy as np


def integer(name, value, minimum=1, allow_none=False):
    """Returns `int(value)` if it is an integer >= `minimum` (or None when
    `allow_none`), else raises.

    Python and NumPy integers pass; bools and floats do not.

    Raises:
        ValueError: "`name` must be a positive integer; received name=value."
            (or "an integer >= minimum" when `minimum` is not 1).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        either = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be {kind}{either}; received {name}={value!r}.")
    return int(value)


def positive_int(name, value, allow_none=False):
    """`integer(name, value, minimum=1, allow_none)`."""
    return integer(name, value, 1, allow_none)


def number(name, value, minimum=None, strict=False):
    """Returns `float(value)` for an int or float (not a bool), else raises ValueError.

    With `minimum`, the value must also be >= `minimum` (> when `strict`).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number; received {name}={value!r}.")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"`{name}` must be a number {bound}; received {name}={value!r}.")
    return float(value)


def check_seed(value):
    """Returns `value` if it is an int or None (a layer's sampling seed), else raises."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"`seed` must be an int or None; received seed={value!r}.")
    return value
