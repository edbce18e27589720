"""Misuse names the op and the shapes."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F


def t(*shape, dtype=np.float32):
    return mg.Tensor(np.zeros(shape, dtype))


@pytest.mark.parametrize("call,message", [
    (lambda: F.conv2d(t(1, 4, 8, 8), t(2, 3, 3, 3)), r"conv2d: input has 4 channels, weight expects 3"),
    (lambda: F.conv2d(t(4, 8, 8), t(2, 4, 3, 3)), r"conv2d: input must be 4-D \(N, C, H, W\), got shape \(4, 8, 8\)"),
    (lambda: F.conv2d(t(1, 3, 2, 2), t(2, 3, 5, 5)), r"conv2d: kernel \(5, 5\) is larger than the padded input \(2, 2\)"),
    (lambda: F.conv2d(t(1, 3, 8, 8), t(2, 3, 3, 3), t(3)), r"conv2d: bias has shape \(3,\), expected \(2,\)"),
    (lambda: F.conv2d(t(1, 3, 8, 8), t(2, 3, 3, 3), stride=0), r"conv2d: stride must be >= 1"),
    (lambda: F.conv2d(t(1, 3, 8, 8), t(2, 3, 3, 3, dtype=np.float64)), r"conv2d: mixed dtypes"),
    (lambda: F.linear(t(2, 5), t(3, 4)), r"linear: input has 5 features, weight \(3, 4\) expects 4"),
    (lambda: F.linear(t(2, 3, 5), t(3, 5)), r"linear: input must be 2-D"),
    (lambda: F.max_pool2d(t(1, 1, 3, 3), 4), r"max_pool2d: window \(4, 4\) is larger than the input \(3, 3\)"),
    (lambda: F.max_pool2d(t(3, 3), 2), r"max_pool2d: input must be 4-D"),
    (lambda: t(2, 3) @ t(4, 2), r"matmul: shapes \(2, 3\) and \(4, 2\) do not chain"),
    (lambda: F.cross_entropy(t(3, 4), np.array([0, 1, 4])), r"cross_entropy: labels must be integers in \[0, 4\)"),
    (lambda: F.dropout(t(3), 1.0), r"dropout: p must be in \[0, 1\)"),
])
def test_misuse_names_op_and_shapes(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
