"""Exercise 2: conv2d forward and backward as kh*kw shifted GEMMs.

    out[n, o, y, x] = b[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, y*sh + i, x*sw + j]

with xpad = x zero-padded by (ph, pw) on each side. For one kernel tap (i, j), the inner sum over c is a
matrix product: w[:, :, i, j] (O, C) @ xs (C, oh*ow), where xs is xpad shifted by (i, j) and sampled
with the stride, ``xpad[:, :, i:i + sh*(oh-1) + 1:sh, j:j + sw*(ow-1) + 1:sw]``. So the convolution is kh*kw
GEMMs added up, with oh = (H + 2ph - kh) // sh + 1 (ow likewise).

Backwards, with g = dL/dout (N, O, oh, ow), the same GEMMs transposed, tap by tap:

    dw[:, :, i, j] = sum_n g[n] (O, P) @ xs[n].T (P, C)
    dxs[n] = w[:, :, i, j].T (C, O) @ g[n] (O, P), added back into dxpad where xs came from
    db = sum of g over n, y, x;  dx = dxpad without its padding

Arguments: x (N, C, H, W), w (O, C, kh, kw), b (O,), g (N, O, oh, ow) float64 NumPy arrays; stride and
padding pairs of ints. Hint: ``np.pad``, slicing with a step, ``@`` on (O, C) and (N, C, P) broadcasts
over n. Graded against the engine's convolution, and your backward against finite differences of your
forward. The answer: minigrad/simple.py, Conv2d.
"""


def conv2d_forward(x, w, b, stride, padding):
    """-> out (N, O, oh, ow)."""
    raise NotImplementedError("exercise 2: conv2d_forward(x, w, b, stride, padding)")


def conv2d_backward(x, w, g, stride, padding):
    """-> (dx (N, C, H, W), dw (O, C, kh, kw), db (O,))."""
    raise NotImplementedError("exercise 2: conv2d_backward(x, w, g, stride, padding)")
