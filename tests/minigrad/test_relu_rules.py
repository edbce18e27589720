"""The three ReLU backward rules (paper Sec. 4) and the relu_rule switch."""
import contextlib

import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, relu_rules

from ..conftest import away_from_zero


def backward_through_relu(x, g, rule):
    t = mg.Tensor(x, requires_grad=True)
    y = F.relu(t)
    with mg.relu_rule(rule):
        y.backward(g)
    return t.grad


def test_the_three_formulas(rng):
    x = away_from_zero(rng, (4, 5))
    g = away_from_zero(rng, (4, 5))
    np.testing.assert_array_equal(backward_through_relu(x, g, "gradient"), g * (x > 0))
    np.testing.assert_array_equal(backward_through_relu(x, g, "deconvnet"), np.maximum(g, 0))
    np.testing.assert_array_equal(backward_through_relu(x, g, "guided"), np.maximum(g, 0) * (x > 0))


def test_rule_functions_in_relu_rules_match_the_kernels(rng):
    x = away_from_zero(rng, 100)
    g = away_from_zero(rng, 100)
    for name in relu_rules.RULES:
        formula = getattr(relu_rules, name)(x > 0, g)
        np.testing.assert_array_equal(backward_through_relu(x, g, name), formula)


def test_rule_is_scoped_and_restored():
    assert mg.current_rule() == "gradient"
    with mg.relu_rule("deconvnet"):
        assert mg.current_rule() == "deconvnet"
        with mg.relu_rule("guided"):
            assert mg.current_rule() == "guided"
        assert mg.current_rule() == "deconvnet"
    assert mg.current_rule() == "gradient"
    with pytest.raises(ValueError, match="unknown rule 'backprop'"):
        with mg.relu_rule("backprop"):
            pass
    assert mg.current_rule() == "gradient"


@pytest.mark.parametrize("batch", [1, 2])
def test_rule_applies_to_the_fused_conv_relu(tier, rng, batch):
    """relu(conv2d(...)), which the fast tier runs as one op, applies the rule inside its packing pass
    (or apart, under observe): the input, weight and bias gradients equal those through a separate
    ReLU op (to 1e-13 in float64: the bias gradient is summed chunk by chunk, in another order)."""
    x = mg.Tensor(rng.standard_normal((batch, 2, 5, 5)), requires_grad=True)
    w = mg.Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = mg.Tensor(rng.standard_normal(3), requires_grad=True)
    g = away_from_zero(rng, (batch, 3, 5, 5))
    for rule in relu_rules.RULES:
        for observed in (False, True):
            grads = []
            for fused in (True, False):
                x.grad = w.grad = b.grad = None
                pre = F.conv2d(x, w, b, padding=1)
                if not fused:
                    pre.data                                              # read first: no fusion
                y = F.relu(pre)
                seen = []
                with mg.relu_rule(rule), relu_rules.observe(lambda *arrays: seen.append(arrays)) \
                        if observed else contextlib.nullcontext():
                    y.backward(g)
                grads.append((x.grad, w.grad, b.grad))
                assert len(seen) == observed                              # one ReLU, seen once
            for fused_grad, separate_grad in zip(*grads):
                np.testing.assert_allclose(fused_grad, separate_grad, rtol=1e-13, atol=1e-13)


def test_only_the_relu_changes(rng):
    """A net without ReLUs has the same backward under every rule (conv, pool, linear do not care)."""
    x = away_from_zero(rng, (2, 2, 8, 8))
    w = rng.standard_normal((3, 2, 3, 3))
    v = rng.standard_normal((4, 27))
    results = []
    for rule in relu_rules.RULES:
        t = mg.Tensor(x, requires_grad=True)
        out = F.linear(F.flatten(F.max_pool2d(F.conv2d(t, mg.Tensor(w), padding=1), 2, 3)), mg.Tensor(v))
        with mg.relu_rule(rule):
            out.sum().backward()
        results.append(t.grad)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
