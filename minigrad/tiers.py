"""Which implementation of the heavy ops runs: the simple tier (simple.py) or the fast one (fast/).

    MINIGRAD_OPS=simple python scripts/demo.py      # read at import; default: fast
    with mg.use_ops("simple"): ...                  # inside a block
    mg.current_ops()                                # 'simple' or 'fast'

Both implement conv2d, max_pool2d, relu, batch_norm and global_avg_pool2d with the same Function
interface and are tested equal; heavy_ops.py checks the arguments and hands over to the tier in force
(``in_force()``).
"""
import contextlib
import importlib
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
    """The module of the tier in force: ``minigrad.simple`` or ``minigrad.fast`` (imported on first use,
    so that the simple tier never loads Numba)."""
    return importlib.import_module("minigrad." + _tier)
