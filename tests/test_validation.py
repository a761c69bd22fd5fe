import numpy as np
import pytest

from keras_glimpse.validation import check_seed, integer, number, positive_int


def test_positive_int():
    assert positive_int("n", 3) == 3 and positive_int("n", np.int64(2)) == 2
    assert positive_int("n", None, allow_none=True) is None
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=r"`n` must be a positive integer; received n="):
            positive_int("n", bad)
    with pytest.raises(ValueError, match="positive integer or None"):
        positive_int("n", 0, allow_none=True)


def test_number_and_seed():
    assert number("x", 2) == 2.0 and isinstance(number("x", 2), float)
    for bad in (True, "1", None):
        with pytest.raises(ValueError, match="`x` must be a number"):
            number("x", bad)
    assert check_seed(None) is None and check_seed(7) == 7
    for bad in (1.5, False, "0"):
        with pytest.raises(ValueError, match="`seed` must be an int or None"):
            check_seed(bad)


def test_integer_with_a_minimum_and_bounded_numbers():
    assert integer("k", 2, minimum=2) == 2 and integer("k", 0, minimum=0) == 0
    assert type(integer("k", np.int64(5))) is int  # JSON-serialisable in get_config
    with pytest.raises(ValueError, match=r"`k` must be an integer >= 2; received k=1"):
        integer("k", 1, minimum=2)
    assert number("x", 0, minimum=0) == 0.0
    with pytest.raises(ValueError, match=r"`x` must be a number >= 0; received x=-1"):
        number("x", -1, minimum=0)
    with pytest.raises(ValueError, match=r"`x` must be a number > 0; received x=0"):
        number("x", 0, minimum=0, strict=True)
