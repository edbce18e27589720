"""Shared test helpers.

Without a CUDA GPU the numba.cuda kernels run under Numba's CUDA simulator, which must be switched
on before Numba is first imported: hence this check at the very top of the test session.
"""
import os


def _cuda_gpu_present():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _cuda_gpu_present():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def away_from_zero(rng, shape, margin=0.1, dtype=np.float64):
    """Random values with |v| >= margin: no input sits near a ReLU kink."""
    v = rng.standard_normal(shape)
    v = np.sign(v) * (np.abs(v) + margin)
    return v.astype(dtype)


def distinct(rng, shape, gap=0.05, dtype=np.float64):
    """Values that are pairwise at least ``gap`` apart: no ties (or near-ties) in a pooling window,
    so that a finite-difference step never changes which element is the maximum."""
    n = int(np.prod(shape))
    v = (rng.permutation(n) - n / 2) * gap
    return v.reshape(shape).astype(dtype)
