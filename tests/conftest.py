"""Shared test helpers."""
import numpy as np
import pytest


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
