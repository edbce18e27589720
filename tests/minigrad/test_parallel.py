"""minigrad/fast/parallel.py, the engine's own threads: every item runs once, on several threads at once,
with the BLAS on one thread; errors come back; the split GEMM equals the whole one; and the fast
convolution, its chunks spread over 1 to 3 threads (bands of one image included), equals the simple
tier in float64."""
import threading

import numpy as np
import pytest

import minigrad as mg
import numba
import threadpoolctl

from minigrad import functional as F, tiers
from minigrad.fast import by_channels, conv, parallel, pointwise
from minigrad.relu_rules import RULES

from .test_tiers import TOL, on_both_tiers


@pytest.fixture
def threads(request):
    """Run the test with the engine on request.param threads (``mg.set_threads``, which ``use_ops``
    applies again on entering a tier); restored afterwards."""
    before = mg.threads()                                                  # sized, as by a first heavy op
    mg.set_threads(request.param)
    assert parallel.threads() == request.param
    yield request.param
    mg.set_threads(before)


@pytest.mark.parametrize("threads", [2, 3], indirect=True)
def test_items_run_once_each_on_threads_side_by_side_with_one_blas_thread(threads):
    """Each of the first ``threads`` items waits for the others at a barrier: this passes only if
    they run at the same time, on as many threads."""
    barrier, seen, lock = threading.Barrier(threads), [], threading.Lock()
    blas = parallel._numpy_blas()
    limits = threadpoolctl.threadpool_limits(2, user_api="blas")     # for_each holds it to 1 meanwhile

    def work(item):
        if item < threads:
            barrier.wait(timeout=20)
        with lock:
            seen.append((item, threading.get_ident(), [lib.num_threads for lib in blas]))
    try:
        parallel.for_each(work, range(10))
    finally:
        limits.restore_original_limits()
    assert sorted(item for item, _, _ in seen) == list(range(10))
    assert len({ident for _, ident, _ in seen}) == threads
    assert all(counts == [1] * len(blas) for _, _, counts in seen)


@pytest.mark.parametrize("threads", [3], indirect=True)
def test_the_first_error_is_raised_and_the_blas_threads_restored(threads):
    blas = parallel._numpy_blas()

    def work(item):
        if item == 4:
            raise KeyError("item 4")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = [lib.num_threads for lib in blas]
        with pytest.raises(KeyError, match="item 4"):
            parallel.for_each(work, range(8))
        assert [lib.num_threads for lib in blas] == before


@pytest.mark.parametrize("threads", [1, 2, 3], indirect=True)
@pytest.mark.parametrize("shape", [(4, 300, 7), (2, 50, 600), (1, 40, 900)])
def test_split_matmul_equals_the_whole(rng, monkeypatch, threads, shape):
    monkeypatch.setattr(parallel, "MATMUL_SPLIT_MIN", 0)
    M, K, N = shape
    a, b = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    np.testing.assert_allclose(parallel.matmul(a, b), a @ b, rtol=1e-13, atol=1e-13)
    a32 = a.astype(np.float32)
    assert parallel.matmul(a32, b.T.astype(np.float32).T).dtype == np.float32


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
@pytest.mark.parametrize("n_images,budget", [(1, 10**9), (4, 10**9), (2, 200), (3, 5000)])
def test_chunks_cover_every_row_once_in_enough_bands(parts, n_images, budget):
    k, oh, ow = 4, 9, 5
    chunks = conv._chunks(n_images, k, oh, ow, budget, parts, min_rows=3)
    covered = np.zeros((n_images, oh), int)
    for n0, n1, oy0, oy1 in chunks:
        covered[n0:n1, oy0:oy1] += 1
        if oy1 - oy0 < oh and oy1 < oh:                                 # a band, not the last of its image
            assert oy1 - oy0 >= 3
    assert (covered == 1).all()
    assert len(chunks) >= min(parts, n_images * 3)                    # 9 rows: up to 3 bands of 3 rows


@pytest.mark.parametrize("threads", [1, 2, 3], indirect=True)
@pytest.mark.parametrize("budget", [10**9, 400])
@pytest.mark.parametrize("winograd", [False, True])
@pytest.mark.parametrize("n_images", [1, 3])
def test_convolution_on_threads_equals_the_simple_tier(rng, monkeypatch, threads, budget, winograd, n_images):
    """Float64, to 1e-12: forward, and dx, dW, db (training: im2col, kept or remade patch matrices) or
    dx alone (frozen weights: Winograd when on); bands of one image (budget 400) run their scatter
    into shared rows in two turns."""
    monkeypatch.setattr(conv, "COLS_BUDGET", budget)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 1 if winograd else 0)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 0)
    x, w, b = rng.standard_normal((n_images, 3, 13, 11)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    g = rng.standard_normal((n_images, 4, 13, 11))
    for train in (True, False):
        def run():
            xt = mg.Tensor(x, requires_grad=True)
            wt, bt = mg.Tensor(w, requires_grad=train), mg.Tensor(b, requires_grad=train)
            out = F.conv2d(xt, wt, bt, 1, 1, relu=True)
            out.backward(g)
            return out.data, xt.grad, wt.grad, bt.grad
        results = on_both_tiers(run)
        for a, c in zip(results["simple"], results["fast"]):
            assert (a is None) == (c is None)
            if a is not None:
                np.testing.assert_allclose(c, a, **TOL)


@pytest.mark.parametrize("threads", [2], indirect=True)
def test_a_forked_child_makes_its_own_pool(threads):
    """The pool's threads do not survive fork: a child that used the parent's pool would wait forever."""
    import multiprocessing
    parallel.for_each(lambda item: None, range(4))                      # the parent's pool exists
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply_async(_sum_squares_on_threads).get(timeout=60) == sum(i * i for i in range(10))


def _sum_squares_on_threads():
    out = [0] * 10

    def work(i):
        out[i] = i * i
    parallel.for_each(work, range(10))
    return sum(out)


@pytest.mark.parametrize("threads", [1, 2, 3], indirect=True)
@pytest.mark.parametrize("block", [2**17, 20])
@pytest.mark.parametrize("stride", [1, 2])
def test_pointwise_blocks_and_residual_on_threads_equal_the_simple_tier(rng, monkeypatch, threads, block, stride):
    """Float64, to 1e-12: relu(conv1x1(x) + r), the 1x1 convolution's GEMM written in blocks of output
    rows straight into the output (small ``POINTWISE_BLOCK``: blocks of a few rows) with bias,
    residual and ReLU applied to each block; forward and dx, dr, and dW, db when training."""
    monkeypatch.setattr(pointwise, "POINTWISE_BLOCK", block)
    monkeypatch.setattr(pointwise, "POINTWISE_MIN_ROWS", 1)
    assert len(pointwise.blocks(2, 7, 72, 1)) == (2 if block > 2**10 else 14)
    x, w, b = rng.standard_normal((2, 5, 9, 8)), rng.standard_normal((7, 5, 1, 1)), rng.standard_normal(7)
    oh, ow = -(-9 // stride), -(-8 // stride)
    r, g = rng.standard_normal((2, 7, oh, ow)), rng.standard_normal((2, 7, oh, ow))
    for train in (True, False):
        def run():
            xt, rt = mg.Tensor(x, requires_grad=True), mg.Tensor(r, requires_grad=True)
            wt, bt = mg.Tensor(w, requires_grad=train), mg.Tensor(b, requires_grad=train)
            out = F.conv2d(xt, wt, bt, stride, residual=rt, relu=True)
            if mg.current_ops() == "fast":
                assert out._op is conv.Conv2d and len(out._inputs) == 4
            out.backward(g)
            return out.data, xt.grad, rt.grad, wt.grad, bt.grad
        results = on_both_tiers(run)
        for a, c in zip(results["simple"], results["fast"]):
            assert (a is None) == (c is None)
            if a is not None:
                np.testing.assert_allclose(c, a, **TOL)


@pytest.mark.parametrize("threads", [2, 3], indirect=True)
@pytest.mark.parametrize("rule", RULES)
def test_an_input_gradient_in_too_few_bands_splits_the_channels(rng, monkeypatch, threads, rule):
    """One image of 14x14 whose patch matrix takes a band per thread (2 bands of 7 rows on 2 threads,
    3 of 5 and 4 on 3: the odd bands, which share rows with the even ones, would run after them on
    fewer threads than there are): dx goes by input channels between the threads instead
    (``by_channels.input_gradient``), under each ReLU rule fused into the packing; equal to the simple tier in
    float64 (1e-12), and in float32 to the one-chunk dx on one thread within 1e-6 of its largest value
    (col2im adds in the same order; only the BLAS's blocking of the split GEMM may differ)."""
    monkeypatch.setattr(conv, "IM2COL_BUDGET", 9 * 8 * 14 * 8)             # at most 8 rows a band
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 0)
    calls = []
    original = by_channels.input_gradient
    monkeypatch.setattr(by_channels, "input_gradient", lambda *a: calls.append(1) or original(*a))
    x, w, b = rng.standard_normal((1, 8, 14, 14)), rng.standard_normal((6, 8, 3, 3)) / 8, rng.standard_normal(6)
    g = rng.standard_normal((1, 6, 14, 14))

    def run(dtype=np.float64):
        xt = mg.Tensor(x.astype(dtype), requires_grad=True)
        with mg.relu_rule(rule):
            F.conv2d(xt, mg.Tensor(w.astype(dtype)), mg.Tensor(b.astype(dtype)), 1, 1, relu=True).backward(g.astype(dtype))
        return xt.grad
    results = on_both_tiers(run)
    np.testing.assert_allclose(results["fast"], results["simple"], **TOL)
    assert calls
    with mg.use_ops("fast"):
        split = run(np.float32)
        monkeypatch.setattr(conv, "IM2COL_BUDGET", 2**30)
        mg.set_threads(1)                                                  # one whole-image chunk
        whole = run(np.float32)
    assert len(calls) == 2
    assert np.abs(split - whole).max() <= 1e-6 * np.abs(whole).max()


@pytest.mark.parametrize("threads", [2, 3], indirect=True)
@pytest.mark.parametrize("n_images", [1, 2])
@pytest.mark.parametrize("rule", [None] + list(RULES))
@pytest.mark.parametrize("scaled", [False, True])
def test_more_output_channels_than_pixels_split_by_channels(rng, monkeypatch, threads, n_images, rule, scaled):
    """Images of 4x3 pixels into 16 channels (as VGG16's conv5 at 14x14: the weights outweigh an
    image's patch matrix), fewer images than threads: the forward splits the output channels and dx
    the input channels between the threads (by_channels.py: ``forward``, ``input_gradient``), image by
    image, with a folded scale or without, without a ReLU or with one under each rule; both equal the
    simple tier in float64, to 1e-12. With as many images as threads the chunks go as before."""
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 0)
    calls = []
    for name in ("forward", "input_gradient"):
        monkeypatch.setattr(by_channels, name,
                            (lambda f, name: lambda *a: calls.append(name) or f(*a))(getattr(by_channels, name), name))
    x, w, b = (rng.standard_normal((n_images, 5, 4, 3)), rng.standard_normal((16, 5, 3, 3)) / 6,
               rng.standard_normal(16))
    scale = rng.uniform(0.5, 2, 16) if scaled else None
    g = rng.standard_normal((n_images, 16, 4, 3))

    def run():
        xt = mg.Tensor(x, requires_grad=True)
        with mg.relu_rule(rule or "gradient"):
            out = F.conv2d(xt, mg.Tensor(w), mg.Tensor(b), 1, 1, relu=rule is not None,
                           scale=None if scale is None else mg.Tensor(scale))
            out.backward(g)
        return out.data, xt.grad
    results = on_both_tiers(run)
    for a, c in zip(results["simple"], results["fast"]):
        np.testing.assert_allclose(c, a, **TOL)
    assert calls == (["forward", "input_gradient"] if n_images < threads else [])


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
def test_training_goes_in_the_smaller_chunks_of_its_own_budget(rng, monkeypatch, threads):
    """When the weights need a gradient, the chunks follow ``TRAIN_COLS_BUDGET`` (smaller than
    ``COLS_BUDGET``; here small enough for bands of one image); forward, dx, dW, db equal the simple
    tier in float64, to 1e-12. Float32 error of this path against float64: measured 1.2e-7 to 2.8e-7
    of the largest value (forward and each gradient, 16 channels at 32x32, batch 4); bound 5e-6."""
    monkeypatch.setattr(conv, "TRAIN_COLS_BUDGET", 3000)
    x, w, b = rng.standard_normal((4, 16, 32, 32)), rng.standard_normal((16, 16, 3, 3)) / 12, rng.standard_normal(16)
    g = rng.standard_normal((4, 16, 32, 32))

    def run(dtype=np.float64):
        xt = mg.Tensor(x.astype(dtype), requires_grad=True)
        wt, bt = mg.Tensor(w.astype(dtype), requires_grad=True), mg.Tensor(b.astype(dtype), requires_grad=True)
        out = F.conv2d(xt, wt, bt, 1, 1, relu=True)
        out.backward(g.astype(dtype))
        if mg.current_ops() == "fast":
            assert len(out._ctx.chunks) > 4 * 2                          # bands of each image
        return out.data, xt.grad, wt.grad, bt.grad
    results = on_both_tiers(run)
    for a, c in zip(results["simple"], results["fast"]):
        np.testing.assert_allclose(c, a, **TOL)
    with mg.use_ops("fast"):                            # the fast path in float32, whatever the default
        f32 = run(np.float32)
    errs = [np.abs(c - a).max() / np.abs(a).max() for a, c in zip(results["simple"], f32)]
    assert max(errs) <= 5e-6, errs


def test_set_threads_holds_on_each_tier(monkeypatch):
    """``mg.set_threads(n)`` on the fast tier: the engine's own threads and Numba's get n, the BLAS one
    (the engine's threads split the GEMMs: fast/parallel.py); and the same n holds on whichever tier is
    put in force later: on the simple tier the BLAS gets n (its only threads), back on the fast tier 1."""
    from minigrad import tiers

    def blas():
        return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}
    before_blas, before_numba, before_own = max(blas() or {1}), numba.get_num_threads(), parallel.threads()
    monkeypatch.setattr(tiers, "_threads", None)
    try:
        with mg.use_ops("fast"):
            for n in (1, 2):
                mg.set_threads(n)
                assert blas() == {1} and mg.threads() == parallel.threads() == n
                assert numba.get_num_threads() == min(n, numba.config.NUMBA_NUM_THREADS)
                with mg.use_ops("simple"):
                    assert blas() == {n} and mg.threads() == n
                assert blas() == {1}
        with mg.use_ops("simple"):
            mg.set_threads(1)
            assert blas() == {1}
        assert parallel.threads() == 1 if mg.current_ops() == "fast" else True
        with pytest.raises(ValueError, match="threads must be at least 1, not 0"):
            mg.set_threads(0)
    finally:
        tiers._threads = None
        threadpoolctl.threadpool_limits(before_blas, user_api="blas")
        numba.set_num_threads(before_numba)
        parallel.resize(before_own)
