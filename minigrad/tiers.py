"""Which implementation of the heavy ops runs: the simple tier (simple.py) or the fast one (fast/).

    MINIGRAD_OPS=simple python scripts/demo.py      # read at import; default: fast
    with mg.use_ops("simple"): ...                  # inside a block
    mg.current_ops()                                # 'simple' or 'fast'
    mg.set_threads(2)                               # default: MINIGRAD_THREADS, or the free cores

Both implement conv2d (with its fused arguments), linear, max_pool2d, relu, batch_norm and
global_avg_pool2d with the same Function interface and are tested equal; heavy_ops.py checks the
arguments and hands over to the tier in force (``in_force()``). This is the one module that imports
the fast tier, and only when it is first used, so that the simple tier never loads Numba.

It also sizes the engine's threads, on first use, as every script does (``default_threads``), so that
the library imported in a notebook runs as fast as the scripts.
"""
import contextlib
import os
import time

from . import backend

TIERS = ("simple", "fast")


def _checked(name, where):
    if name not in TIERS:
        raise ValueError(f"{where}: unknown ops tier {name!r}; choose one of {', '.join(TIERS)}")
    return name


_tier = _checked(os.environ.get("MINIGRAD_OPS", "fast"), "MINIGRAD_OPS")


def current_ops():
    """The name of the tier in force: 'simple' or 'fast'."""
    return _tier


@contextlib.contextmanager
def use_ops(name):
    """Run the heavy ops on tier ``name`` ('simple' or 'fast') inside the block."""
    global _tier
    previous, _tier = _tier, _checked(name, "use_ops")
    _apply_threads()
    try:
        yield
    finally:
        _tier = previous
        _apply_threads()


def in_force():
    """The module of the tier in force: ``minigrad.simple`` or ``minigrad.fast.ops``; the first call
    sizes the threads (``default_threads``) unless ``set_threads`` did."""
    if _threads is None:
        _size_once()
    if _tier == "simple":
        from . import simple
        return simple
    from .fast import ops
    return ops


# ---- threads -------------------------------------------------------------------------------------
_threads = None       # set_threads's n, or default_threads() on first use; applied to each tier in force


def set_threads(n):
    """Run the engine on ``n`` threads, on the tier in force now and on any other put in force later
    (``use_ops``): the fast tier's own, Numba's and, on one thread, the BLAS's (fast/parallel.py: its
    threads split the GEMMs); the simple tier's only threads, the BLAS's (so that it never loads Numba).
    Without a call, the first heavy op (or ``threads()``) sets ``default_threads()``."""
    global _threads
    if n < 1:
        raise ValueError(f"threads must be at least 1, not {n}")
    _threads = n
    _apply_threads()


def _apply_threads():
    if _threads is None:
        return
    if _tier == "fast":
        from .fast import parallel
        parallel.resize(_threads)
    else:
        import threadpoolctl
        threadpoolctl.threadpool_limits(_threads, user_api="blas")


def threads():
    """How many threads the tier in force runs on: the fast tier's own, or the simple tier's BLAS's."""
    _size_once()
    if _tier == "fast":
        from .fast import parallel
        return parallel.threads()
    import threadpoolctl
    return max((p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"), default=1)


def _size_once():
    if _threads is None:
        set_threads(default_threads())


def default_threads(environ=None):
    """The engine's threads unless ``set_threads`` says otherwise: MINIGRAD_THREADS when set, else the
    cores this process may run on less those other processes keep busy now (``busy_cores``), at least 1.

    The fast tier hands its own threads whole chunks, but Numba's parallel loops split each call into
    equal parts and wait for the last: a part that shares its core with a busy process runs at half
    speed or less while the others wait; on an idle machine more threads are faster."""
    value = (os.environ if environ is None else environ).get("MINIGRAD_THREADS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"MINIGRAD_THREADS must be a whole number of at least 1, not {value!r}")
        return int(value)
    cores = _cores()
    return max(1, min(cores, round(cores - busy_cores())))


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def busy_cores(seconds=0.2):
    """How many of the cores this process may run on other processes keep busy, on average over
    ``seconds`` (this process sleeps meanwhile): the machine's busy share times those cores (a process
    pinned to 4 of 64 cores of a half-busy machine sees 2); 0 where /proc/stat is missing. Niced
    processes, which yield to ours, do not count."""
    before = _busy_ticks()
    time.sleep(seconds)
    after = _busy_ticks()
    if before is None or after is None or after[1] == before[1]:
        return 0.0
    return _cores() * (after[0] - before[0]) / (after[1] - before[1])


def _busy_ticks():
    """(ticks that non-niced processes used, all ticks) over all cores since boot; None without /proc/stat."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    return user + system + irq + softirq + steal, user + nice + system + idle + iowait + irq + softirq + steal


# ---- the GPU -------------------------------------------------------------------------------------
def gpu_problem():
    """Why the tier in force cannot run on a GPU here, in one line; None when it can: CuPy, a CUDA
    device and cuBLAS (backend.gpu_problem), and on the fast tier its numba.cuda kernels
    (fast/kernels.py; the simple tier needs no Numba)."""
    problem = backend.gpu_problem()
    if problem or _tier == "simple":
        return problem
    from .fast import kernels
    return kernels.gpu_problem()


def gpu_available():
    """True when the tier in force runs on a GPU here (``gpu_problem``)."""
    return gpu_problem() is None


def check_device(device):
    """Validate a device name; raise a one-line error when the tier in force cannot use the GPU."""
    backend.check_device(device)
    if device == "gpu" and gpu_problem():
        raise RuntimeError(f"--device gpu: no usable GPU: {gpu_problem()}")
    return device
