"""Tiny synthetic training runs: the loss must fall with SGD and with Adam."""

import numpy as np
import pytest

from minisc import (
    SGD,
    Adam,
    Dense,
    Flatten,
    MaxAbsPool2D,
    Sequential,
    SharpCosSim2D,
    SoftmaxCrossEntropy,
    accuracy,
)
from minisc.losses import SoftmaxCrossEntropy as SCE


def _stripes(n, rng):
    """Class 0: a horizontal bar, class 1: a vertical bar, at random places, with noise."""
    x = rng.normal(0, 0.05, (n, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 2, n)
    pos = rng.integers(1, 7, n)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, pos[i], 1:7] += 1
        else:
            x[i, 0, 1:7, pos[i]] += 1
    return x, y


@pytest.mark.parametrize("make_opt", [lambda m: SGD(m, lr=0.5, momentum=0.9),
                                      lambda m: Adam(m, lr=0.02)], ids=["sgd", "adam"])
def test_loss_falls(make_opt):
    rng = np.random.default_rng(0)
    x, y = _stripes(64, rng)
    model = Sequential([SharpCosSim2D(1, 4, 3, rng=1), MaxAbsPool2D(2), Flatten(),
                        Dense(4 * 3 * 3, 2, rng=2)])
    opt = make_opt(model)
    loss_fn = SoftmaxCrossEntropy()
    losses = []
    for _step in range(60):
        losses.append(loss_fn.forward(model.forward(x), y))
        model.backward(loss_fn.backward())
        opt.step()
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    assert accuracy(model.forward(x), y) >= 0.95
    p = model.layers[0].params["p"]
    assert np.all(p >= 0.1) and np.all(p <= 10)


def _numeric_gradient(loss, z, labels, h=1e-6):
    """dL/dz by central differences, one logit at a time (float64)."""
    num = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        num[idx] = (loss.forward(zp, labels) - loss.forward(zm, labels)) / (2 * h)
    return num


def test_softmax_cross_entropy_value_gradient_and_stability():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    loss = SCE()
    value = loss.forward(logits, np.array([0, 2]))
    assert value == pytest.approx((0.0 + np.log(3)) / 2)
    grad = loss.backward()
    np.testing.assert_allclose(grad, [[0, 0, 0], [1 / 6, 1 / 6, -1 / 3]], atol=1e-12)
    # finite differences on a random case
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4, 5))
    labels = np.array([0, 3, 4, 1])
    loss.forward(z, labels)
    g = loss.backward()
    np.testing.assert_allclose(g, _numeric_gradient(SCE(), z, labels), atol=1e-8)


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.4])
def test_label_smoothing_value_and_gradient(eps):
    """The smoothed loss is -mean sum_k t_k log p_k with t = (1 - eps) onehot + eps / K; its
    gradient (p - t) / N matches finite differences of that loss in float64."""
    rng = np.random.default_rng(2)
    z = rng.standard_normal((6, 5))
    labels = np.array([0, 3, 4, 1, 1, 2])
    loss = SCE(label_smoothing=eps)
    value = loss.forward(z, labels)
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    t = np.full(z.shape, eps / 5)
    t[np.arange(6), labels] += 1 - eps
    assert value == pytest.approx(-(t * log_p).sum(axis=1).mean(), rel=1e-12)
    g = loss.backward()
    np.testing.assert_allclose(g, _numeric_gradient(SCE(eps), z, labels), atol=1e-8)
    # each row of the gradient sums to zero; and here, where no true class's probability is
    # above its target 1 - eps + eps / K yet, every true class is still pulled up
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-12)
    assert np.all(g[np.arange(6), labels] < 0)


def test_label_smoothing_zero_is_plain_cross_entropy_and_bad_values_are_refused():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 3)).astype(np.float32)
    labels = np.array([2, 0, 1, 1])
    plain, zero = SCE(), SCE(label_smoothing=0.0)
    assert plain.forward(z, labels) == zero.forward(z, labels)
    np.testing.assert_array_equal(plain.backward(), zero.backward())
    assert zero.backward().dtype == np.float32
    for bad in (-0.1, 1.0, 1.5, "0.1", True, float("nan")):
        with pytest.raises(ValueError, match="label_smoothing must be a number from 0"):
            SCE(label_smoothing=bad)


def test_sgd_and_adam_steps_follow_their_formulas():
    layer = Dense(2, 1, dtype=np.float64, rng=0)
    w0 = layer.params["w"].copy()
    layer.grads["w"][...] = [[1.0], [-2.0]]
    layer.grads["b"][...] = [0.5]
    SGD(layer, lr=0.1).step()
    np.testing.assert_allclose(layer.params["w"], w0 - 0.1 * np.array([[1.0], [-2.0]]))
    w1 = layer.params["w"].copy()
    Adam(layer, lr=0.01).step()           # first Adam step moves every entry by ~lr
    np.testing.assert_allclose(layer.params["w"], w1 - 0.01 * np.sign([[1.0], [-2.0]]), rtol=1e-6)


def test_log_steps_learn_like_the_published_exp_parameterisation():
    """A layer with log_steps {"p": 1/5, "q": 1/0.3} under Adam follows the same path as one
    whose p and q are exp(p_raw / 5) and exp(-q_raw / 0.3) with Adam stepping p_raw and q_raw
    (the published records' form), within Adam's eps."""
    from minisc.layers.base import Layer

    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 6, 6))
    dy = rng.standard_normal((3, 4, 4, 4))
    build = dict(p_init=2.0, q_init=0.37, alpha_init=10.0, dtype=np.float64, rng=1)
    ours = SharpCosSim2D(2, 4, 3, log_steps={"p": 1 / 5, "q": 1 / 0.3}, **build)
    theirs = SharpCosSim2D(2, 4, 3, **build)
    raw = Layer(np.float64)                   # holds what the published layer stores
    raw.params = {"w": theirs.params["w"], "alpha": theirs.params["alpha"],
                  "p_raw": 5 * np.log(theirs.params["p"]), "q_raw": -0.3 * np.log(theirs.params["q"])}
    raw.grads = {name: np.zeros_like(v) for name, v in raw.params.items()}
    opt_ours, opt_theirs = Adam(ours, lr=0.05), Adam(raw, lr=0.05)
    for _ in range(5):
        ours.forward(x)
        ours.backward(dy)
        opt_ours.step()
        p, q = np.exp(raw.params["p_raw"] / 5), np.exp(-raw.params["q_raw"] / 0.3)
        theirs.params["p"][...], theirs.params["q"][...] = p, q
        theirs.forward(x)
        theirs.backward(dy)
        raw.grads["w"][...], raw.grads["alpha"][...] = theirs.grads["w"], theirs.grads["alpha"]
        raw.grads["p_raw"][...] = theirs.grads["p"] * p / 5           # chain rule through exp
        raw.grads["q_raw"][...] = theirs.grads["q"] * -q / 0.3
        opt_theirs.step()
    assert not np.allclose(ours.params["p"], 2.0)                    # p did move
    np.testing.assert_allclose(ours.params["p"], np.exp(raw.params["p_raw"] / 5), rtol=1e-6)
    np.testing.assert_allclose(ours.params["q"], np.exp(-raw.params["q_raw"] / 0.3), rtol=1e-6)
    np.testing.assert_allclose(ours.params["w"], raw.params["w"], rtol=1e-6, atol=1e-9)


def test_log_steps_change_a_parameter_by_a_fraction_of_itself():
    """One Adam step of a log-stepped parameter multiplies it by exp(-lr * factor) (first step:
    a move of exactly lr * factor in ln p), whatever its size; a plain one moves by lr."""
    layer = SharpCosSim2D(1, 2, 3, p_init=4.0, log_steps={"p": 0.5}, dtype=np.float64, rng=0)
    layer.params["p"][...] = [1.0, 4.0]
    layer.grads["p"][...] = [1.0, 1.0]
    layer.grads["q"][...] = 1.0
    Adam(layer, lr=0.02).step()
    np.testing.assert_allclose(layer.params["p"], np.array([1.0, 4.0]) * np.exp(-0.01), rtol=1e-6)
    np.testing.assert_allclose(layer.params["q"], 0.1 - 0.02, rtol=1e-6)


@pytest.mark.parametrize("a,eps", [(0.3, 0.0), (0.7, 0.1), (1.0, 0.0)])
def test_distillation_value_and_gradient(a, eps):
    """With a teacher, the target is (1 - a) * (onehot, smoothed by eps) + a * teacher_probs;
    the loss is -mean sum_k t_k log p_k and its gradient (p - t) / N matches finite differences
    in float64."""
    rng = np.random.default_rng(4)
    z = rng.standard_normal((6, 5))
    labels = np.array([0, 3, 4, 1, 1, 2])
    teacher = rng.random((6, 5)) + 0.1
    teacher /= teacher.sum(axis=1, keepdims=True)
    loss = SCE(label_smoothing=eps, distill_weight=a)
    value = loss.forward(z, labels, teacher)
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    t = np.full(z.shape, eps / 5)
    t[np.arange(6), labels] += 1 - eps
    t = (1 - a) * t + a * teacher
    assert value == pytest.approx(-(t * log_p).sum(axis=1).mean(), rel=1e-12)
    g = loss.backward()
    np.testing.assert_allclose(g, (np.exp(log_p) - t) / 6, atol=1e-12)

    class WithTeacher(SCE):             # the same loss, the teacher fixed, for _numeric_gradient
        def forward(self, logits, labels):
            return super().forward(logits, labels, teacher)
    np.testing.assert_allclose(g, _numeric_gradient(WithTeacher(eps, a), z, labels), atol=1e-8)
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-12)


@pytest.mark.parametrize("a,T,eps", [(0.5, 2.0, 0.0), (0.3, 4.0, 0.1), (1.0, 2.0, 0.0), (0.5, 0.5, 0.0)])
def test_softened_student_value_and_gradient(a, T, eps):
    """Hinton et al.'s form (student_temperature T): the loss is
    -mean [(1 - a) sum t log softmax(z) + a T^2 sum tau log softmax(z / T)], computed here from
    the formula, and its gradient matches finite differences in float64."""
    rng = np.random.default_rng(5)
    z = 3 * rng.standard_normal((6, 5))
    labels = np.array([4, 0, 2, 2, 1, 3])
    tau = rng.random((6, 5)) + 0.05
    tau /= tau.sum(axis=1, keepdims=True)
    loss = SCE(label_smoothing=eps, distill_weight=a, student_temperature=T)
    value = loss.forward(z, labels, tau)

    def log_softmax(v):
        v = v - v.max(axis=1, keepdims=True)
        return v - np.log(np.exp(v).sum(axis=1, keepdims=True))
    t = np.full(z.shape, eps / 5)
    t[np.arange(6), labels] += 1 - eps
    expected = -((1 - a) * (t * log_softmax(z)).sum(axis=1)
                 + a * T**2 * (tau * log_softmax(z / T)).sum(axis=1)).mean()
    assert value == pytest.approx(expected, rel=1e-12)
    g = loss.backward()

    class WithTeacher(SCE):
        def forward(self, logits, labels):
            return super().forward(logits, labels, tau)
    np.testing.assert_allclose(g, _numeric_gradient(WithTeacher(eps, a, T), z, labels), atol=1e-8)
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-12)


def test_softened_student_at_temperature_1_is_the_mixed_target():
    """student_temperature 1 is the plain form, to the bit; at weight 1 the loss is smallest,
    with a zero gradient, where the student's softened probabilities are the teacher's."""
    rng = np.random.default_rng(6)
    z, labels = rng.standard_normal((4, 3)), np.array([0, 2, 1, 1])
    tau = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.2, 0.5, 0.3]])
    plain, one = SCE(distill_weight=0.4), SCE(distill_weight=0.4, student_temperature=1)
    assert plain.forward(z, labels, tau) == one.forward(z, labels, tau)
    np.testing.assert_array_equal(plain.backward(), one.backward())
    loss = SCE(distill_weight=1.0, student_temperature=3.0)
    at_teacher = 3.0 * np.log(tau)                       # softmax(z / 3) = tau
    value = loss.forward(at_teacher, labels, tau)
    np.testing.assert_allclose(loss.backward(), 0, atol=1e-15)
    assert loss.forward(at_teacher + [0.3, 0, 0], labels, tau) > value
    for bad in (0, -1.0, float("nan"), float("inf"), "2", True):
        with pytest.raises(ValueError, match="student_temperature must be a number > 0"):
            SCE(distill_weight=0.5, student_temperature=bad)


def test_distillation_with_weight_1_fits_the_teacher_not_the_labels():
    """At distill_weight 1 the labels no longer matter, and the loss is smallest, with a zero
    gradient, where the network's probabilities are the teacher's."""
    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    loss = SCE(distill_weight=1.0)
    z = np.log(teacher)
    value = loss.forward(z, np.array([2, 0]), teacher)
    np.testing.assert_allclose(loss.backward(), 0, atol=1e-15)
    assert value == pytest.approx(loss.forward(z, np.array([0, 1]), teacher))
    assert loss.forward(z + [[0.1, 0, 0], [0, 0.2, 0]], np.array([2, 0]), teacher) > value


def test_distillation_refuses_missing_or_misshapen_teacher_probs():
    z, labels = np.zeros((2, 3)), np.array([0, 1])
    with pytest.raises(ValueError, match="distill_weight is 0.5, so forward.. needs teacher_probs"):
        SCE(distill_weight=0.5).forward(z, labels)
    with pytest.raises(ValueError, match="teacher_probs given, but distill_weight is 0"):
        SCE().forward(z, labels, np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"expected teacher_probs of the logits' shape \(2, 3\), got \(3, 2\)"):
        SCE(distill_weight=0.5).forward(z, labels, np.full((3, 2), 0.5))
    for bad in (-0.1, 1.5, "0.5", True, float("nan")):
        with pytest.raises(ValueError, match="distill_weight must be a number from 0 up to 1"):
            SCE(distill_weight=bad)
