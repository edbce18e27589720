"""The engine's own threads: a convolution's chunks, and the blocks of a large GEMM, side by side.

    for_each(work, items)      # work(item) for every item, on the caller's thread and the pool's
    matmul(a, b)               # a @ b, its rows or columns split between the threads
    resize(n)                  # this pool, Numba's threads and the BLAS's (minigrad.set_threads)
    parts(xp)                  # how many chunks to cut work into at least: the threads (1 on a GPU)

A convolution goes a chunk at a time (conv.py: a few images, or a band of rows of one image), and each
chunk is a few passes: im2col, a GEMM, the unpacking (or Winograd's transform, 16 or 36 GEMMs, transform).
Each thread takes a whole chunk and runs all its passes alone (Numba kernels compiled without threads,
the BLAS on one thread), then takes the next: no pass waits for another thread (as it would if each
pass were split over the threads, OpenBLAS's and Numba's in turn), no thread spins between passes, a
chunk's arrays stay in its core's cache, and when another process slows one core the other thread
takes more chunks. The BLAS stays on one thread throughout (``resize``); the other large GEMMs
(the fully connected layers') are split here (``matmul``). The pool's threads are started once and
sleep between calls. Pooling, the ReLU and Winograd's filter transform run on Numba's own parallel
loops, which split each call into equal parts, one per thread.

``work`` must write only what no other item writes (conv.py gives each thread its own gradient sums)
and may use ``memory.scratch`` freely (its buffers are per thread).

Results are bit-for-bit repeatable for a given number of threads, not across numbers: a convolution of
one image is cut into one band of rows per thread, and the rows two bands share receive their
input-gradient contributions in another order (docs/reproducibility.md).
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def available_cores():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_threads = available_cores()                   # as OpenBLAS and Numba would; resize changes it
_pool = None                                   # ThreadPoolExecutor of _threads - 1 threads, made on first use
_blas = None                                   # threadpoolctl's controllers of NumPy's BLAS, found on first use
_DONE = object()

#: GEMMs of fewer multiply-adds than this run on the calling thread alone (splitting costs ~50 us)
MATMUL_SPLIT_MIN = 2**22


def _forget_pool():
    """In a child made by fork the pool's threads do not exist: make a new pool on first use."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def resize(n):
    """Run the engine on ``n`` threads (``minigrad.set_threads``): its own (``for_each``, ``matmul``: the
    convolutions' chunks, the large GEMMs) and Numba's (pooling, ReLU; at most the NUMBA_NUM_THREADS it
    started with); the BLAS gets one thread, since the engine's threads split its GEMMs."""
    global _threads, _pool
    if n < 1:
        raise ValueError(f"threads must be at least 1, not {n}")
    import numba
    import threadpoolctl

    from . import cpu_kernels  # noqa: F401  (it picks Numba's threading layer before Numba's threads start:
    #                             any Numba thread call launches them, else on the OpenMP layer, whose spinning
    #                             threads made a VGG16 forward 2x slower)
    if n != _threads and _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _threads = n
    if any(p["num_threads"] != 1 for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"):
        threadpoolctl.threadpool_limits(1, user_api="blas")
    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


def threads():
    """How many threads ``for_each`` uses."""
    return _threads


def parts(xp):
    """How many chunks to cut work into at least: one per thread on the CPU, 1 on a GPU (CuPy)."""
    return threads() if xp is np else 1


def _numpy_blas():
    """threadpoolctl's controllers of the BLAS that NumPy's GEMMs call (a few microseconds to change)."""
    global _blas
    if _blas is None:
        import threadpoolctl
        blas = [lib for lib in threadpoolctl.ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        _blas = [lib for lib in blas if "numpy" in lib.filepath] or blas
    return _blas


def for_each(work, items, xp=np):
    """``work(item)`` for every item; returns when all are done. With n threads, the caller and n - 1
    pool threads each take the next item until none is left, the BLAS held to one thread meanwhile
    (where ``resize`` has not done so already: else each GEMM would start threads of its
    own on the same cores). The first exception is raised once every thread has stopped. For arrays
    on a GPU (``xp`` CuPy) the items run in turn."""
    items = list(items)
    n = min(_threads, len(items)) if xp is np else 1
    if n <= 1:
        for item in items:
            work(item)
        return
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_threads - 1, thread_name_prefix="minigrad")
    queue, lock, failed = iter(items), threading.Lock(), []

    def take_and_run():
        while not failed:
            with lock:
                item = next(queue, _DONE)
            if item is _DONE:
                return
            try:
                work(item)
            except BaseException as e:           # stop the others; raised by the caller below
                failed.append(e)
                raise
    blas = _numpy_blas()
    saved = [lib.num_threads for lib in blas]
    for lib, k in zip(blas, saved):
        if k != 1:
            lib.set_num_threads(1)
    try:
        helpers = [_pool.submit(take_and_run) for _ in range(n - 1)]
        try:
            take_and_run()
        finally:
            for h in helpers:
                h.exception()                    # wait for each; its exception, if any, is in failed
    finally:
        for lib, k in zip(blas, saved):
            if k != 1:
                lib.set_num_threads(k)
    if failed:
        raise failed[0]


def matmul(a, b):
    """a (M, K) @ b (K, N), the larger of M and N cut into one block per thread (NumPy; CuPy: one call)."""
    xp = np if isinstance(a, np.ndarray) else None
    M, K = a.shape
    N = b.shape[1]
    if xp is None or _threads == 1 or M * N * K < MATMUL_SPLIT_MIN:
        return a @ b
    out = np.empty((M, N), np.result_type(a, b))
    rows = M >= N
    size = -(-(M if rows else N) // _threads)
    blocks = [slice(i, i + size) for i in range(0, M if rows else N, size)]

    def block(s):
        if rows:
            np.matmul(a[s], b, out=out[s])
        else:
            np.matmul(a, b[:, s], out=out[:, s])
    for_each(block, blocks)
    return out
