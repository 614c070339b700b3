"""gradcheck itself must be able to fail: a subtly wrong backward is caught."""

import sys

import numpy as np
import pytest

from minisc import Dense, SharpCosSim2D, gradcheck

gc = sys.modules["minisc.gradcheck"]    # the module (minisc.gradcheck is also the function's name)


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

    with pytest.raises(ValueError, match=r"grads\['w'\].*shape \(3, 4\).*\(4, 3\)"):
        gradcheck(TransposedDense(4, 3, rng=0), np.ones((2, 4)))


# ---------------------------------------------------------------------------------------------
# Every entry, a verdict, and no nonsense arguments
# ---------------------------------------------------------------------------------------------

class OneWrongEntry(Dense):
    """A backward that is right everywhere except for one weight out of thousands."""

    WHERE = 4321

    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["w"].flat[self.WHERE] += 0.5
        return dx


def test_one_wrong_entry_among_thousands_is_found_by_default():
    layer = OneWrongEntry(100, 90, rng=0)                  # w: 9,000 entries, all checked
    assert layer.params["w"].size <= gc.FULL_CHECK_LIMIT
    result = gradcheck(layer, np.random.default_rng(0).standard_normal((3, 100)))
    assert result.checked["w"] == (9_000, 9_000)
    assert not result.passed and result.failed == ["w"]
    assert result["w"] > 1e-2 and result["x"] < gc.THRESHOLD   # still a dict of errors


def test_larger_arrays_are_sampled_with_a_fixed_seed_or_checked_in_full_on_request():
    x = np.random.default_rng(0).standard_normal((2, 200))
    layer = OneWrongEntry(200, 100, rng=0)                 # w: 20,000 entries
    sampled = gradcheck(layer, x)
    assert sampled.checked["w"] == (10_000, 20_000)
    assert gradcheck(layer, x).checked == sampled.checked and gradcheck(layer, x) == sampled
    full = gradcheck(layer, x, max_checks=None)
    assert full.checked["w"] == (20_000, 20_000) and not full.passed


def test_verdict_threshold_and_raising():
    x = np.random.default_rng(0).standard_normal((5, 4))
    good = gradcheck(Dense(4, 3, rng=0), x)
    assert good.passed and good.failed == [] and good.threshold == gc.THRESHOLD == 1e-5
    assert good.worst == max(good.values()) < 1e-7
    assert good.raise_if_failed() is good
    bad = gradcheck(WrongDense(4, 3, rng=0), x)
    assert not bad.passed and "FAILED" in repr(bad)
    with pytest.raises(gc.GradcheckError, match=r"FAILED.*\bw: "):
        gradcheck(WrongDense(4, 3, rng=0), x, raise_on_failure=True)
    with pytest.raises(AssertionError):                    # usable as an assertion in tests
        bad.raise_if_failed()


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_checks=0), "max_checks must be an integer >= 1"),
    (dict(max_checks=-3), "max_checks must be an integer >= 1"),
    (dict(max_checks=2.5), "max_checks must be an integer >= 1"),
    (dict(delta=0), "delta must be a finite number > 0"),
    (dict(delta=-1e-6), "delta must be a finite number > 0"),
    (dict(delta=float("nan")), "delta must be a finite number > 0"),
])
def test_nonsense_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gradcheck(WrongDense(4, 3, rng=0), np.ones((2, 4)), **kwargs)


class CountingDense(Dense):
    calls = 0

    def forward(self, x):
        type(self).calls += 1
        return super().forward(x)


def test_one_forward_per_side_of_each_difference():
    CountingDense.calls = 0
    result = gradcheck(CountingDense(3, 2, rng=0), np.ones((2, 3)))
    n_checked = sum(n for n, _ in result.checked.values())       # x: 6, w: 6, b: 2
    assert n_checked == 14
    assert CountingDense.calls == 1 + 2 * n_checked              # one for backward, two per entry


def test_the_documented_false_alarm_blank_patches_with_p_below_one():
    assert "p < 1" in gc.__doc__ and "blank" in gc.__doc__
    x = np.zeros((1, 1, 16, 16))
    x[0, 0, 5:11, 5:11] = np.random.default_rng(0).random((6, 6))   # ink in the middle only
    result = gradcheck(SharpCosSim2D(1, 2, 5, p_init=0.5, rng=0), x, max_checks=60)
    assert result.failed == ["x"]                          # the kink, not a wrong backward
    noisy = x + np.random.default_rng(1).uniform(0.01, 0.05, x.shape)
    assert gradcheck(SharpCosSim2D(1, 2, 5, p_init=0.5, rng=0), noisy, max_checks=60).passed
