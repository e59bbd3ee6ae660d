"""The Python face of models, passes and training helpers: errors become
the matching cvis.Error subclasses, and arguments that the C functions
cannot check (array lengths) are checked here."""
import numpy as np
import pytest

import cvis


def small_model():
    m = cvis.Model(6, 6, 2)
    m.conv2d(3, 3, activation="relu")
    m.flatten()
    m.dense(4)
    return m


def test_errors_map_to_exception_classes():
    m = small_model()
    with pytest.raises(cvis.NotFoundError, match="nope"):
        m.layer_index("nope")
    with pytest.raises(cvis.RangeError):
        m.layer(7)
    with pytest.raises(cvis.ShapeError, match="6x5x2"):
        m.predict(np.zeros((1, 6, 5, 2), np.float32))
    x = np.zeros((1, 6, 6, 2), np.float32)
    x[0, 1, 1, 0] = np.nan
    with pytest.raises(cvis.NonFiniteError):
        m.predict(x)
    with pytest.raises(cvis.InvalidArgumentError, match="already exists"):
        m.dense(2, name="dense")
    w = m.layer(0).weights()
    w[0][0, 0, 0, 0] = np.inf
    with pytest.raises(cvis.NonFiniteError):
        m.layer(0).set_weights(w)


def test_softmax_cross_entropy_matches_numpy():
    z = np.array([[1, 2, 3], [0.5, -1, 2]], np.float32)
    labels = [2, 0]
    loss, d = cvis.softmax_cross_entropy(z, labels)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[[0, 1], labels]).mean(), rel=1e-6)
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(d, (p - onehot) / 2, atol=1e-7)


def test_softmax_cross_entropy_checks_the_label_count():
    z = np.zeros((4, 3), np.float32)
    # fewer labels than rows: the C function would read past the array
    with pytest.raises(cvis.ShapeError, match="2 labels"):
        cvis.softmax_cross_entropy(z, [0, 1])
    with pytest.raises(cvis.ShapeError):
        cvis.softmax_cross_entropy(z, [0, 1, 2, 0, 1])
    with pytest.raises(cvis.RangeError):
        cvis.softmax_cross_entropy(z, [0, 1, 2, 3])


def test_training_steps_lower_the_loss():
    rng = np.random.default_rng(0)
    m = small_model()
    x = rng.uniform(0, 1, (8, 6, 6, 2)).astype(np.float32)
    labels = np.arange(8) % 4
    x[np.arange(8), labels, :, 0] += 2  # the bright row tells the class
    p = cvis.Pass(m, weight_grads=True, input_grad=False)
    opt = cvis.Optimizer("adam", 0.02)
    losses = []
    for _ in range(25):
        out = p.forward(x)
        loss, d = cvis.softmax_cross_entropy(out, labels)
        losses.append(loss)
        p.backward(d)
        assert p.input_grad() is None
        opt.step_model(m, p)
    assert losses[-1] < 0.5 * losses[0]


def test_forward_only_pass_keeps_the_outputs_only():
    """forward_only: the same outputs, bit for bit, as an ordinary pass;
    the freed layers read None and backward is refused."""
    rng = np.random.default_rng(1)
    m = small_model()
    m.init_weights(3)
    x = rng.uniform(0, 1, (5, 6, 6, 2)).astype(np.float32)
    full = cvis.Pass(m, input_grad=False)
    lean = cvis.Pass(m, input_grad=False, forward_only=True)
    assert np.array_equal(full.forward(x), lean.forward(x))
    assert full.layer_output(0) is not None
    assert lean.layer_output(0) is None
    with pytest.raises(cvis.StateError):
        lean.backward(np.ones((5, 4), np.float32))
