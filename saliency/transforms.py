"""Pieces of the regularised class-model recipes: random transforms and image parametrisations.

Each piece is a forward map and its adjoint (the backward pass), written out in NumPy, so that the
gradient of the class score reaches the optimised variable without the engine knowing of them.

``RandomAffine`` is lucid's ``standard_transforms`` for a fixed-size input: pad with the mean
(zero in the model's input space), jitter, scale, rotate, jitter again, all folded into one
bilinear resampling of the image about its centre; pixels that come from outside the image are the
mean. Jitter is a shift with fill, never a wrap-around (``np.roll`` carries what leaves one border
in at the opposite one).

``FourierImage`` is lucid's parametrisation: the image is the inverse FFT of a spectrum scaled by
1/f (so that every frequency is equally easy to change), in a decorrelated colour space, squashed
into the valid pixel range by a sigmoid. With an alpha channel (Mordvintsev et al. 2018, "Differentiable
Image Parameterizations", the transparent patterns) the network sees the picture over a new random
background each step (``random_background``), so only what is opaque can carry the class, and a
penalty on the mean opacity keeps the rest transparent.

``Canvas`` holds one class model's variable (pixels, or a ``FourierImage``'s spectrum) and the image
it shows the model; ``valid_range`` is the model's input range for pixels 0..255.
"""
import math

import numpy as np
import scipy.sparse
from scipy.special import expit

from models.preprocess import input_stats

#: lucid's square root of ImageNet's colour correlation (columns: decorrelated -> RGB).
COLOR_SVD_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOR = COLOR_SVD_SQRT / np.max(np.linalg.norm(COLOR_SVD_SQRT, axis=0))


class RandomAffine:
    """One random draw of jitter + scale + rotation, as a bilinear resampling (3, H, W) -> (3, H, W).

    jitter : list of maximum shifts in pixels, each drawn uniformly in -j/2 .. j/2 (lucid: 8, then 4)
    scales : scale factors to choose from (lucid: 1 + (i - 5) / 50, i in 0..10)
    degrees : rotation drawn uniformly in -degrees .. degrees (lucid: 10)
    """

    def __init__(self, rng, shape, jitter=(8, 4), scales=(1.0,), degrees=0.0):
        _, H, W = shape
        self.shape = shape
        shift = sum(rng.integers(0, j + 1, 2) - j // 2 for j in jitter) if jitter else np.zeros(2)
        s = float(scales[rng.integers(len(scales))])
        a = math.radians(float(rng.uniform(-degrees, degrees))) if degrees else 0.0
        # output pixel p (centred) shows the image at  R(-a) p / s + centre - shift
        ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
        cy, cx = (H - 1) / 2, (W - 1) / 2
        py, px = ys - cy, xs - cx
        c, n = math.cos(a), math.sin(a)
        sy = (c * py - n * px) / s + cy - shift[0]
        sx = (n * py + c * px) / s + cx - shift[1]
        y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
        fy, fx = (sy - y0).astype(np.float32), (sx - x0).astype(np.float32)
        index, weight = [], []
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
            index.append(np.where(inside, yy * W + xx, 0).ravel())
            weight.append(np.where(inside, w, 0).astype(np.float32).ravel())   # outside: the mean (0)
        # The resampling as a (H*W, H*W) matrix: row p holds output pixel p's 4 weights, at the
        # columns of its 4 sources (in the order above, so that each row sums them in that order).
        P = H * W
        self.matrix = scipy.sparse.csr_matrix((np.stack(weight, 1).ravel(), np.stack(index, 1).ravel(),
                                               np.arange(0, 4 * P + 1, 4)), shape=(P, P))

    def __call__(self, image):
        """(..., H, W) -> (..., H, W), every plane alike: out[c, p] = sum_k weight_k[p] image[c, index_k[p]]
        (each plane times the resampling matrix)."""
        flat = image.reshape(-1, self.matrix.shape[1])
        return (self.matrix @ flat.T).T.reshape(image.shape).astype(image.dtype, copy=False)

    def adjoint(self, grad):
        """The transpose of __call__: each output pixel's gradient scattered back to its 4 sources, for
        every plane at once (each plane times the transposed matrix)."""
        flat = grad.reshape(-1, self.matrix.shape[0])
        return (self.matrix.T @ flat.T).T.reshape(grad.shape).astype(grad.dtype, copy=False)


def spectrum_scale(H, W, decay_power=1.0):
    """1/f ** decay_power for the (H, W//2+1) frequencies of rfft2 (f at least 1/max(H, W)), float32."""
    fy = np.fft.fftfreq(H)[:, None]
    fx = np.fft.rfftfreq(W)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    return (1.0 / np.maximum(f, 1.0 / max(H, W)) ** decay_power).astype(np.float32)


def random_background(rng, shape, scale_f=None, mean=None):
    """A background for a transparent class model (Mordvintsev et al. 2018), in pixels 0..1, RGB
    (3, H, W) float32: one of uniform noise, a random 1/f image (smooth blotches, ``scale_f``:
    :func:`spectrum_scale`) or one flat colour, each a third of the time; with ``mean`` (3, 1, 1)
    also the mean colour, the background the picture is shown on, each a quarter of the time."""
    C, H, W = shape
    kind = rng.integers(3 if mean is None else 4)
    if kind == 3:
        return np.broadcast_to(mean, shape).astype(np.float32)
    if kind == 0:
        return rng.uniform(0, 1, shape).astype(np.float32)
    if kind == 1:
        scale_f = spectrum_scale(H, W) if scale_f is None else scale_f
        spec = (rng.standard_normal((C, H, W // 2 + 1)) + 1j * rng.standard_normal((C, H, W // 2 + 1))) * scale_f
        raw = np.fft.irfft2(spec, s=(H, W), norm="ortho")
        raw = np.einsum("ij,jhw->ihw", COLOR, raw / (raw.std() + 1e-8))
        return (1 / (1 + np.exp(-2 * raw))).astype(np.float32)
    return np.broadcast_to(rng.uniform(0, 1, (C, 1, 1)), shape).astype(np.float32)


class FourierImage:
    """image = sigmoid(COLOR @ irfft2(spectrum * 1/f) / 4), mapped into the model's input space.

    The variable is ``self.spectrum``: (2, 3, H, W//2+1) real and imaginary parts, drawn N(0, sd); with
    ``alpha`` a fourth channel, the opacity: sigmoid(irfft2(spectrum[:, 3] * 1/f) / 4), not decorrelated
    (lucid's ``image(..., alpha=True)``). ``mean``, ``std``, ``scale`` are the model's preprocessing (RGB
    order, arrays (3, 1, 1)).
    """

    def __init__(self, shape, rng, mean, std, scale, sd=0.01, decay_power=1.0, alpha=False):
        C, H, W = shape
        self.scale_f = spectrum_scale(H, W, decay_power)
        # d/d(Re, Im) of irfft2 (ortho) is rfft2 (ortho) times 2 on the columns that stand for a pair
        self.pair = np.full(W // 2 + 1, 2.0, np.float32)
        self.pair[0] = 1
        if W % 2 == 0:
            self.pair[-1] = 1
        self.shape, self.mean, self.std, self.pixel_scale = shape, mean, std, np.float32(scale)
        self.spectrum = (rng.standard_normal((2, C + bool(alpha), H, W // 2 + 1)) * sd).astype(np.float32)

    def pixels(self):
        """(rgb, alpha): the picture in pixels 0..1, RGB (3, H, W), and its opacity (1, H, W) or None."""
        spec = (self.spectrum[0] + 1j * self.spectrum[1]) * self.scale_f
        raw = np.fft.irfft2(spec, s=self.shape[1:], norm="ortho").astype(self.spectrum.dtype) / 4   # float32 stays
        t = np.einsum("ij,jhw->ihw", COLOR, raw[:3])                      # decorrelated -> RGB
        rgb = expit(t)                                                    # sigmoid: the valid range 0..1
        alpha = expit(raw[3:]) if len(raw) > 3 else None
        return rgb, alpha

    def pixels_backward(self, d_rgb, rgb, d_alpha=None, alpha=None):
        """d loss / d spectrum from d loss / d rgb (3, H, W) (and / d alpha (1, H, W) with an alpha)."""
        g = np.einsum("ij,ihw->jhw", COLOR, d_rgb * rgb * (1 - rgb))       # through the sigmoid, COLOR^T
        if d_alpha is not None:
            g = np.concatenate([g, d_alpha * alpha * (1 - alpha)])
        G = np.fft.rfft2(g / 4, norm="ortho") * self.pair * self.scale_f
        return np.stack([G.real, G.imag]).astype(self.spectrum.dtype)

    def to_model(self, pixels):
        """Pixels 0..1 (RGB) -> the model's input space (RGB order)."""
        return ((pixels * self.pixel_scale - self.mean) / self.std).astype(self.spectrum.dtype)


def valid_range(meta):
    """Per-channel (lo, hi) of the model's input space for pixels in 0..255: arrays (3, 1, 1)."""
    mean, std, scale = input_stats(meta)
    return (0 - mean) / std, (scale - mean) / std


class Canvas:
    """What the ascent moves (the pixels, or a Fourier spectrum) and the image (3, H, W) it shows the
    model, in the model's input space and channel order."""

    def __init__(self, model, recipe, rng):
        H, W = model.config.input_size
        self.bgr = model.meta["channel_order"].upper() != "RGB"
        self.alpha = self.fourier = None
        self.range = valid_range(model.meta) if recipe.clip else None
        if recipe.param == "pixel":
            self.image = self.variable = np.zeros((3, H, W), model.parameters()[0].dtype)
            return
        mean, std, _ = input_stats(model.meta)
        if self.bgr:
            mean, std = mean[::-1], std[::-1]                              # the Fourier image is RGB
        self.fourier = FourierImage((3, H, W), rng, mean, std, model.meta["scale"], decay_power=recipe.decay_power,
                                    alpha=bool(recipe.opacity_penalty))
        self.shown_on = mean / self.fourier.pixel_scale                    # the mean colour, pixels 0..1 RGB
        self.variable = self.fourier.spectrum
        self._show()

    def model_order(self, x):
        """RGB -> the model's channel order (its own inverse)."""
        return x[::-1].copy() if self.bgr else x

    def _show(self):
        self.rgb, self.alpha = self.fourier.pixels()
        self.image = self.model_order(self.fourier.to_model(self.rgb))

    def backward(self, grad):
        """d/d image -> d/d variable."""
        if self.fourier is None:
            return grad
        f = self.fourier
        return f.pixels_backward(self.model_order(grad) * f.pixel_scale / f.std, self.rgb)

    def move(self, delta):
        """variable += delta, then the image it shows."""
        self.variable = self.variable + delta
        if self.fourier is not None:
            self.fourier.spectrum = self.variable
            self._show()
            return
        if self.range is not None:
            self.variable = np.clip(self.variable, *self.range)
        self.image = self.variable

    def picture(self):
        """The image returned: with an opacity channel, the picture over the mean (model-space zero)."""
        return self.image * self.alpha if self.alpha is not None else self.image.copy()
