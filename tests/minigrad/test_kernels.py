"""The fast Numba kernels against the naive loops of kernels/reference.py, on float32 and float64."""
import numpy as np
import pytest

from minigrad.kernels import cpu, reference as ref

from ..conftest import distinct

GEOMETRIES = [  # (C, H, W), kh, kw, sh, sw, ph, pw
    ((3, 7, 6), 3, 3, 1, 1, 1, 1),
    ((2, 9, 11), 5, 5, 2, 2, 2, 2),
    ((4, 5, 8), 1, 1, 1, 1, 0, 0),
    ((2, 10, 7), 3, 1, 3, 2, 0, 1),
]


def _out_size(H, W, kh, kw, sh, sw, ph, pw):
    return (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kh,kw,sh,sw,ph,pw", GEOMETRIES)
def test_im2col_col2im_match_reference(rng, dtype, shape, kh, kw, sh, sw, ph, pw):
    x = rng.standard_normal(shape).astype(dtype)
    oh, ow = _out_size(*shape[1:], kh, kw, sh, sw, ph, pw)
    cols = np.full((shape[0] * kh * kw, oh * ow), np.nan, dtype)       # every entry must be written
    cpu.im2col(x, kh, kw, sh, sw, ph, pw, oh, ow, cols)
    np.testing.assert_array_equal(cols, ref.im2col(x, kh, kw, sh, sw, ph, pw, oh, ow))

    c = rng.standard_normal(cols.shape).astype(dtype)
    dx = np.zeros(shape, dtype)
    cpu.col2im(c, kh, kw, sh, sw, ph, pw, oh, ow, dx)
    want = ref.col2im(c, shape, kh, kw, sh, sw, ph, pw, oh, ow)
    np.testing.assert_allclose(dx, want, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 1, 3, 3)])
def test_bias_relu_matches_reference(rng, shape):
    N, O = shape[:2]
    out = rng.standard_normal((N, O, shape[2] * shape[3])).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    want_linear = out + b[None, :, None]
    got = out.copy()
    cpu.bias_relu(got, b, False)
    np.testing.assert_array_equal(got, want_linear)
    got = out.copy()
    cpu.bias_relu(got, b, True)
    np.testing.assert_array_equal(got, ref.relu(want_linear))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kh,kw,sh,sw", [((2, 3, 8, 8), 2, 2, 2, 2), ((1, 2, 9, 7), 3, 3, 2, 2),
                                                ((2, 1, 7, 7), 3, 2, 1, 2), ((1, 2, 11, 10), 2, 2, 3, 3)])
def test_maxpool_matches_reference(rng, dtype, shape, kh, kw, sh, sw):
    x = distinct(rng, shape, dtype=dtype)
    oh, ow = (shape[2] - kh) // sh + 1, (shape[3] - kw) // sw + 1
    out = np.empty(shape[:2] + (oh, ow), dtype)
    switches = np.empty(out.shape, np.int32)
    cpu.maxpool_forward(x, kh, kw, sh, sw, out, switches)
    want, want_switches = ref.max_pool2d(x, kh, kw, sh, sw)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(switches, want_switches)
    g = rng.standard_normal(out.shape).astype(dtype)
    dx = np.zeros(shape, dtype)
    cpu.maxpool_backward(g, switches, dx)
    np.testing.assert_array_equal(dx, ref.max_pool2d_backward(g, want_switches, shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", ["gradient", "deconvnet", "guided"])
def test_relu_kernels_match_reference(rng, dtype, rule):
    x = rng.standard_normal(1000).astype(dtype)
    g = rng.standard_normal(1000).astype(dtype)
    y = np.empty_like(x)
    cpu.relu_forward(x, y)
    np.testing.assert_array_equal(y, ref.relu(x))
    dx = np.empty_like(g)
    cpu.relu_backward(y, g, ("gradient", "deconvnet", "guided").index(rule), dx)
    np.testing.assert_array_equal(dx, ref.relu_backward(x, g, rule))
