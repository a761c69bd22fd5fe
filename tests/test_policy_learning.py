"""End-to-end check that the REINFORCE blocks learn *where to look*.

Synthetic task: 24x24 images of noise with a 6x6 bright or dark square in each
of the four outer corners. Only the bottom-left square carries the label
(bright = 1, dark = 0); the other three are random distractors. A RAM-style
agent built from the library blocks takes a first (uninformative) glimpse at
the image centre, then a `CategoricalHead` picks one of the four quadrant
centres for a second 12x12 glimpse (`RetinaSensor`), and a linear classifier
reads the final core state. The policy is trained by REINFORCE with a
terminal 0/1 reward and the batch-mean baseline; the sensor path by
cross-entropy. After training, the greedy glimpse must land on the
informative quadrant, and a uniformly random choice of quadrant must classify
clearly worse (about 0.25 * 1 + 0.75 * 0.5 = 62.5 %).
"""

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse.layers.categorical_head import CategoricalHead
from keras_glimpse.layers.glimpse_network import GlimpseNetwork
from keras_glimpse.layers.recurrent_core import RecurrentCore
from keras_glimpse.layers.retina_sensor import RetinaSensor
from keras_glimpse.objectives import reinforce as rl

INFORMATIVE = 2  # bottom-left quadrant
# quadrant centres (y, x) in [-1, 1]: pixel 6 or 18 of 24 with floor centring
QUADRANT_LOCATIONS = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]], "float32")


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.3, size=(n, 24, 24, 1)).astype("float32")
    labels = rng.integers(0, 2, size=n).astype("int32")
    signs = rng.choice([-1.0, 1.0], size=(n, 4)).astype("float32")
    signs[:, INFORMATIVE] = 2.0 * labels - 1.0
    for q in range(4):
        r0, c0 = (0, 18)[q // 2], (0, 18)[q % 2]  # outer corners: unseen from the centre
        images[:, r0:r0 + 6, c0:c0 + 6, 0] += signs[:, q, None, None]
    return images, labels


class QuadrantAgent(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sensor = RetinaSensor(glimpse_size=12)
        self.glimpse_net = GlimpseNetwork(glimpse_units=32, location_units=16, output_units=64)
        self.core = RecurrentCore(64, cell_type="rnn")
        self.policy = CategoricalHead(4, seed=1)
        self.classifier = keras.layers.Dense(2)
        self.quadrants = tf.constant(QUADRANT_LOCATIONS)

    def rollout(self, images, mode="greedy", actions=None):
        batch = tf.shape(images)[0]
        states = self.core.get_initial_state(batch)
        centre = tf.zeros((batch, 2))
        h, states = self.core(self.glimpse_net(self.sensor(images, centre), centre), states)
        out = self.policy(tf.stop_gradient(h), mode=mode)
        action = out["action"] if actions is None else actions
        where = tf.gather(self.quadrants, action)
        h, states = self.core(self.glimpse_net(self.sensor(images, where), where), states)
        return dict(out, action=action, logits=self.classifier(h))

    def call(self, images):
        return self.rollout(images)["logits"]

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            out = self.rollout(images, mode="sample")
            ce = keras.losses.sparse_categorical_crossentropy(labels, out["logits"],
                                                              from_logits=True)
            correct = tf.cast(tf.argmax(out["logits"], -1, output_type=tf.int32) == labels,
                              tf.float32)
            returns = rl.terminal_returns(tf.stop_gradient(correct), 1)
            advantages = returns - rl.batch_mean_baseline(returns)
            per_example = (ce + rl.policy_gradient_loss(out["log_prob"][:, None], advantages)
                           - 0.01 * rl.entropy_bonus(out["entropy"]))
            loss = rl.reduce_loss(per_example)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss, "reward": tf.reduce_mean(correct)}


def test_reinforce_agent_learns_where_to_look():
    keras.utils.set_random_seed(0)
    x_train, y_train = make_data(1024, seed=0)
    x_test, y_test = make_data(512, seed=1)
    agent = QuadrantAgent()
    agent(x_train[:2])
    # XLA would compile in longer than these 100 tiny steps take (the blocks'
    # jit_compile support is tested in their own unit tests).
    agent.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(64, drop_remainder=True)
    agent.fit(ds.repeat(), epochs=1, steps_per_epoch=100, verbose=0)

    greedy = agent.rollout(tf.constant(x_test), mode="greedy")
    hit_rate = float(np.mean(greedy["action"].numpy() == INFORMATIVE))
    acc = float(np.mean(np.argmax(greedy["logits"], -1) == y_test))

    random_actions = np.random.default_rng(2).integers(0, 4, size=len(y_test)).astype("int32")
    rand = agent.rollout(tf.constant(x_test), actions=tf.constant(random_actions))
    random_hit = float(np.mean(random_actions == INFORMATIVE))
    random_acc = float(np.mean(np.argmax(rand["logits"], -1) == y_test))
    print(f"learned: hit {hit_rate:.3f} acc {acc:.3f}; random: hit {random_hit:.3f} "
          f"acc {random_acc:.3f}")

    assert hit_rate > 0.8, hit_rate
    assert acc > 0.9, acc
    assert random_hit < 0.4, random_hit
    assert random_acc < acc - 0.2, (random_acc, acc)
