"""Winograd F(2x2, 3x3): its kernels against the matrix definitions, the convolution and its input
gradient against the naive loops, when it is used, and its float32 error."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, relu_rules
from minigrad.fast import conv, winograd
from minigrad.fast import cpu_kernels as cpu, reference as ref

from ..conftest import away_from_zero


def ran(t):
    """t after its forward ran (the fast tier puts a convolution's forward off: fast/conv.py)."""
    t.data
    return t


@pytest.fixture(autouse=True)
def fast_tier():
    """Every test here is of the fast tier's path: in force whatever MINIGRAD_OPS says."""
    with mg.use_ops("fast"):
        yield


@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Winograd for any channel count and image size, so that small test shapes take its path."""
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 0)


@pytest.mark.parametrize("shape,padding", [((2, 3, 7, 6), (1, 1)), ((1, 2, 8, 8), (0, 0)), ((3, 2, 5, 9), (2, 1)),
                                           ((1, 1, 3, 3), (1, 1)), ((2, 2, 4, 5), (2, 2))])
def test_transform_kernels_match_the_matrices(rng, shape, padding):
    """V = B^T d B for every tile, and out = A^T m A + b (ReLU or not), cropped: whole images and a
    band of tile rows of one image."""
    x = rng.standard_normal(shape)
    N, C, H, W = shape
    ph, pw = padding
    oh, ow = H + 2 * ph - 2, W + 2 * pw - 2
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    want = ref.winograd_input(x, ph, pw, th, tw)                       # (16, C, N*th*tw)
    V = np.full(want.shape, 7.0)
    cpu.winograd_input(x, 0, 0, ph, pw, th, tw, V)
    np.testing.assert_allclose(V, want, rtol=1e-13, atol=1e-13)
    if th > 1:                                                         # tile rows 1 .. th-1 of the last image
        band = np.full((16, C, (th - 1) * tw), 7.0)
        cpu.winograd_input(x, N - 1, 1, ph, pw, th - 1, tw, band)
        last = want.reshape(16, C, N, th, tw)[:, :, N - 1, 1:].reshape(16, C, -1)
        np.testing.assert_allclose(band, last, rtol=1e-13, atol=1e-13)
    O = 3
    M = rng.standard_normal((16, O, N * th * tw))
    b = rng.standard_normal(O)
    for relu in (False, True):
        out = np.full((N, O, oh, ow), 7.0)
        cpu.winograd_output(M, b, relu, 0, 0, th, tw, out)
        np.testing.assert_allclose(out, ref.winograd_output(M, b, relu, N, oh, ow, th, tw), rtol=1e-13, atol=1e-13)
        scale = rng.standard_normal(O)                                 # a folded batch norm's: A^T (s m) A
        cpu.winograd_output(M, b, relu, 0, 0, th, tw, out, scale)
        want = ref.winograd_output(M * scale[None, :, None], b, relu, N, oh, ow, th, tw)
        np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-13)


def test_filter_transform_matches_the_matrices(rng):
    assert np.array_equal(winograd.G, ref.WINOGRAD_G)
    w = rng.standard_normal((4, 3, 3, 3))
    np.testing.assert_allclose(winograd.filters(w), ref.winograd_filters(w), rtol=1e-14, atol=1e-14)
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1])                 # the backward's 180-degree turn
    np.testing.assert_allclose(winograd.filters(w, flip=True), ref.winograd_filters(flipped),
                               rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("budget", [10**9, 300])
@pytest.mark.parametrize("shape,out_channels,padding", [((2, 3, 7, 6), 4, 1), ((1, 2, 8, 8), 3, 0),
                                                        ((3, 2, 5, 9), 5, 2), ((2, 4, 6, 6), 2, 1)])
def test_conv_and_input_gradient_match_the_naive_loops(rng, monkeypatch, winograd_everywhere, budget, shape,
                                                       out_channels, padding):
    """Float64: conv2d(..., relu=True) by Winograd (weights without gradient) equals the loops' convolution, and
    its input gradient (Winograd again, with the flipped kernel) the loops' gradient, to 1e-12; in one
    chunk and in bands of tile rows (a small budget)."""
    monkeypatch.setattr(conv, "COLS_BUDGET", budget)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((out_channels, shape[1], 3, 3))
    b = rng.standard_normal(out_channels)
    xt = mg.Tensor(x, requires_grad=True)
    out = F.conv2d(xt, mg.Tensor(w), mg.Tensor(b), 1, padding, relu=True)
    assert out._ctx.winograd
    pre = ref.conv2d(x, w, b, (1, 1), (padding, padding))
    np.testing.assert_allclose(out.data, ref.relu(pre), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    dx, _, _ = ref.conv2d_backward(x, w, g * (pre > 0), (1, 1), (padding, padding))
    np.testing.assert_allclose(xt.grad, dx, rtol=1e-12, atol=1e-12)


def test_input_gradient_passes_gradcheck(rng, winograd_everywhere):
    x = mg.Tensor(rng.standard_normal((2, 3, 6, 5)), requires_grad=True)
    w, b = mg.Tensor(rng.standard_normal((4, 3, 3, 3))), mg.Tensor(rng.standard_normal(4))
    assert ran(F.conv2d(x, w, b, 1, 1))._ctx.winograd
    assert mg.gradcheck(lambda x: F.conv2d(x, w, b, 1, 1), [x])


@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_relu_rules_and_observers_are_the_same_as_im2col(rng, monkeypatch, rule):
    """Under each ReLU rule, observed or not, the Winograd path's input gradient equals im2col's."""
    x = mg.Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = mg.Tensor(rng.standard_normal((4, 3, 3, 3)))
    g = away_from_zero(rng, (2, 4, 6, 6))
    grads, seen = [], []
    monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 0)
    for channels in (0, 1):                                            # 0: Winograd off; 1: on
        monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", channels)
        x.grad = None
        y = F.conv2d(x, w, None, 1, 1, relu=True)
        assert y._ctx.winograd == bool(channels)
        with mg.relu_rule(rule), relu_rules.observe(lambda *arrays: seen.append(arrays)):
            y.backward(g)
        grads.append(x.grad)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)
    assert len(seen) == 2
    for a, b in zip(*seen):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_used_only_where_it_applies(rng, monkeypatch, winograd_everywhere):
    """Not when the weights need a gradient (training keeps im2col's patches for dW), nor for strides,
    other kernel sizes, padding over 2, or too few tiles in the batch."""
    x = mg.Tensor(rng.standard_normal((1, 2, 8, 8)), requires_grad=True)
    w3, w5 = mg.Tensor(rng.standard_normal((2, 2, 3, 3))), mg.Tensor(rng.standard_normal((2, 2, 5, 5)))
    assert ran(F.conv2d(x, w3, None, 1, 1))._ctx.winograd
    assert not ran(F.conv2d(x, mg.Tensor(w3.data, requires_grad=True), None, 1, 1))._ctx.winograd
    assert not ran(F.conv2d(x, w3, None, 2, 1))._ctx.winograd
    assert not ran(F.conv2d(x, w5, None, 1, 2))._ctx.winograd
    assert not ran(F.conv2d(x, w3, None, 1, 3))._ctx.winograd
    monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 17)                   # 16 tiles (8x8 out): too few
    assert not ran(F.conv2d(x, w3, None, 1, 1))._ctx.winograd
    x2 = mg.Tensor(np.concatenate([x.data] * 2), requires_grad=True)   # 32 tiles: enough
    assert ran(F.conv2d(x2, w3, None, 1, 1))._ctx.winograd


def test_float32_error(rng, monkeypatch):
    """Float32 at VGG16's conv3 widths (256 -> 256 channels, 28x28): the error against float64,
    relative to the largest output, for Winograd and for im2col. Winograd's transforms add and
    subtract up to 16 terms around the GEMM, so its error is larger: measured 7.0e-7 against im2col's
    4.8e-7. Bound: 5e-6, room for other BLAS builds' summation orders and well inside the 1e-4 of the
    PyTorch cross-checks. The float64 reference is im2col's, which matches the naive loops to 1e-12
    (test_network_ops.py) and is much faster than them."""
    x = rng.standard_normal((1, 256, 28, 28))
    w = rng.standard_normal((256, 256, 3, 3)) / np.sqrt(256 * 9)
    x32, w32 = mg.Tensor(x.astype(np.float32), requires_grad=True), mg.Tensor(w.astype(np.float32))
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 0)                 # im2col
    want = F.conv2d(mg.Tensor(x), mg.Tensor(w), None, 1, 1).data
    im2col = ran(F.conv2d(x32, w32, None, 1, 1))
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 128)               # Winograd
    wino = ran(F.conv2d(x32, w32, None, 1, 1))
    assert wino._ctx.winograd and not im2col._ctx.winograd
    scale = np.abs(want).max()
    err_wino, err_im2col = (np.abs(a.data - want).max() / scale for a in (wino, im2col))
    assert wino.dtype == np.float32
    assert err_wino <= 5e-6, (err_wino, err_im2col)
    g = rng.standard_normal(wino.shape).astype(np.float32)            # and its input gradient stays float32
    wino.backward(g)
    assert x32.grad.dtype == np.float32


def test_no_grad_means_no_input_needs_a_gradient(rng):
    """Under no_grad, ops see needs_input_grad all False (so a conv takes its inference path)."""
    w = mg.Tensor(rng.standard_normal((256, 256, 3, 3)).astype(np.float32), requires_grad=True)
    x = mg.Tensor(rng.standard_normal((1, 256, 6, 6)).astype(np.float32), requires_grad=True)
    seen = []
    original = conv.Conv2d.forward

    def spy(ctx, *args, **kwargs):
        seen.append(ctx.needs_input_grad)
        return original(ctx, *args, **kwargs)
    conv.Conv2d.forward = staticmethod(spy)
    try:
        with mg.no_grad():
            F.conv2d(x, w, None, 1, 1).data
        F.conv2d(x, w, None, 1, 1).data
    finally:
        conv.Conv2d.forward = staticmethod(original)
    assert seen == [(False, False), (True, True)]


def test_64_channel_layers_go_by_winograd_in_small_chunks_float32_error(rng):
    """With the default plan a 64-channel 3x3 layer (VGG16's conv1_2, at 112x112) goes
    by Winograd, in chunks of ``WINOGRAD_SMALL_BUDGET`` (several, so its bands are exercised); float32
    forward and input gradient against the simple tier in float64, relative to the largest value:
    measured 2.5e-7 forward and 3.6e-7 input gradient (bound 5e-6, as above)."""
    x = rng.standard_normal((1, 64, 112, 112))
    w = rng.standard_normal((64, 64, 3, 3)) / np.sqrt(64 * 9)
    b = rng.standard_normal(64)
    g = rng.standard_normal((1, 64, 112, 112))
    assert len(conv._chunks(1, 16 * 64, 56, 56, conv._winograd_budget(w))) > 2
    x32 = mg.Tensor(x.astype(np.float32), requires_grad=True)
    out = F.conv2d(x32, mg.Tensor(w.astype(np.float32)), mg.Tensor(b.astype(np.float32)), 1, 1, relu=True)
    out.backward(g.astype(np.float32))
    assert out._ctx.winograd and out.dtype == x32.grad.dtype == np.float32
    with mg.use_ops("simple"):
        x64 = mg.Tensor(x, requires_grad=True)
        want = F.relu(F.conv2d(x64, mg.Tensor(w), mg.Tensor(b), 1, 1))
        want.backward(g)
    err_out = np.abs(out.data - want.data).max() / np.abs(want.data).max()
    err_dx = np.abs(x32.grad - x64.grad).max() / np.abs(x64.grad).max()
    assert err_out <= 5e-6 and err_dx <= 5e-6, (err_out, err_dx)
