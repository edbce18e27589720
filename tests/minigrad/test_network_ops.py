"""Float64 gradient checks of the network ops over many shapes, and the ops against the naive loops;
the tests that take ``tier`` run on both ops tiers (simple.py and fast/)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, simple
from minigrad.fast import reference as ref

from ..conftest import away_from_zero, distinct

# (N, C, H, W), (O, kh, kw), stride, padding: batch > 1, channels > 1, odd and non-square sizes,
# stride 1/2/3, padding 0/1/2, kernels 1/3/5 and a non-square one.
CONV_CASES = [
    ((2, 3, 7, 6), (4, 3, 3), 1, 1),
    ((1, 2, 9, 11), (3, 5, 5), 1, 2),
    ((3, 2, 8, 7), (2, 1, 1), 1, 0),
    ((2, 3, 9, 9), (2, 3, 3), 2, 1),
    ((2, 1, 10, 8), (3, 3, 3), 3, 0),
    ((1, 2, 7, 9), (2, 5, 5), 2, 2),
    ((2, 2, 6, 7), (2, 3, 1), (2, 1), (1, 0)),
    ((2, 4, 5, 5), (3, 1, 3), 1, (0, 2)),
    ((2, 3, 9, 8), (4, 1, 1), 2, 0),          # 1x1 with strides: the fast tier subsamples, then one GEMM
    ((1, 2, 7, 8), (3, 1, 1), (2, 3), 0),
    ((2, 2, 15, 14), (3, 7, 7), 2, 3),        # ResNet's first convolution (7x7, stride 2, padding 3)
]


@pytest.mark.parametrize("xshape,wshape,stride,padding", CONV_CASES)
def test_conv2d_gradcheck(tier, rng, xshape, wshape, stride, padding):
    O, kh, kw = wshape
    x = mg.Tensor(rng.standard_normal(xshape), requires_grad=True)
    w = mg.Tensor(rng.standard_normal((O, xshape[1], kh, kw)), requires_grad=True)
    b = mg.Tensor(rng.standard_normal(O), requires_grad=True)
    assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), [x, w, b])


@pytest.mark.parametrize("xshape,wshape,stride,padding", CONV_CASES[:4])
def test_conv2d_matches_naive_loops(tier, rng, xshape, wshape, stride, padding):
    O, kh, kw = wshape
    x = rng.standard_normal(xshape)
    w = rng.standard_normal((O, xshape[1], kh, kw))
    b = rng.standard_normal(O)
    s, p = F._pair(stride, "", ""), F._pair(padding, "", "")
    xt, wt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, stride, padding)
    np.testing.assert_allclose(out.data, ref.conv2d(x, w, b, s, p), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    dx, dw, db = ref.conv2d_backward(x, w, g, s, p)
    for got, want in ((xt.grad, dx), (wt.grad, dw), (bt.grad, db)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_conv2d_relu_fused_gradcheck_and_equals_unfused(tier, rng):
    """conv2d(..., relu=True): on the fast tier the ReLU runs inside the convolution (one op), on the
    simple tier the ReLU op runs after it; the same values as relu(conv2d(...)), and a float64
    gradient check."""
    from minigrad.fast import conv
    x = mg.Tensor(rng.standard_normal((2, 3, 6, 7)), requires_grad=True)
    w = mg.Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = mg.Tensor(rng.standard_normal(4), requires_grad=True)
    fused = F.conv2d(x, w, b, 1, 1, relu=True)
    assert (fused._op is conv.Conv2d and fused._ctx.relu) == (tier == "fast")
    pre = F.conv2d(x, w, b, 1, 1)
    unfused = F.relu(pre)
    assert unfused._op is not conv.Conv2d and pre._op in (conv.Conv2d, simple.Conv2d)
    np.testing.assert_array_equal(fused.data, unfused.data)
    # Keep the pre-activations away from the kink for the finite differences.
    assert np.abs(pre.data).min() > 1e-4
    assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, 1, 1, relu=True), [x, w, b])


# (N, C, H, W), kernel, stride, padding: non-overlapping (stride = kernel), overlapping (stride < kernel),
# gaps (stride > kernel), non-square windows, sizes that do not divide; padding (with -inf) of 1 and 2,
# unequal per side, as ResNet's 3x3 stride-2 padding-1 pooling.
POOL_CASES = [
    ((2, 3, 8, 8), 2, None, 0),
    ((2, 2, 7, 9), 3, 2, 0),
    ((1, 3, 9, 7), 2, 1, 0),
    ((2, 2, 10, 11), 2, 3, 0),
    ((3, 1, 9, 8), (3, 2), (2, 1), 0),
    ((2, 2, 9, 8), 3, 2, 1),
    ((1, 3, 7, 10), (3, 5), (2, 1), (1, 2)),
    ((2, 1, 8, 9), 2, 2, 1),
    ((1, 2, 11, 7), 5, 3, 2),
]


@pytest.mark.parametrize("xshape,kernel,stride,padding", POOL_CASES)
def test_max_pool2d_gradcheck(tier, rng, xshape, kernel, stride, padding):
    x = mg.Tensor(distinct(rng, xshape), requires_grad=True)   # no ties: the argmax cannot move
    assert mg.gradcheck(lambda x: F.max_pool2d(x, kernel, stride, padding), [x], eps=1e-6)


@pytest.mark.parametrize("xshape,kernel,stride,padding", POOL_CASES)
def test_max_pool2d_matches_naive_loops(tier, rng, xshape, kernel, stride, padding):
    x = distinct(rng, xshape)
    k = F._pair(kernel, "", "")
    s = k if stride is None else F._pair(stride, "", "")
    xt = mg.Tensor(x, requires_grad=True)
    out = F.max_pool2d(xt, kernel, stride, padding)
    want, switches = ref.max_pool2d(x, *k, *s, *F._pair(padding, "", ""))
    np.testing.assert_array_equal(out.data, want)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    # where windows overlap, the simple tier adds an element's gradients in another order: 1e-12
    np.testing.assert_allclose(xt.grad, ref.max_pool2d_backward(g, switches, x.shape), rtol=1e-12, atol=1e-12)


def test_padded_max_pool2d_never_picks_the_padding(tier):
    """Padding is -inf (PyTorch's rule), not 0: all-negative windows at the border keep their maximum."""
    x = mg.Tensor(-np.arange(1.0, 17.0).reshape(1, 1, 4, 4), requires_grad=True)
    out = F.max_pool2d(x, 3, 2, 1)
    np.testing.assert_array_equal(out.data[0, 0], [[-1, -2], [-5, -6]])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_max_pool2d_ties_go_to_the_first_maximum(tier):
    x = mg.Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("shape", [(7,), (2, 3, 5, 4)])
def test_relu_gradcheck(tier, rng, shape):
    x = mg.Tensor(away_from_zero(rng, shape), requires_grad=True)
    assert mg.gradcheck(F.relu, [x])


@pytest.mark.parametrize("n,fin,fout", [(1, 3, 2), (4, 7, 5), (5, 16, 1)])
def test_linear_gradcheck(tier, rng, n, fin, fout):
    """On each tier (fast: the GEMMs split between the engine's threads), and the same op's class."""
    from minigrad.fast import linear
    x = mg.Tensor(rng.standard_normal((n, fin)), requires_grad=True)
    w = mg.Tensor(rng.standard_normal((fout, fin)), requires_grad=True)
    b = mg.Tensor(rng.standard_normal(fout), requires_grad=True)
    assert mg.gradcheck(F.linear, [x, w, b])
    assert mg.gradcheck(lambda x, w: F.linear(x, w), [x, w])
    assert F.linear(x, w, b)._op is (linear.Linear if tier == "fast" else simple.Linear)


def test_dropout_train_and_eval(rng):
    x = mg.Tensor(rng.standard_normal((50, 40)) + 3.0, requires_grad=True)
    mg.manual_seed(0)
    y = F.dropout(x, 0.25, training=True)
    kept = y.data != 0
    assert 0.70 < kept.mean() < 0.80                                    # 2000 Bernoulli(0.75) draws
    np.testing.assert_allclose(y.data[kept], x.data[kept] / 0.75, rtol=1e-15)
    assert F.dropout(x, 0.25, training=False) is x

    def same_mask_each_call(x):
        mg.manual_seed(0)
        return F.dropout(x, 0.25, training=True)

    assert mg.gradcheck(same_mask_each_call, [x])


@pytest.mark.parametrize("shape,axis", [((3, 5), -1), ((4, 3), 0), ((2, 3, 4), 1)])
def test_log_softmax_gradcheck(rng, shape, axis):
    x = mg.Tensor(rng.standard_normal(shape) * 3, requires_grad=True)
    assert mg.gradcheck(lambda x: F.log_softmax(x, axis), [x])
    np.testing.assert_allclose(np.exp(F.log_softmax(x, axis).data).sum(axis), 1.0, rtol=1e-14)


def test_log_softmax_is_stable_for_large_logits():
    x = mg.Tensor(np.array([[1000.0, 0.0, -1000.0]]))
    out = F.log_softmax(x).data
    assert np.isfinite(out).all() and abs(out[0, 0]) < 1e-12


def test_cross_entropy_gradcheck_and_value(rng):
    logits = mg.Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    labels = np.array([0, 3, 3, 1, 2])
    assert mg.gradcheck(lambda z: F.cross_entropy(z, labels), [logits])
    z = logits.data
    expected = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(5), labels])
    np.testing.assert_allclose(F.cross_entropy(logits, labels).item(), expected, rtol=1e-13)


def test_small_cnn_end_to_end_gradcheck(tier, rng):
    """conv -> relu -> pool -> conv(stride 2) -> relu -> flatten -> linear -> cross-entropy, all at once."""
    x = mg.Tensor(rng.standard_normal((2, 2, 9, 8)), requires_grad=True)
    w1 = mg.Tensor(rng.standard_normal((3, 2, 3, 3)) * 0.5, requires_grad=True)
    w2 = mg.Tensor(rng.standard_normal((4, 3, 3, 3)) * 0.5, requires_grad=True)
    w3 = mg.Tensor(rng.standard_normal((3, 16)) * 0.5, requires_grad=True)

    def net(x, w1, w2, w3, check=False):
        a1 = F.conv2d(x, w1, padding=1)
        h = F.max_pool2d(F.relu(a1), 2)                               # (2, 3, 4, 4)
        a2 = F.conv2d(h, w2, stride=2, padding=1)
        if check:                                                     # this seed keeps away from kinks:
            assert np.abs(a1.data).min() > 1e-3 and np.abs(a2.data).min() > 1e-3   # no pre-activation near 0
            r = np.sort(F.relu(a1).data[:, :, :8, :8].reshape(2, 3, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5)
                        .reshape(2, 3, 4, 4, 4), axis=-1)
            top2 = r[..., -1] - r[..., -2]                            # no near-tie for a window's maximum
            assert top2[r[..., -1] > 0].min() > 1e-3
        h = F.relu(a2)                                                # (2, 4, 2, 2)
        return F.cross_entropy(F.linear(F.flatten(h), w3), np.array([0, 2]))

    net(x, w1, w2, w3, check=True)
    assert mg.gradcheck(net, [x, w1, w2, w3])


@pytest.mark.parametrize("budget", [60, 200, 10**9])
def test_conv2d_chunking_gives_the_same_result(rng, monkeypatch, budget):
    """Bands of rows of one image (small budgets), several images per chunk (large): same maths."""
    from minigrad.fast import conv
    monkeypatch.setattr(conv, "COLS_BUDGET", budget)
    x = rng.standard_normal((3, 2, 7, 6))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4)
    xt, wt, bt = (mg.Tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, 2, 1, relu=True)
    np.testing.assert_allclose(out.data, ref.relu(ref.conv2d(x, w, b, (2, 2), (1, 1))), rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, 1, 1), [xt, wt, bt])


@pytest.mark.parametrize("weights_need_grad, keep_limit, winograd_channels",
                         [(False, 10**9, 0), (False, 10**9, 4), (True, 0, 0), (True, 10**9, 0)])
def test_conv2d_scratch_buffers_are_reused_safely(rng, monkeypatch, weights_need_grad, keep_limit,
                                                  winograd_channels):
    """Patch matrices, GEMM results and their gradients live in scratch buffers reused by every chunk,
    layer and pass (fast/memory.py: scratch). Two convolutions of different shapes, several chunks each, run
    forward and backward in turn, must still match the naive loops: in every mode (input gradient
    only, as in saliency, by im2col or with the second conv by Winograd; training with the forward's
    patches recomputed, or kept)."""
    from minigrad.fast import conv, memory
    monkeypatch.setattr(conv, "COLS_BUDGET", 100)                     # several chunks per conv
    monkeypatch.setattr(conv, "KEEP_COLS_LIMIT", keep_limit)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", winograd_channels)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 0)
    memory.free_scratch()
    x = rng.standard_normal((3, 2, 7, 6))
    w1, w2 = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((5, 4, 3, 3))
    with mg.use_ops("fast"):                         # the fast tier's buffers whatever MINIGRAD_OPS says
        xt = mg.Tensor(x, requires_grad=True)
        w1t, w2t = (mg.Tensor(w, requires_grad=weights_need_grad) for w in (w1, w2))
        h = F.conv2d(xt, w1t, None, 1, 1)                                 # (3, 4, 7, 6)
        y = F.conv2d(h, w2t, None, 2 if winograd_channels == 0 else 1, 0)  # (3, 5, 3, 2) or (3, 5, 5, 4)
        assert y._ctx.winograd == (winograd_channels > 0)
        g = rng.standard_normal(y.shape)
        y.backward(g)
    s2 = (2, 2) if winograd_channels == 0 else (1, 1)
    h_ref = ref.conv2d(x, w1, None, (1, 1), (1, 1))
    np.testing.assert_allclose(y.data, ref.conv2d(h_ref, w2, None, s2, (0, 0)), rtol=1e-12, atol=1e-12)
    dh, dw2, _ = ref.conv2d_backward(h_ref, w2, g, s2, (0, 0))
    dx, dw1, _ = ref.conv2d_backward(x, w1, dh, (1, 1), (1, 1))
    np.testing.assert_allclose(xt.grad, dx, rtol=1e-12, atol=1e-12)
    if weights_need_grad:
        np.testing.assert_allclose(w1t.grad, dw1, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w2t.grad, dw2, rtol=1e-12, atol=1e-12)
    else:
        assert w1t.grad is None and w2t.grad is None
