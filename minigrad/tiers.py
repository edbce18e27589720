"""Which implementation of the heavy ops runs: the simple tier (simple.py) or the fast one (fast/).

    MINIGRAD_OPS=simple python scripts/demo.py      # read at import; default: fast
    with mg.use_ops("simple"): ...                  # inside a block
    mg.current_ops()                                # 'simple' or 'fast'

Both implement conv2d (with its fused arguments), linear, max_pool2d, relu, batch_norm and
global_avg_pool2d with the same Function interface and are tested equal; heavy_ops.py checks the
arguments and hands over to the tier in force (``in_force()``). This is the one module that imports
the fast tier, and only when it is first used, so that the simple tier never loads Numba.
"""
import contextlib
import os

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
    try:
        yield
    finally:
        _tier = previous


def in_force():
    """The module of the tier in force: ``minigrad.simple`` or ``minigrad.fast.ops``."""
    if _tier == "simple":
        from . import simple
        return simple
    from .fast import ops
    return ops


def set_threads(n):
    """Run the tier in force on ``n`` threads: the fast tier's own, Numba's and the BLAS's
    (fast/parallel.py); on the simple tier, whose only threads are the BLAS's, those (so that it still
    never loads Numba)."""
    if _tier == "fast":
        from .fast import ops
        ops.set_threads(n)
    elif n < 1:
        raise ValueError(f"threads must be at least 1, not {n}")
    else:
        import threadpoolctl
        threadpoolctl.threadpool_limits(n, user_api="blas")
