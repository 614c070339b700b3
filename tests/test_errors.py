"""Bad input gets an error that names the layer, what it got and what it expected."""

import numpy as np
import pytest

from minisc import Adam, Conv2D, Dense, Flatten, MaxAbsPool2D, SharpCosSim2D, SoftmaxCrossEntropy


def test_wrong_number_of_dimensions():
    with pytest.raises(ValueError, match=r"SharpCosSim2D: expected a 4-D input \(N, C, H, W\), got shape \(28, 28\)"):
        SharpCosSim2D(1, 2, 3).forward(np.zeros((28, 28), np.float32))
    with pytest.raises(ValueError, match=r"Dense: expected a 2-D input"):
        Dense(4, 2).forward(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"MaxAbsPool2D: expected a 4-D input"):
        MaxAbsPool2D().forward(np.zeros((3, 4, 4), np.float32))


def test_channel_mismatch():
    with pytest.raises(ValueError, match=r"SharpCosSim2D: expected 3 input channels .* got 1"):
        SharpCosSim2D(3, 2, 3).forward(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Conv2D: expected 2 input channels"):
        Conv2D(2, 2, 3).forward(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Dense\(4->2\): expected 4 input features"):
        Dense(4, 2).forward(np.zeros((2, 5), np.float32))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel 5x5 is larger than the padded input 4x4"):
        SharpCosSim2D(1, 2, 5).forward(np.zeros((1, 1, 4, 4), np.float32))
    # with enough padding the same input is fine
    assert SharpCosSim2D(1, 2, 5, padding=1).forward(np.zeros((1, 1, 4, 4), np.float32)).shape == (1, 2, 2, 2)
    with pytest.raises(ValueError, match="smaller than one 2x2 window"):
        MaxAbsPool2D(2).forward(np.zeros((1, 1, 1, 5), np.float32))


def test_integer_input():
    with pytest.raises(TypeError, match=r"SharpCosSim2D: expected a float array.*got dtype uint8.*to_float"):
        SharpCosSim2D(1, 2, 3).forward(np.zeros((1, 1, 8, 8), np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        SharpCosSim2D(1, 2, 3).forward([[1.0]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(bad):
    x = np.zeros((1, 1, 8, 8), np.float32)
    x[0, 0, 3, 3] = bad
    with pytest.raises(ValueError, match=r"SharpCosSim2D: input contains 1 NaN or infinite value"):
        SharpCosSim2D(1, 2, 3).forward(x)


def test_large_finite_input_is_not_mistaken_for_inf():
    # The input check first sums the input (fast) and only looks element by element when the
    # sum is not finite. This sum overflows float32 although every element is finite, so the
    # check must not complain. (Flatten: any arithmetic on 3e38 would overflow by itself.)
    x = np.full((1, 1, 8, 8), 3e38, np.float32)
    np.testing.assert_array_equal(Flatten().forward(x), x.reshape(1, -1))


def test_float64_input_is_converted_to_the_layer_dtype():
    y = SharpCosSim2D(1, 2, 3).forward(np.zeros((1, 1, 8, 8)))
    assert y.dtype == np.float32


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="out_channels must be an integer >= 1"):
        SharpCosSim2D(1, 0, 3)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        SharpCosSim2D(1, 2, 0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        SharpCosSim2D(1, 2, 3, dtype=np.int32)
    with pytest.raises(ValueError, match="p_init"):
        SharpCosSim2D(1, 2, 3, p_init=0.0)
    with pytest.raises(ValueError, match="init must be 'glorot' or 'lecun', got 'he'"):
        SharpCosSim2D(1, 2, 3, init="he")
    with pytest.raises(ValueError, match="log_steps may list 'p' and 'q' only, got 'w'"):
        SharpCosSim2D(1, 2, 3, log_steps={"w": 1.0})
    with pytest.raises(ValueError, match="log_steps\\['p'\\] must be a number > 0, got -1"):
        SharpCosSim2D(1, 2, 3, log_steps={"p": -1})
    with pytest.raises(ValueError, match="log_steps\\['q'\\] must be a number > 0, got 'fast'"):
        SharpCosSim2D(1, 2, 3, log_steps={"q": "fast"})
    with pytest.raises(ValueError, match="lr must be > 0"):
        Adam(Dense(2, 2), lr=0)


def test_backward_before_forward_and_wrong_gradient_shape():
    layer = SharpCosSim2D(1, 2, 3)
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.zeros((1, 2, 6, 6), np.float32))
    layer.forward(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"expected a gradient of shape \(1, 2, 6, 6\)"):
        layer.backward(np.zeros((1, 2, 5, 5), np.float32))


def test_loss_errors():
    loss = SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"expected 2 labels"):
        loss.forward(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        loss.forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="labels must be integers"):
        loss.forward(np.zeros((2, 3)), np.array([0.0, 1.0]))


def test_a_layer_that_would_output_nothing_is_named_with_the_shape_it_was_given():
    import re

    from minisc import Sequential

    with pytest.raises(ValueError, match=re.escape(
            "Sequential: layer 0 (SharpCosSim2D(1->2, 3x3, stride 1, padding 0, max-abs pool 2x2)) "
            "would output shape (2, 0, 0) from input (1, 3, 3)")):
        Sequential([SharpCosSim2D(1, 2, 3, pool_size=2), Flatten()], input_shape=(1, 3, 3))
    with pytest.raises(ValueError, match=re.escape(
            "Sequential: layer 1 (MaxAbsPool2D(2x2)) would output shape (2, 0, 0) from input (2, 1, 1)")):
        Sequential([SharpCosSim2D(1, 2, 3), MaxAbsPool2D(2), Flatten()], input_shape=(1, 3, 3))


def test_an_scs_layer_whose_output_is_smaller_than_its_pool_says_so():
    import re

    layer = SharpCosSim2D(1, 2, 3, pool_size=2)
    with pytest.raises(ValueError, match=re.escape(
            "SharpCosSim2D(1->2, 3x3, stride 1, padding 0, max-abs pool 2x2): MaxAbsPool2D(2x2): "
            "input 1x1 is smaller than one 2x2 window")):
        layer.forward(np.zeros((1, 1, 3, 3), np.float32))
