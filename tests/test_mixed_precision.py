"""Mixed precision (`mixed_float16`) and XLA: every family's train step.

Under `mixed_float16` the layers compute in float16 but the heads, losses and
gradients of the custom train steps must behave as in float32: the loss is
scaled by each optimizer's dynamic loss scale before differentiation and the
scale is divided out again by the optimizer. A step that forgets either moves
the weights 2**15 times too little (or too much): with SGD (whose update is
proportional to the gradient) that is what the family test below catches.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse import optimizers, precision, training
from keras_glimpse.layers.gaussian_location_head import GaussianLocationHead
from keras_glimpse.layers.value_head import ValueHead


@pytest.fixture
def mixed():
    previous = precision.set_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy(previous)


def test_gradients_carry_the_loss_scale_that_apply_divides_out(mixed):
    w = keras.Variable(np.ones(3, np.float32))
    opt = optimizers.loss_scaled(keras.optimizers.SGD(1.0),
                                 keras.layers.Identity(dtype="mixed_float16"))
    assert isinstance(opt, keras.optimizers.LossScaleOptimizer)
    c = tf.constant([1e-6, 2e-6, -3e-6])  # float16 would flush these gradients to zero

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(w * c)
        grads = optimizers.gradients(tape, loss, [w], opt)
        opt.apply_gradients(zip(grads, [w]))
        return grads[0]

    grads = step()
    scale = float(opt.dynamic_scale.numpy())
    assert scale == 2.0 ** 15
    np.testing.assert_allclose(grads.numpy(), c.numpy() * scale, rtol=1e-6)
    np.testing.assert_allclose(w.numpy(), 1.0 - c.numpy(), rtol=1e-6)


def test_gradients_without_loss_scaling_are_the_tapes():
    w = keras.Variable(np.ones(2, np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(3.0 * w)
    opt = keras.optimizers.SGD(1.0)
    assert optimizers.loss_scaled(opt, keras.layers.Identity()) is opt  # float32: no wrapper
    np.testing.assert_allclose(optimizers.gradients(tape, loss, [w], opt)[0], [3.0, 3.0])


def test_heads_compute_in_float32_under_a_mixed_policy(mixed):
    head, value = GaussianLocationHead(std=0.1), ValueHead(hidden_units=4)
    h = tf.ones([2, 8], tf.float16)
    out = head(h)
    assert head.compute_dtype == "float32" and head.mean_dense.compute_dtype == "float32"
    assert out["action"].dtype == tf.float32 and out["log_prob"].dtype == tf.float32
    assert value(h).dtype == tf.float32
    assert keras.layers.Dense(2).compute_dtype == "float16"  # the rest stays float16
    with pytest.raises(ValueError, match="dtype_policy must be one of"):
        precision.set_policy("float8")


def test_an_unknown_dtype_policy_is_refused_by_name():
    with pytest.raises(ValueError, match="training.dtype_policy must be one of"):
        training.resolve_config("ram_mnist28",
                                overrides={"training.dtype_policy": "float16"})


# One toy configuration per family and trained stage; the optimizers each
# family's `compile` takes (all SGD here: an update proportional to the gradient).
TOY = {
    "ram_mnist28": [],
    "uram_mnist28": ["hidden_units=32", "num_glimpses=3"],
    "recap_mnist28": ["embed_dim=8", "gate_units=8", "policy_units=8", "value_units=8",
                      "num_steps=2"],
    "patchdrop_digits64": ["cifar_widths=[2, 4, 4]"],
    "ordinal_cluttered84": ["embedding_dim=8", "fc_units=8", "hidden_units=4", "num_steps=2",
                            "data.num_examples=8", "training.train_examples=8"],
    "adaglimpse_digits_classification": ["hidden_units=8", "rl_batch_size=4",
                                         "replay_capacity=16", "init_random_steps=0"],
}
# The RL stage of every family by default; every other stage in `make test-slow`.
STAGES = [("ram_mnist28", None), ("uram_mnist28", None), ("recap_mnist28", "agent"),
          ("patchdrop_digits64", "finetune"), ("ordinal_cluttered84", "joint"),
          ("adaglimpse_digits_classification", "rl")]
# (PatchDrop's pretrain stage is left out: at toy size its self-critical
# advantage, and so its one step, is often exactly 0; finetune trains the same policy.)
SLOW_STAGES = [("recap_mnist28", "pretrain"), ("patchdrop_digits64", "classifier"),
               ("patchdrop_digits64", "finetune2stream"), ("ordinal_cluttered84", "pretrain"),
               ("adaglimpse_digits_classification", "pretrain")]
OPTIMIZER_ARGS = {
    "recap": ("optimizer", "policy_optimizer", "value_optimizer"),
    "ordinal": ("optimizer", "agent_optimizer"),
    "adaglimpse": ("optimizer", "actor_optimizer", "critic_optimizer", "alpha_optimizer"),
}


def _one_step(name, stage, policy, jit=False, weights=None):
    """Trainable weights before and after one `fit` step of the toy `name`."""
    overrides = TOY[name]
    keras.utils.set_random_seed(0)
    limit = (["data.num_examples=8"] if name.startswith(("ram", "uram"))
             else [] if name.startswith("ordinal") else ["data.limit=8"])
    overrides = overrides + limit + [f"training.dtype_policy={policy}"]
    cfg = training.resolve_config(name, stage=stage, batch_size=4,
                                  overrides=training.parse_overrides(overrides))
    model = training.build_model(cfg, compile=False)
    assert model.dtype_policy.name == policy
    assert keras.config.dtype_policy().name == "float32"  # restored after the build
    names = OPTIMIZER_ARGS.get(cfg["builder"], ("optimizer",))
    model.compile(**{n: keras.optimizers.SGD(0.01) for n in names})
    model.jit_compile = jit
    x, y = next(iter(training.make_data(cfg, "train")))
    if weights is not None:
        model.set_weights(weights)
    initial = model.get_weights()
    before = [np.array(v) for v in model.trainable_variables]
    scaled = [o for o in (getattr(model, n) for n in names)
              if isinstance(o, keras.optimizers.LossScaleOptimizer)]
    for _ in range(8):
        model.set_weights(initial)
        keras.utils.set_random_seed(1)
        scales = [float(o.dynamic_scale.numpy()) if o.built else None for o in scaled]
        history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history
        # Dynamic loss scaling skips a step whose scaled gradients overflow float16
        # and halves the scale: the compared step is the first one not skipped.
        if all(s is None or float(o.dynamic_scale.numpy()) >= s
               for s, o in zip(scales, scaled)):
            break
    after = [np.array(v) for v in model.trainable_variables]
    return {"model": model, "optimizers": names, "initial": initial, "before": before,
            "after": after, "history": history}


def _flat(xs):
    return np.concatenate([np.ravel(x).astype(np.float64) for x in xs])


def _cases(slow_too=(), slow=()):
    return ([pytest.param(n, s, id=f"{n}-{s}") for n, s in STAGES if (n, s) not in slow]
            + [pytest.param(n, s, id=f"{n}-{s}", marks=pytest.mark.slow)
               for n, s in list(slow_too) + [c for c in STAGES if c in slow]])


@pytest.mark.parametrize("name,stage", _cases(SLOW_STAGES))
def test_mixed_float16_step_moves_the_weights_as_float32_does(name, stage):
    run32 = _one_step(name, stage, "float32")
    run16 = _one_step(name, stage, "mixed_float16", weights=run32["initial"])
    before, after32, before16, after16 = (run32["before"], run32["after"], run16["before"],
                                          run16["after"])
    history = run16["history"]
    assert all(np.isfinite(v[-1]) for v in history.values()), history
    for attribute in run16["optimizers"]:  # (RECAP's pretrain stage has no policy optimizer)
        optimizer = getattr(run16["model"], attribute)
        assert optimizer is None or isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    np.testing.assert_array_equal(_flat(before16), _flat(before))
    # Every weight float32 moves moves by a comparable amount: float16 compute
    # changes the last digits (and, through them, some sampled actions), a
    # missing or undone loss scale changes that optimizer's steps by 2**15.
    moved = 0
    steps32 = [np.linalg.norm(a - b) for a, b in zip(after32, before)]
    for v, b, a32, a16 in zip(run32["model"].trainable_variables, before, after32, after16):
        d32, d16 = np.linalg.norm(a32 - b), np.linalg.norm(a16 - b)
        if d32 > 1e-4 * max(steps32):  # (not round-off, e.g. attention key biases)
            moved += 1
            assert 1e-2 < d16 / d32 < 1e2, (v.path, d16 / d32)
    assert moved > 0


# (AdaGlimpse's RL step takes 70 s to compile at toy size: make test-slow)
@pytest.mark.parametrize("name,stage", _cases(
    SLOW_STAGES, slow=[("adaglimpse_digits_classification", "rl")]))
def test_every_train_step_compiles_with_xla(name, stage):
    run = _one_step(name, stage, "float32", jit=True)
    assert run["model"].jit_compile is True  # Keras did not fall back to the plain graph
    assert all(np.isfinite(v[-1]) for v in run["history"].values()), run["history"]
    assert np.linalg.norm(_flat(run["after"]) - _flat(run["before"])) > 0
