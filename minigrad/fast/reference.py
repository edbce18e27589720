"""Naive reference versions of every kernel: plain loops over the definitions, slow and obvious.

The fast kernels (cpu.py, gpu.py) and the ops in functional.py are tested against these.
Arrays are NumPy; shapes as in cpu.py.
"""
import numpy as np


def conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """out[n, o, y, x] = b[o] + sum_{c,i,j} w[o, c, i, j] * x[n, c, y*sh + i - ph, x*sw + j - pw]."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    out = np.zeros((N, O, oh, ow), x.dtype)
    for n in range(N):
        for o in range(O):
            for y in range(oh):
                for xx in range(ow):
                    patch = xp[n, :, y * sh:y * sh + kh, xx * sw:xx * sw + kw]
                    out[n, o, y, xx] = np.sum(patch * w[o])
    if b is not None:
        out += b[None, :, None, None]
    return out


def conv2d_backward(x, w, grad_out, stride=(1, 1), padding=(0, 0)):
    """(dx, dw, db) of conv2d by the same loop, each term's contribution added where it came from."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    oh, ow = grad_out.shape[2:]
    for n in range(N):
        for o in range(O):
            for y in range(oh):
                for xx in range(ow):
                    g = grad_out[n, o, y, xx]
                    dxp[n, :, y * sh:y * sh + kh, xx * sw:xx * sw + kw] += g * w[o]
                    dw[o] += g * xp[n, :, y * sh:y * sh + kh, xx * sw:xx * sw + kw]
    return dxp[:, :, ph:ph + H, pw:pw + W], dw, grad_out.sum(axis=(0, 2, 3))


def im2col(x, kh, kw, sh, sw, ph, pw, oh, ow):
    """x (N, C, H, W) -> cols (C*kh*kw, N*oh*ow), see cpu.im2col (with n0 = 0, all images)."""
    N, C, H, W = x.shape
    P = oh * ow
    cols = np.zeros((C * kh * kw, N * P), x.dtype)
    for n, c, i, j, oy, ox in np.ndindex(N, C, kh, kw, oh, ow):
        y, xx = oy * sh + i - ph, ox * sw + j - pw
        if 0 <= y < H and 0 <= xx < W:
            cols[(c * kh + i) * kw + j, n * P + oy * ow + ox] = x[n, c, y, xx]
    return cols


def col2im(cols, shape, kh, kw, sh, sw, ph, pw, oh, ow):
    """cols (C*kh*kw, N*oh*ow) -> images of ``shape`` (N, C, H, W), see cpu.col2im."""
    N, C, H, W = shape
    P = oh * ow
    dx = np.zeros(shape, cols.dtype)
    for n, c, i, j, oy, ox in np.ndindex(N, C, kh, kw, oh, ow):
        y, xx = oy * sh + i - ph, ox * sw + j - pw
        if 0 <= y < H and 0 <= xx < W:
            dx[n, c, y, xx] += cols[(c * kh + i) * kw + j, n * P + oy * ow + ox]
    return dx


def max_pool2d(x, kh, kw, sh, sw, ph=0, pw=0):
    """(out, switches): out[n, c, y, x] = max of the window over x padded with -inf; switches = flat
    index (in x) of its first maximum."""
    N, C, H, W = x.shape
    xpad = np.full((N, C, H + 2 * ph, W + 2 * pw), -np.inf, x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    out = np.zeros((N, C, oh, ow), x.dtype)
    switches = np.zeros((N, C, oh, ow), np.int64)
    for n in range(N):
        for c in range(C):
            for y in range(oh):
                for xx in range(ow):
                    win = xpad[n, c, y * sh:y * sh + kh, xx * sw:xx * sw + kw]
                    i, j = np.unravel_index(np.argmax(win), win.shape)
                    out[n, c, y, xx] = win[i, j]
                    switches[n, c, y, xx] = (y * sh + i - ph) * W + xx * sw + j - pw
    return out, switches


def max_pool2d_backward(grad_out, switches, shape):
    """dx of max pooling: each output's gradient goes to its switch."""
    dx = np.zeros(shape, grad_out.dtype)
    W = shape[3]
    for n, c, y, xx in np.ndindex(*grad_out.shape):
        s = switches[n, c, y, xx]
        dx[n, c, s // W, s % W] += grad_out[n, c, y, xx]
    return dx


def relu(x):
    return np.where(x > 0, x, 0).astype(x.dtype)


def relu_backward(x, g, rule):
    """The three rules of relu_rules.py, written out: 'gradient', 'deconvnet', 'guided'."""
    if rule == "gradient":
        return (g * (x > 0)).astype(g.dtype)
    if rule == "deconvnet":
        return (g * (g > 0)).astype(g.dtype)
    if rule == "guided":
        return (g * (g > 0) * (x > 0)).astype(g.dtype)
    raise ValueError(rule)


# Winograd F(2x2, 3x3) (Lavin & Gray 2015): Y = A^T [(G w G^T) * (B^T d B)] A for a 4x4 input tile d
WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)


def winograd_input(x, ph, pw, th, tw):
    """V (16, C, N*th*tw): V[4a + b, c, T] = (B^T d B)[a, b], d the 4x4 tile of x (zero-padded) whose
    top-left pixel is (2*ty - ph, 2*tx - pw), T = (n*th + ty)*tw + tx."""
    N, C, H, W = x.shape
    padded = np.zeros((N, C, 2 * th + 2, 2 * tw + 2), x.dtype)
    padded[:, :, ph:ph + H, pw:pw + W] = x[:, :, :2 * th + 2 - ph, :2 * tw + 2 - pw]
    V = np.zeros((16, C, N * th * tw), x.dtype)
    for n in range(N):
        for c in range(C):
            for ty in range(th):
                for tx in range(tw):
                    d = padded[n, c, 2 * ty:2 * ty + 4, 2 * tx:2 * tx + 4]
                    V[:, c, (n * th + ty) * tw + tx] = (WINOGRAD_BT @ d @ WINOGRAD_BT.T).ravel()
    return V


def winograd_filters(w):
    """U (16, O, C): U[4a + b, o, c] = (G w[o, c] G^T)[a, b]."""
    O, C = w.shape[:2]
    U = np.zeros((16, O, C), w.dtype)
    for o in range(O):
        for c in range(C):
            U[:, o, c] = (WINOGRAD_G @ w[o, c] @ WINOGRAD_G.T).ravel()
    return U


def winograd_output(M, b, relu, N, oh, ow, th, tw):
    """out (N, O, oh, ow): each tile's 2x2 block A^T m A + b[o] (then the ReLU if relu), cropped to oh x ow."""
    O = M.shape[1]
    out = np.zeros((N, O, 2 * th, 2 * tw), M.dtype)
    for n in range(N):
        for o in range(O):
            for ty in range(th):
                for tx in range(tw):
                    m = M[:, o, (n * th + ty) * tw + tx].reshape(4, 4)
                    out[n, o, 2 * ty:2 * ty + 2, 2 * tx:2 * tx + 2] = WINOGRAD_AT @ m @ WINOGRAD_AT.T + b[o]
    out = out[:, :, :oh, :ow]
    return np.maximum(out, 0) if relu else out
