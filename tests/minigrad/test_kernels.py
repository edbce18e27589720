"""The fast Numba kernels against the naive loops of fast/reference.py, on float32 and float64."""
import numpy as np
import pytest

from minigrad.fast import cpu_kernels as cpu, reference as ref
from minigrad.relu_rules import RULES, code

from ..conftest import distinct

GEOMETRIES = [  # (N, C, H, W), kh, kw, sh, sw, ph, pw
    ((2, 3, 7, 6), 3, 3, 1, 1, 1, 1),
    ((3, 2, 9, 11), 5, 5, 2, 2, 2, 2),
    ((1, 4, 5, 8), 1, 1, 1, 1, 0, 0),
    ((2, 2, 10, 7), 3, 1, 3, 2, 0, 1),
]


def _out_size(H, W, kh, kw, sh, sw, ph, pw):
    return (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kh,kw,sh,sw,ph,pw", GEOMETRIES)
def test_im2col_col2im_match_reference(rng, dtype, shape, kh, kw, sh, sw, ph, pw):
    x = rng.standard_normal(shape).astype(dtype)
    N, C = shape[:2]
    oh, ow = _out_size(*shape[2:], kh, kw, sh, sw, ph, pw)
    P = oh * ow
    want = ref.im2col(x, kh, kw, sh, sw, ph, pw, oh, ow)                # (C*kh*kw, N*P)
    c = rng.standard_normal(want.shape).astype(dtype)
    # Chunks: all images; the last image alone; a band of output rows of the last image.
    for n0, n1, oy0, oy1 in ((0, N, 0, oh), (N - 1, N, 0, oh), (N - 1, N, 1, max(2, oh - 1))):
        band = np.zeros(N * P, bool)
        for n in range(n0, n1):
            band[n * P + oy0 * ow:n * P + oy1 * ow] = True
        cols = np.full((C * kh * kw, int(band.sum())), np.nan, dtype)  # every entry must be written
        cpu.im2col(x, n0, oy0, kh, kw, sh, sw, ph, pw, oy1 - oy0, ow, cols)
        np.testing.assert_array_equal(cols, want[:, band])
        dx = np.zeros(shape, dtype)
        cpu.col2im(np.ascontiguousarray(c[:, band]), n0, oy0, kh, kw, sh, sw, ph, pw, oy1 - oy0, ow, dx)
        want_dx = ref.col2im(np.where(band, c, 0).astype(dtype), shape, kh, kw, sh, sw, ph, pw, oh, ow)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


@pytest.mark.parametrize("relu", [False, True])
def test_gemm_unpacking_with_scale_and_residual(rng, relu):
    """The CPU's optional arguments (a folded batch norm's scale, a residual block's shortcut):
    out[n0 + n, o, p0 + p] = max(y[o, n*P + p] * scale[o] + b[o] + r[n0 + n, o, p0 + p], 0 if relu)."""
    N, O, P = 3, 4, 10
    y, b, scale = rng.standard_normal((O, 2 * P)), rng.standard_normal(O), rng.standard_normal(O)
    r = rng.standard_normal((N, O, P))
    pre = y.reshape(O, 2, P).transpose(1, 0, 2)
    for s, res in ((scale, None), (None, r), (scale, r)):
        out = np.full((N, O, P), 7.0)
        cpu.gemm_out_to_nchw(y, b, relu, 1, 0, out, s, res)
        want = pre * (1 if s is None else s[None, :, None]) + b[None, :, None] + (0 if res is None else res[1:])
        np.testing.assert_allclose(out[1:], ref.relu(want) if relu else want, rtol=1e-14, atol=1e-14)
        assert (out[0] == 7.0).all()


@pytest.mark.parametrize("relu", [False, True])
def test_gemm_packing_matches_reference(rng, relu):
    N, O, P = 3, 4, 10
    y = rng.standard_normal((O, 2 * P)).astype(np.float32)             # images 1 and 2 of 3
    b = rng.standard_normal(O).astype(np.float32)
    out = np.full((N, O, P), 7.0, np.float32)
    cpu.gemm_out_to_nchw(y, b, relu, 1, 0, out)
    want = y.reshape(O, 2, P).transpose(1, 0, 2) + b[None, :, None]
    np.testing.assert_array_equal(out[1:], ref.relu(want) if relu else want)
    assert (out[0] == 7.0).all()
    band = np.full((N, O, P), 7.0, np.float32)                          # a band of pixels 3..7 of image 2
    cpu.gemm_out_to_nchw(np.ascontiguousarray(y[:, :4]), b, relu, 2, 3, band)
    want = y[:, :4] + b[:, None]
    np.testing.assert_array_equal(band[2, :, 3:7], ref.relu(want) if relu else want)
    assert (band[:2] == 7.0).all() and (band[2, :, :3] == 7.0).all() and (band[2, :, 7:] == 7.0).all()
    back = np.empty((O, 2 * P), np.float32)
    cpu.nchw_to_gemm(out, out, cpu.NO_RELU, 1, 0, back)
    np.testing.assert_array_equal(back, out[1:].transpose(1, 0, 2).reshape(O, 2 * P))


@pytest.mark.parametrize("rule", RULES)
def test_gradient_packing_through_the_relu_rule_matches_reference(rng, rule):
    """nchw_to_gemm with a rule = the ReLU backward (reference loops) followed by the plain packing,
    for whole images and for a band of one image."""
    N, O, P = 3, 4, 10
    g = rng.standard_normal((N, O, P)).astype(np.float32)
    y = np.maximum(rng.standard_normal((N, O, P)), 0).astype(np.float32)   # a ReLU's output
    through = ref.relu_backward(y, g, rule)                               # [y > 0] = [x > 0]
    packed = np.empty((O, 2 * P), np.float32)
    cpu.nchw_to_gemm(g, y, code(rule), 1, 0, packed)
    np.testing.assert_array_equal(packed, through[1:].transpose(1, 0, 2).reshape(O, 2 * P))
    band = np.empty((O, 4), np.float32)                                  # pixels 3..6 of image 2
    cpu.nchw_to_gemm(g, y, code(rule), 2, 3, band)
    np.testing.assert_array_equal(band, through[2, :, 3:7])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kh,kw,sh,sw,ph,pw", [
    ((2, 3, 8, 8), 2, 2, 2, 2, 0, 0), ((1, 2, 9, 7), 3, 3, 2, 2, 0, 0), ((2, 1, 7, 7), 3, 2, 1, 2, 0, 0),
    ((1, 2, 11, 10), 2, 2, 3, 3, 0, 0), ((2, 2, 9, 8), 3, 3, 2, 2, 1, 1), ((1, 2, 7, 9), 5, 3, 2, 1, 2, 1),
    ((2, 1, 6, 5), 2, 3, 3, 2, 1, 0)])
def test_maxpool_matches_reference(rng, dtype, shape, kh, kw, sh, sw, ph, pw):
    x = distinct(rng, shape, dtype=dtype)
    oh, ow = (shape[2] + 2 * ph - kh) // sh + 1, (shape[3] + 2 * pw - kw) // sw + 1
    out = np.empty(shape[:2] + (oh, ow), dtype)
    switches = np.empty(out.shape, np.int32)
    cpu.maxpool_forward(x, kh, kw, sh, sw, ph, pw, out, switches)
    want, want_switches = ref.max_pool2d(x, kh, kw, sh, sw, ph, pw)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(switches, want_switches)
    g = rng.standard_normal(out.shape).astype(dtype)
    dx = np.full(shape, np.nan, dtype)                                    # overwritten, not added to
    cpu.maxpool_backward(g, switches, kh, kw, sh, sw, ph, pw, dx)
    np.testing.assert_array_equal(dx, ref.max_pool2d_backward(g, want_switches, shape))


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 9, 7), (3, 1, 2, 2)])
def test_maxpool_2x2_ties_take_the_first_maximum(rng, shape):
    """The 2x2 stride-2 path (VGG's pools) on values with many ties (3 distinct values), odd sizes
    (the last row and column left out): the same maxima and switches as the reference."""
    x = rng.integers(0, 3, shape).astype(np.float32)
    out = np.empty(shape[:2] + (shape[2] // 2, shape[3] // 2), np.float32)
    switches = np.empty(out.shape, np.int32)
    cpu.maxpool_forward(x, 2, 2, 2, 2, 0, 0, out, switches)
    want, want_switches = ref.max_pool2d(x, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(switches, want_switches)


def test_padded_maxpool_ignores_padding_even_for_negative_windows():
    """Padding is -inf, not 0 (PyTorch's rule): a window of negative values over the border gives
    its largest value, never 0, and its switch is inside the image."""
    x = -np.arange(1, 17, dtype=np.float64).reshape(1, 1, 4, 4)
    out, switches = np.empty((1, 1, 2, 2)), np.empty((1, 1, 2, 2), np.int32)
    cpu.maxpool_forward(x, 3, 3, 2, 2, 1, 1, out, switches)
    np.testing.assert_array_equal(out[0, 0], [[-1, -2], [-5, -6]])
    np.testing.assert_array_equal(switches[0, 0], [[0, 1], [4, 5]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", RULES)
def test_relu_kernels_match_reference(rng, dtype, rule):
    x = rng.standard_normal(1000).astype(dtype)
    g = rng.standard_normal(1000).astype(dtype)
    y = np.empty_like(x)
    cpu.relu_forward(x, y)
    np.testing.assert_array_equal(y, ref.relu(x))
    dx = np.empty_like(g)
    cpu.relu_backward(y, g, code(rule), dx)
    np.testing.assert_array_equal(dx, ref.relu_backward(x, g, rule))
