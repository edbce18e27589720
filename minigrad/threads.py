"""Threads: how many the engine uses (its own, parallel.py, and Numba's for pooling and ReLU; the BLAS one).

    import minigrad as mg
    mg.set_threads(1)            # both pools, at any time
    mg.threads.auto_threads()    # the cores no other process keeps busy now (at least 1)

Numba's parallel loops split each call into equal parts, one per thread, and wait for the last; the
engine's own pool hands out whole chunks (parallel.py). When another process keeps one of the cores
busy, an equal part that shares its core runs at half speed or less while the others wait (OpenBLAS's
threads spin between calls too). Measured on 2 cores with a busy loop on one: 100 class-model
steps of the shapes network took 30 s with 2 threads and 1.5 s with 1; a VGG16 forward 2.5 s against
0.4 s. On an idle machine 2 threads are faster. So the scripts choose at start (``auto_threads``):
the cores this process may use, less those other processes are keeping busy (sampled from
/proc/stat; niced processes, which yield to us, do not count). ``MINIGRAD_THREADS=n`` sets the
number instead, for every script.

Results are bit-for-bit repeatable for a given number of threads, not across numbers: a convolution
of one image is cut into one band of rows per thread, and the rows two bands share receive their
input-gradient contributions in another order. On the shipped shapes network a gradient differed by
at most 7.5e-9 between 1 and 2 threads (float32; 0 between two runs of either). Long chaotic runs,
such as 512 steps of a class model's ascent, grow such differences into other pictures; set
``MINIGRAD_THREADS`` to repeat one exactly on another machine or under another load.
"""
import os
import time


def available_cores():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _busy_ticks():
    """(ticks that non-niced processes used, all ticks) over all cores since boot; None without /proc/stat."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    return user + system + irq + softirq + steal, user + nice + system + idle + iowait + irq + softirq + steal


def busy_cores(seconds=0.2):
    """How many cores other processes keep busy, on average over ``seconds`` (this process sleeps
    meanwhile); 0 where /proc/stat is missing."""
    before = _busy_ticks()
    time.sleep(seconds)
    after = _busy_ticks()
    if before is None or after is None or after[1] == before[1]:
        return 0.0
    return (os.cpu_count() or 1) * (after[0] - before[0]) / (after[1] - before[1])


def auto_threads(environ=None):
    """MINIGRAD_THREADS when set, else the cores this process may use less the busy ones, at least 1."""
    value = (os.environ if environ is None else environ).get("MINIGRAD_THREADS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"MINIGRAD_THREADS must be a whole number of at least 1, not {value!r}")
        return int(value)
    return max(1, min(available_cores(), round(available_cores() - busy_cores())))


def set_threads(n):
    """Run the engine on ``n`` threads: its own (parallel.py: the convolutions' chunks, the large
    GEMMs) and Numba's (pooling, ReLU; at most the NUMBA_NUM_THREADS it started with); the BLAS gets
    one thread, since the engine's threads split its GEMMs."""
    import numba
    import threadpoolctl

    from .fast import cpu_kernels  # noqa: F401  (it picks Numba's threading layer, before Numba's threads start:
    #                                  any Numba thread call launches them, else on the OpenMP layer, whose spinning
    #                                  threads made a VGG16 forward 2x slower)
    from . import parallel
    parallel.set_threads(n)
    if any(p["num_threads"] != 1 for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"):
        threadpoolctl.threadpool_limits(1, user_api="blas")                 # our threads split the GEMMs (parallel.py)
    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
