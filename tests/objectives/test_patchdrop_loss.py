"""PatchDrop's pure loss (`objectives.patchdrop`), checked by hand on tiny tensors."""

import numpy as np
import tensorflow as tf

from keras_glimpse.objectives.patchdrop import patchdrop_loss, patchdrop_reward

LOGP = [[-1.0, -0.5], [-2.0, -0.25]]  # (B=2, N=2) log p of the sampled patch actions
SAMPLE_R = [0.75, -0.5]
GREEDY_R = [0.5, 0.0]  # advantages 0.25, -0.5


def test_policy_only_loss_is_the_self_critical_pg_over_the_patches():
    # pg_b = -A_b sum_i log p_bi: 0.375 and -1.125; divided by N = 2.
    loss = patchdrop_loss(tf.constant(LOGP), SAMPLE_R, GREEDY_R).numpy()
    np.testing.assert_allclose(loss, [0.1875, -0.5625], rtol=1e-6)


def test_joint_loss_adds_the_cross_entropy_of_the_sampled_mask():
    logits = tf.constant([[2.0, 0.0], [0.0, 0.0]])
    loss = patchdrop_loss(tf.constant(LOGP), SAMPLE_R, GREEDY_R, logits,
                          tf.constant([0, 1])).numpy()
    ce = [np.log(1.0 + np.exp(-2.0)), np.log(2.0)]
    np.testing.assert_allclose(loss, [0.375 + ce[0], -1.125 + ce[1]], rtol=1e-6)


def test_rewards_are_constants_and_the_gradient_is_minus_the_advantage():
    logp = tf.Variable(LOGP)
    rs, rg = tf.Variable(SAMPLE_R), tf.Variable(GREEDY_R)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(patchdrop_loss(logp, rs, rg))
    g_logp, g_rs, g_rg = tape.gradient(loss, [logp, rs, rg])
    np.testing.assert_allclose(g_logp.numpy(), [[-0.125, -0.125], [0.25, 0.25]], rtol=1e-6)
    assert g_rs is None and g_rg is None


def test_reward_hand_values():
    actions = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], "float32")
    np.testing.assert_allclose(patchdrop_reward([True, False], actions, -10.0), [0.75, -10.0])
