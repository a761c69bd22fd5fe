"""The ordinal localiser's pure agent loss (`objectives.ordinal`), by hand."""

import numpy as np
import tensorflow as tf

from keras_glimpse.objectives.ordinal import agent_loss

D = [[10.0, 8.0, 9.0], [10.0, 7.0, 7.0]]  # distances d_0..d_2: rewards [2, -1], [3, 0]
LOGP = [[-1.0, -2.0], [-0.5, -1.0]]
ENT = [[1.0, 2.0], [0.5, 0.5]]


def test_agent_loss_hand_values():
    out = agent_loss(tf.constant(LOGP), tf.constant(ENT), tf.constant(D), gamma=0.5,
                     entropy_weight=5.0)
    np.testing.assert_allclose(out["rewards"], [[2.0, -1.0], [3.0, 0.0]])
    # returns (gamma 0.5): [1.5, -1], [3, 0]; per-step batch-mean baseline [2.25, -0.5].
    np.testing.assert_allclose(out["returns"], [[1.5, -1.0], [3.0, 0.0]])
    np.testing.assert_allclose(out["advantages"], [[-0.75, -0.5], [0.75, 0.5]])
    # l_b = -sum_t log p A - 5 sum_t H: -1.75 - 15 and 0.875 - 5.
    np.testing.assert_allclose(out["loss"], [-16.75, -4.125], rtol=1e-6)


def test_agent_loss_gradient_is_minus_the_advantage_and_minus_the_entropy_weight():
    logp, ent, d = tf.Variable(LOGP), tf.Variable(ENT), tf.Variable(D)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(agent_loss(logp, ent, d, gamma=0.5, entropy_weight=5.0)["loss"])
    g_logp, g_ent, g_d = tape.gradient(loss, [logp, ent, d])
    np.testing.assert_allclose(g_logp.numpy(), [[0.75, 0.5], [-0.75, -0.5]])
    np.testing.assert_allclose(g_ent.numpy(), np.full((2, 2), -5.0))
    assert g_d is None  # rewards and advantages are constants
