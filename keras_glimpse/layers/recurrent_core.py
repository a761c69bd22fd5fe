"""A recurrent core with an explicit state API, for Python-unrolled glimpse loops."""

import keras

from keras_glimpse.validation import positive_int

_CELL_TYPES = ("rnn", "lstm", "gru")


@keras.saving.register_keras_serializable(package="keras_glimpse")
class RecurrentCore(keras.layers.Layer):
    """One step of a recurrent memory, with explicit state in and out.

    Glimpse models unroll their episode in Python inside `train_step` (the
    next input depends on the action sampled from the current output), so the
    core is a cell, not a sequence layer:

    - `"rnn"`: RAM's core, h_t = ReLU(W_i x_t + W_h h_{t-1} + b). (RAM's two
      biases b_i + b_h are one bias here; the function class is the same.)
      Also the ordinal agent's ReLU RNN.
    - `"lstm"`: an LSTM cell, state `[h, c]` (RECAP's ContextMemory).
    - `"gru"`: a GRU cell (`reset_after=True`, as cuDNN / PyTorch).

    The state is always a Python list of `(B, units)` tensors (one for
    "rnn"/"gru", two for "lstm"), starting from zeros
    (`get_initial_state`). The layer works in eager mode, inside a
    `tf.function` and under `jit_compile=True`.

    Args:
        units: state / output width.
        cell_type: `"rnn"`, `"lstm"` or `"gru"`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(B, D)` float tensor.
        states: list of `(B, units)` tensors, as from `get_initial_state`.
        training: Python bool (unused by the cells, forwarded).

    Returns:
        `(output, new_states)`: `output` is `(B, units)` (h_t), `new_states` a
        list shaped like `states`.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.recurrent_core import RecurrentCore
    >>> core = RecurrentCore(8, cell_type="lstm")
    >>> states = core.get_initial_state(2)
    >>> for _ in range(3):
    ...     h, states = core(np.ones((2, 4), "float32"), states)
    >>> tuple(h.shape), len(states)
    ((2, 8), 2)

    Reference:
        Mnih et al., "Recurrent Models of Visual Attention", NIPS 2014 (core
        network f_h); RECAP `networks.py::ContextMemory` (LSTMCell).
    """

    def __init__(self, units, cell_type="rnn", **kwargs):
        super().__init__(**kwargs)
        positive_int("units", units)
        if cell_type not in _CELL_TYPES:
            raise ValueError(
                f"`cell_type` must be one of {_CELL_TYPES}; received cell_type={cell_type!r}."
            )
        self.units = units
        self.cell_type = cell_type
        if cell_type == "rnn":
            self.cell = keras.layers.SimpleRNNCell(units, activation="relu", name="cell")
        elif cell_type == "lstm":
            self.cell = keras.layers.LSTMCell(units, name="cell")
        else:
            self.cell = keras.layers.GRUCell(units, name="cell")

    @property
    def num_states(self):
        """Number of state tensors (2 for LSTM, else 1)."""
        return 2 if self.cell_type == "lstm" else 1

    @property
    def state_size(self):
        return [self.units] * self.num_states

    def get_initial_state(self, batch_size):
        """Returns a list of `num_states` zero tensors of shape `(batch_size, units)`.

        `batch_size` may be a Python int or a scalar tensor (e.g. `tf.shape(x)[0]`).
        """
        return [keras.ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
                for _ in range(self.num_states)]

    def build(self, inputs_shape, states_shape=None):
        self.cell.build(tuple(inputs_shape))
        self.built = True

    def call(self, inputs, states, training=None):
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) != self.num_states:
            raise ValueError(
                f"RecurrentCore(cell_type={self.cell_type!r}) expects {self.num_states} state "
                f"tensor(s); received {len(states)}."
            )
        output, new_states = self.cell(inputs, states, training=training)
        if not isinstance(new_states, (list, tuple)):
            new_states = [new_states]
        return output, list(new_states)

    def compute_output_shape(self, inputs_shape, states_shape=None):
        out = (inputs_shape[0], self.units)
        return out, [out] * self.num_states

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "cell_type": self.cell_type})
        return config
