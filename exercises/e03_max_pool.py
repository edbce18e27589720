"""Exercise 3: max pooling with switches.

    out[n, c, u, v] = max over i, j < k of x[n, c, u*s + i, v*s + j]

The switch of each output is where its maximum was; backwards, each output's gradient goes to that one
input element, and an element that is the maximum of several (overlapping) windows receives the sum.
Zeiler & Fergus' deconvnet "unpools" with the same switches: that is why its reconstructions keep
the image's structure (paper Sec. 4).

Arguments: x (N, C, H, W) float64, kernel k and stride s ints, no padding. ``max_pool_forward``
returns (out (N, C, oh, ow), switches), with oh = (H - k) // s + 1 and ow = (W - k) // s + 1: the
switches in any form you like, as long as your ``max_pool_backward`` reads them (it returns dx of x's
shape). Hint: stack the k*k shifted windows, take ``max`` and ``argmax`` over the stack; backwards add g
where each tap won. The grader's inputs have no ties. The answer: minigrad/simple.py, MaxPool2d.
"""


def max_pool_forward(x, kernel, stride):
    """-> (out (N, C, oh, ow), switches)."""
    raise NotImplementedError("exercise 3: max_pool_forward(x, kernel, stride)")


def max_pool_backward(g, switches, x_shape, kernel, stride):
    """g (N, C, oh, ow) -> dx (x_shape)."""
    raise NotImplementedError("exercise 3: max_pool_backward(g, switches, x_shape, kernel, stride)")
