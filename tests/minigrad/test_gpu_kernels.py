"""The numba.cuda kernels (fast/gpu_kernels.py) against the CPU kernels, element for element.

On a machine without a GPU they run under the CUDA simulator on NumPy arrays (see tests/conftest.py),
which checks their indexing; with a GPU they run on it, on CuPy arrays. Shapes stay small: the
simulator runs every CUDA thread as a Python thread.
"""
import os

import numpy as np
import pytest

pytest.importorskip("numba.cuda", reason="no numba.cuda: neither Numba's own nor numba-cuda's (the test-cuda "
                                         "extra: pip install -e '.[test-cuda]')")

from minigrad import relu_rules  # noqa: E402
from minigrad.fast import cpu_kernels as cpu, gpu_kernels as gpu  # noqa: E402

from ..conftest import distinct  # noqa: E402

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def dev(a):
    if SIMULATOR:
        return a.copy()
    import cupy
    return cupy.asarray(a)


def host(a):
    return a if SIMULATOR else a.get()


GEOMETRIES = [  # (N, C, H, W), kh, kw, sh, sw, ph, pw
    ((2, 2, 5, 4), 3, 3, 1, 1, 1, 1),
    ((1, 2, 6, 7), 3, 2, 2, 1, 0, 1),
    ((2, 1, 7, 5), 1, 1, 3, 2, 0, 0),
]


@pytest.mark.parametrize("shape,kh,kw,sh,sw,ph,pw", GEOMETRIES)
def test_gpu_im2col_col2im_match_cpu(rng, shape, kh, kw, sh, sw, ph, pw):
    x = rng.standard_normal(shape).astype(np.float32)
    N, C, H, W = shape
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    for n0, n1, oy0, rows in ((0, N, 0, oh), (N - 1, N, 1, max(1, oh - 2))):   # images; a band of rows
        want = np.empty((C * kh * kw, (n1 - n0) * rows * ow), np.float32)
        cpu.im2col(x, n0, oy0, kh, kw, sh, sw, ph, pw, rows, ow, want)
        got = dev(np.full_like(want, np.nan))
        gpu.im2col(dev(x), n0, oy0, kh, kw, sh, sw, ph, pw, rows, ow, got)
        np.testing.assert_array_equal(host(got), want)

        c = rng.standard_normal(want.shape).astype(np.float32)
        want_dx = np.zeros(shape, np.float32)
        cpu.col2im(c, n0, oy0, kh, kw, sh, sw, ph, pw, rows, ow, want_dx)
        got_dx = dev(np.zeros(shape, np.float32))
        gpu.col2im(dev(c), n0, oy0, kh, kw, sh, sw, ph, pw, rows, ow, got_dx)
        np.testing.assert_allclose(host(got_dx), want_dx, rtol=1e-6, atol=1e-6)   # summation order differs


@pytest.mark.parametrize("relu", [False, True])
def test_gpu_gemm_packing_matches_cpu(rng, relu):
    N, O, P = 3, 2, 6
    y = rng.standard_normal((O, 2 * P)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    want = np.zeros((N, O, P), np.float32)
    cpu.gemm_out_to_nchw(y, b, relu, 1, 0, want)
    got = dev(np.zeros((N, O, P), np.float32))
    gpu.gemm_out_to_nchw(dev(y), dev(b), relu, 1, 0, got)
    np.testing.assert_array_equal(host(got), want)
    band, got_band = np.zeros((N, O, P), np.float32), dev(np.zeros((N, O, P), np.float32))
    cpu.gemm_out_to_nchw(np.ascontiguousarray(y[:, :4]), b, relu, 0, 2, band)
    gpu.gemm_out_to_nchw(dev(np.ascontiguousarray(y[:, :4])), dev(b), relu, 0, 2, got_band)
    np.testing.assert_array_equal(host(got_band), band)
    y_relu = np.maximum(rng.standard_normal((N, O, P)), 0).astype(np.float32)   # a ReLU output, apart from g
    for rule in (cpu.NO_RELU, cpu.GRADIENT, cpu.DECONVNET, cpu.GUIDED):
        for n0, p0, width in ((1, 0, 2 * P), (2, 2, 3)):              # two whole images, a band of one
            back_want = np.empty((O, width), np.float32)
            cpu.nchw_to_gemm(want, y_relu, rule, n0, p0, back_want)
            back = dev(np.empty((O, width), np.float32))
            gpu.nchw_to_gemm(dev(want), dev(y_relu), rule, n0, p0, back)
            np.testing.assert_array_equal(host(back), back_want)


@pytest.mark.parametrize("shape,kh,kw,sh,sw,ph,pw", [((1, 2, 4, 4), 2, 2, 2, 2, 0, 0), ((1, 1, 5, 6), 3, 3, 2, 2, 0, 0),
                                                      ((2, 1, 4, 5), 2, 3, 1, 2, 0, 0), ((1, 2, 5, 6), 3, 3, 2, 2, 1, 1),
                                                      ((1, 1, 6, 5), 5, 3, 2, 1, 2, 1)])
def test_gpu_maxpool_matches_cpu(rng, shape, kh, kw, sh, sw, ph, pw):
    x = distinct(rng, shape, dtype=np.float32)
    oh, ow = (shape[2] + 2 * ph - kh) // sh + 1, (shape[3] + 2 * pw - kw) // sw + 1
    out, sw_cpu = np.empty(shape[:2] + (oh, ow), np.float32), np.empty(shape[:2] + (oh, ow), np.int32)
    cpu.maxpool_forward(x, kh, kw, sh, sw, ph, pw, out, sw_cpu)
    got, got_sw = dev(np.empty_like(out)), dev(np.empty_like(sw_cpu))
    gpu.maxpool_forward(dev(x), kh, kw, sh, sw, ph, pw, got, got_sw)
    np.testing.assert_array_equal(host(got), out)
    np.testing.assert_array_equal(host(got_sw), sw_cpu)
    g = rng.standard_normal(out.shape).astype(np.float32)
    want_dx = np.zeros(shape, np.float32)
    cpu.maxpool_backward(g, sw_cpu, kh, kw, sh, sw, ph, pw, want_dx)
    got_dx = dev(np.zeros(shape, np.float32))
    gpu.maxpool_backward(dev(g), dev(sw_cpu), kh, kw, sh, sw, ph, pw, got_dx)
    np.testing.assert_allclose(host(got_dx), want_dx, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("rule", [relu_rules.code(r) for r in relu_rules.RULES], ids=list(relu_rules.RULES))
def test_gpu_relu_matches_cpu(rng, rule):
    x = rng.standard_normal(50).astype(np.float32)
    g = rng.standard_normal(50).astype(np.float32)
    y = np.empty_like(x)
    cpu.relu_forward(x, y)
    got = dev(np.empty_like(x))
    gpu.relu_forward(dev(x), got)
    np.testing.assert_array_equal(host(got), y)
    want = np.empty_like(g)
    cpu.relu_backward(y, g, rule, want)
    got = dev(np.empty_like(g))
    gpu.relu_backward(dev(y), dev(g), rule, got)
    np.testing.assert_array_equal(host(got), want)


def test_gpu_kernels_span_several_blocks(rng):
    """Every kernel on arrays of more elements than one block of THREADS threads (several blocks, the
    last one partly idle), against the CPU kernels."""
    T = gpu.THREADS
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)               # 432 elements
    kh, kw, sh, sw, ph, pw = 3, 3, 2, 1, 1, 1
    oh, ow = (9 + 2 * ph - kh) // sh + 1, (8 + 2 * pw - kw) // sw + 1
    cols = np.empty((3 * kh * kw, 2 * oh * ow), np.float32)                # 27 x 80
    cpu.im2col(x, 0, 0, kh, kw, sh, sw, ph, pw, oh, ow, cols)
    got = dev(np.full_like(cols, np.nan))
    gpu.im2col(dev(x), 0, 0, kh, kw, sh, sw, ph, pw, oh, ow, got)
    np.testing.assert_array_equal(host(got), cols)
    want_dx, got_dx = np.zeros_like(x), dev(np.zeros_like(x))
    cpu.col2im(cols, 0, 0, kh, kw, sh, sw, ph, pw, oh, ow, want_dx)
    gpu.col2im(dev(cols), 0, 0, kh, kw, sh, sw, ph, pw, oh, ow, got_dx)
    np.testing.assert_allclose(host(got_dx), want_dx, rtol=1e-6, atol=1e-6)

    y, b = rng.standard_normal((5, 2 * 30)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    out, got_out = np.zeros((2, 5, 30), np.float32), dev(np.zeros((2, 5, 30), np.float32))   # 300 elements
    cpu.gemm_out_to_nchw(y, b, True, 0, 0, out)
    gpu.gemm_out_to_nchw(dev(y), dev(b), True, 0, 0, got_out)
    np.testing.assert_array_equal(host(got_out), out)
    g = rng.standard_normal(out.shape).astype(np.float32)
    packed, got_packed = np.empty_like(y), dev(np.empty_like(y))
    cpu.nchw_to_gemm(g, out, cpu.GUIDED, 0, 0, packed)
    gpu.nchw_to_gemm(dev(g), dev(out), gpu.GUIDED, 0, 0, got_packed)
    np.testing.assert_array_equal(host(got_packed), packed)

    xp = distinct(rng, (2, 4, 14, 13), dtype=np.float32)                   # 1456 elements in, 288 out
    pooled = np.empty((2, 4, 6, 6), np.float32)                            # 3x3 windows, stride 2: overlapping
    switches = np.empty((2, 4, 6, 6), np.int32)
    cpu.maxpool_forward(xp, 3, 3, 2, 2, 0, 0, pooled, switches)
    got_p, got_s = dev(np.empty_like(pooled)), dev(np.empty_like(switches))
    gpu.maxpool_forward(dev(xp), 3, 3, 2, 2, 0, 0, got_p, got_s)
    np.testing.assert_array_equal(host(got_p), pooled)
    np.testing.assert_array_equal(host(got_s), switches)
    gp = rng.standard_normal(pooled.shape).astype(np.float32)
    want_dxp, got_dxp = np.zeros_like(xp), dev(np.zeros_like(xp))
    cpu.maxpool_backward(gp, switches, 3, 3, 2, 2, 0, 0, want_dxp)
    gpu.maxpool_backward(dev(gp), dev(switches), 3, 3, 2, 2, 0, 0, got_dxp)
    np.testing.assert_allclose(host(got_dxp), want_dxp, rtol=1e-6, atol=1e-7)

    v, gv = rng.standard_normal(3 * T + 7).astype(np.float32), rng.standard_normal(3 * T + 7).astype(np.float32)
    r, got_r = np.empty_like(v), dev(np.empty_like(v))
    cpu.relu_forward(v, r)
    gpu.relu_forward(dev(v), got_r)
    np.testing.assert_array_equal(host(got_r), r)
    back, got_back = np.empty_like(v), dev(np.empty_like(v))
    cpu.relu_backward(r, gv, cpu.GUIDED, back)
    gpu.relu_backward(dev(r), dev(gv), gpu.GUIDED, got_back)
    np.testing.assert_array_equal(host(got_back), back)
    assert min(cols.size, x.size, out.size, pooled.size, v.size) > T    # each launch had several blocks


def test_gpu_launch_refuses_more_threads_than_32_bit_indices_allow():
    with pytest.raises(ValueError, match="32-bit"):
        gpu._launch(gpu._relu_forward, gpu.MAX_THREADS, np.empty(1, np.float32), np.empty(1, np.float32))
