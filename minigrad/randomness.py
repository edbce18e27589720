"""minigrad's random numbers: one seedable generator (weight initialisation, dropout masks), and on a
GPU a generator per device seeded from it, so that a mask is drawn where it is used."""
import numpy as np

from .tensor import Function


class Dropout(Function):
    """Inverted dropout: keep each unit with probability 1 - p and scale it by 1 / (1 - p)."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0], None


_rng = np.random.default_rng()
_gpu_rngs = {}                        # GPU id -> CuPy generator, seeded from _rng


def manual_seed(seed):
    """Seed minigrad's random numbers (dropout masks, initialisation in nn)."""
    global _rng
    _rng = np.random.default_rng(seed)
    _gpu_rngs.clear()


def _rng_on(xp):
    """A generator that draws on xp's device (no mask crosses from the host)."""
    if xp is np:
        return _rng
    device = xp.cuda.runtime.getDevice()
    if device not in _gpu_rngs:
        _gpu_rngs[device] = xp.random.default_rng(int(_rng.integers(2**63)))
    return _gpu_rngs[device]


def rng():
    return _rng


def dropout(x, p=0.5, training=True):
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    xp = x.xp
    keep = _rng_on(xp).random(x.shape, dtype=np.float32) >= p
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(x, mask)
