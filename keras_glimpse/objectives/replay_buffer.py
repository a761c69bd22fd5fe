"""A fixed-shape, on-device FIFO replay buffer with uniform sampling."""

import keras
import tensorflow as tf

from keras_glimpse.validation import positive_int


def _local(variable):
    """This replica's own copy of a per-replica (`ON_READ`) variable.

    `SyncOnReadVariable` implements neither `scatter_nd_update` nor a sparse
    gather in replica context; its per-replica component is a plain resource
    variable that does. Outside a strategy this is the variable itself.
    """
    get = getattr(variable, "_get_on_device_or_primary", None)
    return get() if get is not None else variable


class ReplayBuffer:
    """Ring buffer of transitions held in `tf.Variable`s (no host round trip).

    Every transition is a nested structure of fixed-shape tensors described by
    `spec` (a nest of `tf.TensorSpec` without the batch axis). `add` writes a
    batch of transitions at the write pointer (FIFO: the oldest are
    overwritten once `capacity` is reached); `sample` draws indices uniformly
    with replacement from the filled part. Everything runs inside
    `tf.function` and XLA. Under a `tf.distribute` strategy each replica keeps
    its own buffer (variables are `ON_READ` synchronised), which is how
    data-parallel off-policy RL shards its experience. Create the buffer in
    the strategy scope. It is not a Keras layer on purpose: its (large)
    variables are not part of checkpoints or exports.

    Args:
        spec: nest of `tf.TensorSpec` (per transition).
        capacity: number of transitions kept (10,000 in AdaGlimpse).
        seed: int or None, seeds the sampling `keras.random.SeedGenerator`.

    Example:
    >>> import tensorflow as tf
    >>> from keras_glimpse.objectives.replay_buffer import ReplayBuffer
    >>> buf = ReplayBuffer({"r": tf.TensorSpec((), tf.float32)}, capacity=4, seed=0)
    >>> buf.add({"r": tf.constant([1.0, 2.0, 3.0])})
    >>> int(buf.size), tuple(buf.sample(5)["r"].shape)
    (3, (5,))

    Reference:
        Lin, "Self-improving reactive agents based on reinforcement learning,
        planning and teaching", 1992 (experience replay).
    """

    def __init__(self, spec, capacity=10000, seed=None):
        positive_int("capacity", capacity)
        self.spec = spec
        self.capacity = capacity
        self.seed = seed
        kwargs = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                      aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self._storage = [
            tf.Variable(tf.zeros((capacity,) + tuple(s.shape), s.dtype), name="replay", **kwargs)
            for s in tf.nest.flatten(spec)
        ]
        self._pointer = tf.Variable(tf.constant(0, tf.int32), name="replay_pointer", **kwargs)
        self._size = tf.Variable(tf.constant(0, tf.int32), name="replay_size", **kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed, name="replay_seed")

    @property
    def size(self):
        """Number of transitions stored (int32 tensor)."""
        return _local(self._size).read_value()

    def add(self, transitions):
        """Appends a batch of transitions (a nest matching `spec`, leading batch axis)."""
        flat = tf.nest.flatten(transitions)
        tf.nest.assert_same_structure(self.spec, transitions)
        n = tf.shape(flat[0])[0]
        pointer, size = _local(self._pointer), _local(self._size)
        idx = (pointer.read_value() + tf.range(n)) % self.capacity
        for var, value in zip(self._storage, flat):
            _local(var).scatter_nd_update(idx[:, None], tf.cast(value, var.dtype))
        pointer.assign((pointer.read_value() + n) % self.capacity)
        size.assign(tf.minimum(size.read_value() + n, self.capacity))

    def sample(self, batch_size):
        """`batch_size` transitions drawn uniformly with replacement (empty buffer: slot 0)."""
        size = tf.maximum(_local(self._size).read_value(), 1)
        u = keras.random.uniform((batch_size,), seed=self.seed_generator)
        idx = tf.minimum(tf.cast(tf.floor(u * tf.cast(size, tf.float32)), tf.int32), size - 1)
        flat = [_local(var).sparse_read(idx) for var in self._storage]
        return tf.nest.pack_sequence_as(self.spec, flat)
