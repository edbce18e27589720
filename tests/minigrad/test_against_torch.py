"""Cross-checks against PyTorch (a test-only reference; skipped when torch is not installed).

float32 against float32: both sides round differently (summation order in the GEMMs), so we compare
with a relative tolerance of 1e-4 of the largest magnitude, which float32's 6e-8 unit roundoff
times sums of a few hundred terms stays well inside.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, relu_rules

from ..conftest import away_from_zero, distinct

torch = pytest.importorskip("torch")


RTOL = 1e-4


def rel_err(ours, theirs):
    """max |ours - theirs| / max |theirs|; a float32 result must stay float32 (inf otherwise)."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    if ours.dtype != theirs.dtype:
        return float("inf")
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


def pair(*arrays):
    return ([mg.Tensor(a, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("xshape,wshape,stride,padding", [
    ((2, 3, 17, 15), (8, 3, 3, 3), 1, 1), ((1, 4, 12, 13), (5, 4, 5, 5), 2, 2),
    ((3, 2, 9, 9), (4, 2, 1, 1), 1, 0), ((2, 3, 11, 10), (2, 3, 3, 5), (3, 2), (0, 1)),
    ((1, 64, 28, 28), (64, 64, 3, 3), 1, 1)])
def test_conv2d(tier, rng, xshape, wshape, stride, padding):
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (xshape, wshape, wshape[:1]))
    (mx, mw, mb), (tx, tw, tb) = pair(x, w, b)
    out = F.conv2d(mx, mw, mb, stride, padding)
    ref = torch.nn.functional.conv2d(tx, tw, tb, stride, padding)
    assert rel_err(out.data, ref) <= RTOL
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for ours, theirs in ((mx, tx), (mw, tw), (mb, tb)):
        assert rel_err(ours.grad, theirs.grad) <= RTOL


@pytest.mark.parametrize("xshape,k,s", [((2, 3, 8, 8), 2, 2), ((2, 2, 9, 11), 3, 2), ((1, 3, 7, 7), 2, 1)])
def test_max_pool2d(tier, rng, xshape, k, s):
    x = distinct(rng, xshape, dtype=np.float32)
    (mx,), (tx,) = pair(x)
    out, ref = F.max_pool2d(mx, k, s), torch.nn.functional.max_pool2d(tx, k, s)
    assert rel_err(out.data, ref) == 0    # max and masks: exact
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    # exact, except where windows overlap: an element that is the maximum of several windows gets the
    # sum of their gradients, which the simple tier adds in another order (float32 rounding, 6e-8 a term)
    assert rel_err(mx.grad, tx.grad) <= (0 if k == s else 1e-6)


class TorchRelu(torch.autograd.Function):
    """ReLU with the deconvnet and guided backward written out independently:
    deconvnet = relu(grad_out), guided = relu(grad_out) * [x > 0]."""

    @staticmethod
    def forward(ctx, x, rule):
        ctx.save_for_backward(x)
        ctx.rule = rule
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.rule == "gradient":
            return g * (x > 0), None
        if ctx.rule == "deconvnet":
            return g.clamp(min=0), None                      # relu(grad_out)
        return g.clamp(min=0) * (x > 0), None                # relu(grad_out) * [x > 0]


@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_relu_rules(tier, rng, rule):
    x = away_from_zero(rng, (2, 3, 5, 4), dtype=np.float32)
    g = away_from_zero(rng, (2, 3, 5, 4), dtype=np.float32)
    (mx,), (tx,) = pair(x)
    out = F.relu(mx)
    ref = TorchRelu.apply(tx, rule)
    assert rel_err(out.data, ref) == 0    # max and masks: exact
    with mg.relu_rule(rule):
        out.backward(g)
    ref.backward(torch.tensor(g))
    assert rel_err(mx.grad, tx.grad) == 0    # max and masks: exact
    if rule == "gradient":                                   # and torch's own ReLU
        t2 = torch.tensor(x, requires_grad=True)
        torch.relu(t2).backward(torch.tensor(g))
        assert rel_err(mx.grad, t2.grad) == 0    # max and masks: exact


def test_linear(rng):
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((5, 300), (40, 300), (40,)))
    (mx, mw, mb), (tx, tw, tb) = pair(x, w, b)
    out, ref = F.linear(mx, mw, mb), torch.nn.functional.linear(tx, tw, tb)
    assert rel_err(out.data, ref) <= RTOL
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for ours, theirs in ((mx, tx), (mw, tw), (mb, tb)):
        assert rel_err(ours.grad, theirs.grad) <= RTOL


def test_cross_entropy_and_log_softmax(rng):
    z = (rng.standard_normal((6, 10)) * 4).astype(np.float32)
    labels = rng.integers(0, 10, 6)
    (mz,), (tz,) = pair(z)
    loss = F.cross_entropy(mz, labels)
    ref = torch.nn.functional.cross_entropy(tz, torch.tensor(labels))
    assert rel_err(loss.data, ref) <= RTOL
    loss.backward()
    ref.backward()
    assert rel_err(mz.grad, tz.grad) <= RTOL
    assert rel_err(F.log_softmax(mg.Tensor(z)).data, torch.log_softmax(torch.tensor(z), -1)) <= RTOL
