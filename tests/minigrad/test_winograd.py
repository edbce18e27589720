"""Winograd F(2x2, 3x3) and F(4x4, 3x3): their kernels against the matrix definitions, the convolution
and its input gradient against the naive loops, when each is used, and their float32 error."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, relu_rules
from minigrad.fast import conv, winograd
from minigrad.fast import reference as ref, winograd_kernels as wk

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
    """Winograd for any channel count and image size, so that small test shapes take its path (F(2x2)
    unless a test asks for F(4x4) with ``use_block``)."""
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 0)


def use_block(monkeypatch, m):
    """Winograd F(m x m, 3x3) wherever Winograd applies, whatever the number of tiles."""
    monkeypatch.setattr(conv, "WINOGRAD4_MIN_TILES", 0 if m == 4 else None)
    monkeypatch.setattr(conv, "WINOGRAD4_MAX_WORK", 1.0)


# F(4x4, 3x3) (Lavin & Gray 2015; points 0, 1, -1, 2, -2 and infinity), written out here as this test's
# own statement of the matrices: Y = A^T [(G w G^T) * (B^T d B)] A for a 6x6 input tile d.
BT4 = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=float)
G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
AT4 = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], dtype=float)


def input_4x4_loops(x, ph, pw, th, tw):
    """V (36, C, N*th*tw): V[6a + b, c, T] = (B^T d B)[a, b], d the 6x6 tile of x (zero-padded) whose
    top-left pixel is (4*ty - ph, 4*tx - pw), T = (n*th + ty)*tw + tx."""
    N, C, H, W = x.shape
    padded = np.zeros((N, C, 4 * th + 2 + H, 4 * tw + 2 + W), x.dtype)
    padded[:, :, ph:ph + H, pw:pw + W] = x
    V = np.zeros((36, C, N * th * tw), x.dtype)
    for n, c, ty, tx in np.ndindex(N, C, th, tw):
        d = padded[n, c, 4 * ty:4 * ty + 6, 4 * tx:4 * tx + 6]
        V[:, c, (n * th + ty) * tw + tx] = (BT4 @ d @ BT4.T).ravel()
    return V


def output_4x4_loops(M, b, relu, N, oh, ow, th, tw):
    """out (N, O, oh, ow): each tile's 4x4 block A^T m A + b[o] (then the ReLU if relu), cropped."""
    O = M.shape[1]
    out = np.zeros((N, O, 4 * th, 4 * tw), M.dtype)
    for n, o, ty, tx in np.ndindex(N, O, th, tw):
        m = M[:, o, (n * th + ty) * tw + tx].reshape(6, 6)
        out[n, o, 4 * ty:4 * ty + 4, 4 * tx:4 * tx + 4] = AT4 @ m @ AT4.T + b[o]
    out = out[:, :, :oh, :ow]
    return np.maximum(out, 0) if relu else out


def test_4x4_matrices_compute_the_correlation(rng):
    """In one dimension, A^T [(G g) * (B^T d)] = the correlation of 6 inputs d with 3 taps g (4 outputs);
    the 2-D transform applies it along rows, then columns."""
    for _ in range(5):
        d, g = rng.standard_normal(6), rng.standard_normal(3)
        want = [d[i:i + 3] @ g for i in range(4)]
        np.testing.assert_allclose(AT4 @ ((G4 @ g) * (BT4 @ d)), want, rtol=1e-13, atol=1e-13)


#: each block size's input and output transform kernels, and the references they are held to
BLOCKS = {2: (wk.input_2x2, wk.output_2x2, ref.winograd_input, ref.winograd_output),
          4: (wk.input_4x4, wk.output_4x4, input_4x4_loops, output_4x4_loops)}


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("shape,padding", [((2, 3, 7, 6), (1, 1)), ((1, 2, 8, 8), (0, 0)), ((3, 2, 5, 9), (2, 1)),
                                           ((1, 1, 3, 3), (1, 1)), ((2, 2, 4, 5), (2, 2)), ((2, 2, 13, 10), (2, 0)),
                                           ((1, 2, 12, 17), (1, 1))])
def test_transform_kernels_match_the_matrices(rng, m, shape, padding):
    """F(m x m): V = B^T d B for every (m + 2)x(m + 2) tile, and out = A^T m A + b (ReLU or not, scaled or
    not), cropped to sizes that are not multiples of m: whole images, a band of tile rows of one image,
    float32 (1e-5: float32 rounding of sums of at most 36 terms of standard normals)."""
    input_kernel, output_kernel, input_ref, output_ref = BLOCKS[m]
    tile = (m + 2) ** 2
    x = rng.standard_normal(shape)
    N, C, H, W = shape
    ph, pw = padding
    oh, ow = H + 2 * ph - 2, W + 2 * pw - 2
    th, tw = -(-oh // m), -(-ow // m)
    want = input_ref(x, ph, pw, th, tw)                                # (tile, C, N*th*tw)
    V = np.full(want.shape, 7.0)
    input_kernel(x, 0, 0, ph, pw, th, tw, V)
    np.testing.assert_allclose(V, want, rtol=1e-13, atol=1e-13)
    V32 = np.full(want.shape, 7.0, np.float32)
    getattr(wk.serial, input_kernel.py_func.__name__)(x.astype(np.float32), 0, 0, ph, pw, th, tw, V32)
    np.testing.assert_allclose(V32, want, rtol=1e-5, atol=1e-5)
    if th > 1:                                                         # tile rows 1 .. th-1 of the last image
        band = np.full((tile, C, (th - 1) * tw), 7.0)
        input_kernel(x, N - 1, 1, ph, pw, th - 1, tw, band)
        last = want.reshape(tile, C, N, th, tw)[:, :, N - 1, 1:].reshape(tile, C, -1)
        np.testing.assert_allclose(band, last, rtol=1e-13, atol=1e-13)
    O = 3
    M = rng.standard_normal((tile, O, N * th * tw))
    b = rng.standard_normal(O)
    for relu in (False, True):
        out = np.full((N, O, oh, ow), 7.0)
        output_kernel(M, b, relu, 0, 0, th, tw, out)
        whole = output_ref(M, b, relu, N, oh, ow, th, tw)
        np.testing.assert_allclose(out, whole, rtol=1e-13, atol=1e-13)
        scale = rng.standard_normal(O)                                 # a folded batch norm's: A^T (s m) A
        output_kernel(M, b, relu, 0, 0, th, tw, out, scale)
        want_out = output_ref(M * scale[None, :, None], b, relu, N, oh, ow, th, tw)
        np.testing.assert_allclose(out, want_out, rtol=1e-13, atol=1e-13)
        if th > 1:                                                     # tile rows 1 .. th-1 of the last image
            band = np.full((N, O, oh, ow), 7.0)
            last = M.reshape(tile, O, N, th, tw)[:, :, N - 1, 1:].reshape(tile, O, -1)
            getattr(wk.serial, output_kernel.py_func.__name__)(np.ascontiguousarray(last), b, relu, N - 1, 1,
                                                               th - 1, tw, band)
            np.testing.assert_allclose(band[N - 1, :, m:], whole[N - 1, :, m:], rtol=1e-13, atol=1e-13)
            assert (band[N - 1, :, :m] == 7).all() and (band[:N - 1] == 7).all()


def test_filter_transform_matches_the_matrices(rng):
    assert np.array_equal(winograd.G[2], ref.WINOGRAD_G) and np.array_equal(winograd.G[4], G4)
    w = rng.standard_normal((4, 3, 3, 3))
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1])                 # the backward's 180-degree turn
    np.testing.assert_allclose(winograd.filters(w), ref.winograd_filters(w), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(winograd.filters(w, flip=True), ref.winograd_filters(flipped),
                               rtol=1e-14, atol=1e-14)
    for v, turned in ((w, False), (flipped, True)):                    # F(4x4): (36, O, C)
        want = np.einsum("ai,ocij,bj->aboc", G4, v, G4).reshape(36, 4, 3)
        np.testing.assert_allclose(winograd.filters(w, flip=turned, m=4), want, rtol=1e-14, atol=1e-14)
    out = np.full((36, 4, 3), 7.0)
    assert winograd.filters(w, m=4, out=out) is out
    np.testing.assert_allclose(out, winograd.filters(w, m=4), rtol=0, atol=0)
    assert winograd.filters(w.astype(np.float32), m=4).dtype == np.float32


@pytest.mark.parametrize("block", [2, 4])
@pytest.mark.parametrize("budget", [10**9, 300])
@pytest.mark.parametrize("shape,out_channels,padding", [((2, 3, 7, 6), 4, 1), ((1, 2, 8, 8), 3, 0),
                                                        ((3, 2, 5, 9), 5, 2), ((2, 4, 6, 6), 2, 1),
                                                        ((1, 3, 11, 13), 4, 1), ((2, 2, 10, 9), 3, 0)])
def test_conv_and_input_gradient_match_the_naive_loops(rng, monkeypatch, winograd_everywhere, block, budget, shape,
                                                       out_channels, padding):
    """Float64: conv2d(..., relu=True) by Winograd F(2x2) or F(4x4) (weights without gradient) equals the
    loops' convolution, and its input gradient (Winograd again, with the flipped kernel) the loops'
    gradient, to 1e-12; in one chunk and in bands of tile rows (a small budget); odd sizes, sizes that
    are not multiples of 4, padding 0, 1 and 2, one image and several."""
    monkeypatch.setattr(conv, "COLS_BUDGET", budget)
    use_block(monkeypatch, block)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((out_channels, shape[1], 3, 3))
    b = rng.standard_normal(out_channels)
    xt = mg.Tensor(x, requires_grad=True)
    out = F.conv2d(xt, mg.Tensor(w), mg.Tensor(b), 1, padding, relu=True)
    assert out._ctx.winograd and out._ctx.winograd_block == block
    pre = ref.conv2d(x, w, b, (1, 1), (padding, padding))
    np.testing.assert_allclose(out.data, ref.relu(pre), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    dx, _, _ = ref.conv2d_backward(x, w, g * (pre > 0), (1, 1), (padding, padding))
    np.testing.assert_allclose(xt.grad, dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block", [2, 4])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_scale_bias_and_relu_by_either_block(rng, monkeypatch, winograd_everywhere, block, padding):
    """Float64, a folded batch norm's scale with bias and ReLU, two images: forward relu(s * conv + b)
    and its input gradient equal the loops' to 1e-12."""
    use_block(monkeypatch, block)
    x = rng.standard_normal((2, 3, 9, 7))
    w, b, s = rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5), rng.standard_normal(5)
    xt = mg.Tensor(x, requires_grad=True)
    out = F.conv2d(xt, mg.Tensor(w), mg.Tensor(b), 1, padding, scale=s, relu=True)
    assert out._ctx.winograd and out._ctx.winograd_block == block and out._ctx.scale is not None
    pre = ref.conv2d(x, w * s[:, None, None, None], b, (1, 1), (padding, padding))
    np.testing.assert_allclose(out.data, ref.relu(pre), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    dx, _, _ = ref.conv2d_backward(x, w * s[:, None, None, None], g * (pre > 0), (1, 1), (padding, padding))
    np.testing.assert_allclose(xt.grad, dx, rtol=1e-12, atol=1e-12)


def test_float64_4x4_is_tight_at_vgg_widths(rng, monkeypatch):
    """Float64 F(4x4) at 128 -> 128 channels, two 30x30 images (not a multiple of 4), in bands of
    tile rows: forward and input gradient within 1e-10 of im2col's, relative to the largest value."""
    use_block(monkeypatch, 4)
    monkeypatch.setattr(conv, "COLS_BUDGET", 2**17)                       # bands of 3 tile rows
    x = mg.Tensor(rng.standard_normal((2, 128, 30, 30)), requires_grad=True)
    w, b = mg.Tensor(rng.standard_normal((128, 128, 3, 3)) / 34), mg.Tensor(rng.standard_normal(128))
    g = rng.standard_normal((2, 128, 30, 30))
    results = []
    for channels in (0, 64):                                           # im2col, then Winograd
        monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", channels)
        x.grad = None
        out = F.conv2d(x, w, b, 1, 1, relu=True)
        out.backward(g)
        assert out._ctx.winograd == bool(channels) and (not channels or out._ctx.winograd_block == 4)
        results.append((out.data, x.grad))
    assert len(conv._chunks(2, 36 * 128, 8, 8, conv._winograd_budget(w.data, 4))) == 6
    for got, want in zip(results[1], results[0]):
        assert np.abs(got - want).max() <= 1e-10 * np.abs(want).max()


@pytest.mark.parametrize("block", [2, 4])
def test_input_gradient_passes_gradcheck(rng, monkeypatch, winograd_everywhere, block):
    use_block(monkeypatch, block)
    x = mg.Tensor(rng.standard_normal((2, 3, 6, 5)), requires_grad=True)
    w, b = mg.Tensor(rng.standard_normal((4, 3, 3, 3))), mg.Tensor(rng.standard_normal(4))
    out = ran(F.conv2d(x, w, b, 1, 1))
    assert out._ctx.winograd and out._ctx.winograd_block == block
    assert mg.gradcheck(lambda x: F.conv2d(x, w, b, 1, 1), [x])


@pytest.mark.parametrize("n,size,block", [(1, 224, 4), (1, 112, 4), (1, 56, 4), (1, 28, 2), (1, 14, 2), (1, 7, 2),
                                          (4, 28, 4), (2, 28, 2), (16, 14, 2), (64, 7, 4), (1, 54, 4)])
def test_block_size_by_layer(n, size, block):
    """F(4x4) for VGG16's layers at 224, 112 and 56 and ResNet-50's at 56 (batch 1), and at other sizes
    once the batch has 196 tiles of 4x4 output (28x28 at batch 4, 7x7 at batch 64); F(2x2) at 28x28 and
    below at batch 1, and at 14x14 whatever the batch (4x4 tiles cover 16x16 there: 0.73 of F(2x2)'s
    multiply-adds)."""
    assert conv._winograd_block(n, size, size) == block


@pytest.mark.parametrize("size,block", [(56, 4), (28, 2)])
def test_forward_and_input_gradient_take_the_chosen_block(rng, monkeypatch, size, block):
    """With the default plan, a frozen 64 -> 64 layer's forward and input gradient both go by the block
    that ``_winograd_block`` chooses for their output (here the same size)."""
    seen, original = [], winograd.conv

    def spy(x, U, *args, **kwargs):
        seen.append(int(np.sqrt(len(U))) - 2)
        return original(x, U, *args, **kwargs)
    monkeypatch.setattr(winograd, "conv", spy)
    x = mg.Tensor(rng.standard_normal((1, 64, size, size)).astype(np.float32), requires_grad=True)
    w = mg.Tensor(rng.standard_normal((64, 64, 3, 3)).astype(np.float32))
    out = F.conv2d(x, w, None, 1, 1, relu=True)
    out.backward(np.ones(out.shape, np.float32))
    assert out._ctx.winograd and out._ctx.winograd_block == block
    assert seen == [block, block]


@pytest.mark.parametrize("block", [2, 4])
@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_relu_rules_and_observers_are_the_same_as_im2col(rng, monkeypatch, rule, block):
    """Under each ReLU rule, observed or not, the Winograd path's input gradient equals im2col's."""
    use_block(monkeypatch, block)
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
    relative to the largest value, of the forward and the input gradient by im2col, F(2x2) and F(4x4).
    Winograd's transforms add and subtract up to 16 (F(2x2)) or 36 (F(4x4), with weights up to 8x8)
    terms around the GEMMs, so its error is larger: measured forward / input gradient, im2col
    5.0e-7 / 3.9e-7, F(2x2) 7.8e-7 / 5.9e-7, F(4x4) 1.2e-5 / 1.0e-5. Bounds: 5e-6 for F(2x2), 3e-5 for
    F(4x4), room for other BLAS builds' summation orders and inside the 1e-4 of the PyTorch
    cross-checks. The float64 reference is im2col's, which matches the naive loops to 1e-12
    (test_network_ops.py) and is much faster than them."""
    x = rng.standard_normal((1, 256, 28, 28))
    w = rng.standard_normal((256, 256, 3, 3)) / np.sqrt(256 * 9)
    g = rng.standard_normal((1, 256, 28, 28))
    errors = {}
    for name, channels, block, dtype in (("float64", 0, 2, np.float64), ("im2col", 0, 2, np.float32),
                                         ("F(2x2)", 64, 2, np.float32), ("F(4x4)", 64, 4, np.float32)):
        monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", channels)
        use_block(monkeypatch, block)
        xt = mg.Tensor(x.astype(dtype), requires_grad=True)
        out = F.conv2d(xt, mg.Tensor(w.astype(dtype)), None, 1, 1)
        out.backward(g.astype(dtype))
        assert out._ctx.winograd == bool(channels) and (not channels or out._ctx.winograd_block == block)
        assert out.dtype == xt.grad.dtype == dtype
        if name == "float64":
            want = out.data, xt.grad
        else:
            errors[name] = [np.abs(a - b).max() / np.abs(b).max() for a, b in zip((out.data, xt.grad), want)]
    assert max(errors["F(2x2)"]) <= 5e-6 and max(errors["F(4x4)"]) <= 3e-5, errors


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
    """With the default plan a 64-channel 3x3 layer (VGG16's conv1_2, at 112x112) goes by Winograd
    F(4x4), in chunks of ``WINOGRAD4_SMALL_BUDGET`` (several, so its bands are exercised); float32
    forward and input gradient against the simple tier in float64, relative to the largest value:
    measured 5.0e-6 forward and 1.1e-5 input gradient (bound 3e-5, as above)."""
    x = rng.standard_normal((1, 64, 112, 112))
    w = rng.standard_normal((64, 64, 3, 3)) / np.sqrt(64 * 9)
    b = rng.standard_normal(64)
    g = rng.standard_normal((1, 64, 112, 112))
    assert len(conv._chunks(1, 36 * 64, 28, 28, conv._winograd_budget(w, 4))) > 2
    x32 = mg.Tensor(x.astype(np.float32), requires_grad=True)
    out = F.conv2d(x32, mg.Tensor(w.astype(np.float32)), mg.Tensor(b.astype(np.float32)), 1, 1, relu=True)
    out.backward(g.astype(np.float32))
    assert out._ctx.winograd and out._ctx.winograd_block == 4 and out.dtype == x32.grad.dtype == np.float32
    with mg.use_ops("simple"):
        x64 = mg.Tensor(x, requires_grad=True)
        want = F.relu(F.conv2d(x64, mg.Tensor(w), mg.Tensor(b), 1, 1))
        want.backward(g)
    err_out = np.abs(out.data - want.data).max() / np.abs(want.data).max()
    err_dx = np.abs(x32.grad - x64.grad).max() / np.abs(x64.grad).max()
    assert err_out <= 3e-5 and err_dx <= 3e-5, (err_out, err_dx)


def test_input_transforms_do_no_float64_arithmetic():
    """Compiled (afresh: cached code shows no IR) for float32, the input transforms have no ``double`` in
    their LLVM IR: their constants are float32 scalars (a bare integer would make Numba use float64)."""
    import numba
    x = np.ones((1, 2, 8, 8), np.float32)
    for kernel, V, tiles in ((wk.input_2x2, np.empty((16, 2, 16), np.float32), 4),
                             (wk.input_4x4, np.empty((36, 2, 4), np.float32), 2)):
        fresh = numba.njit(kernel.py_func)
        fresh(x, 0, 0, 1, 1, tiles, tiles, V)
        assert "double" not in "".join(fresh.inspect_llvm().values()), kernel.py_func.__name__
