"""gradcheck itself must be able to fail: a subtly wrong backward is caught."""

import numpy as np

from minisc import Dense, SharpCosSim2D, gradcheck


class WrongDense(Dense):
    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["w"] *= 1.01                           # a 1% mistake
        return dx


class WrongSCS(SharpCosSim2D):
    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["q"] *= -1.0                           # a sign mistake
        return dx


def test_gradcheck_catches_a_one_percent_error():
    rng = np.random.default_rng(0)
    errors = gradcheck(WrongDense(4, 3, rng=0), rng.standard_normal((5, 4)))
    assert errors["w"] > 1e-3
    assert errors["x"] < 1e-7 and errors["b"] < 1e-7


def test_gradcheck_catches_a_sign_error_in_scs():
    rng = np.random.default_rng(0)
    errors = gradcheck(WrongSCS(1, 2, 3, rng=0), rng.random((2, 1, 6, 6)))
    assert errors["q"] > 0.5
    assert errors["w"] < 1e-5


def test_gradcheck_leaves_the_layer_untouched_and_reports(capsys):
    layer = SharpCosSim2D(1, 2, 3, rng=0)
    before = {k: v.copy() for k, v in layer.params.items()}
    errors = gradcheck(layer, np.random.default_rng(1).random((1, 1, 5, 5)), verbose=True)
    assert layer.dtype == np.float32
    for k in before:
        np.testing.assert_array_equal(layer.params[k], before[k])
    out = capsys.readouterr().out
    assert "relative error" in out and "q" in out
    assert max(errors.values()) < 1e-5


class TransposedDense(Dense):
    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["w"] = self.grads["w"].T.copy()        # right size, wrong shape
        return dx


def test_gradcheck_names_a_gradient_of_the_wrong_shape():
    import pytest
    with pytest.raises(ValueError, match=r"grads\['w'\].*shape \(3, 4\).*\(4, 3\)"):
        gradcheck(TransposedDense(4, 3, rng=0), np.ones((2, 4)))
