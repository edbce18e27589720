"""Class model visualisation (paper Sec. 2).

Find the image that maximises the class score, regularised by its L2 norm:

    I* = argmax_I  S_c(I) - lambda ||I||_2^2

by gradient ascent on I, starting from the zero image (which, in the model's mean-subtracted input
space, is the mean image), with the weights fixed. ``S_c`` is the unnormalised class score (the
logit): maximising the softmax could be done by pushing the other classes down instead. The paper's
recipe keeps S_c; the library's default departs from it (below) and climbs log p_c, because on the
network shipped before the robust one (README, "Class models") one logit's ascent raised several
classes' logits together.

The paper's recipe is just that: ``PRESETS["paper"]``, the script's ``--paper``. On the shipped
shapes network it piles up at the left border: the network's gradient at the mean image lies mostly
in the leftmost columns (README, "Class models"). lucid's recipe (``PRESETS["lucid"]``) escapes it:
random shifts that fill in the mean (never a wrap-around), scales and rotations each step, on a
decorrelated Fourier image, with Adam (saliency/transforms.py); but its pictures are textures that
fill the frame, and since each ascent raises one logit alone, on the shipped network 5 of 10 were
pictures of another class. The default (``PRESETS["default"]``) adds three things: an opacity
channel, the picture seen over a new random background each step with its mean opacity penalised
(Mordvintsev et al. 2018), so that only a compact object carries the class; the objective log p_c
(Santurkar et al. 2019's cross-entropy), which raises S_c against the other classes; and lucid's
transforms and image prior widened to the shapes data's (any rotation, scales 0.75..1.25, a 1/f^1.5
spectrum), so that what survives every step is a shape rather than a texture. Yosinski et al. (2015)'s
regularisers (decay, a Gaussian blur every k steps, clipping) and a total-variation penalty are there
for the pixel parametrisation. ``tutorial_class_model`` is the recipe of a widely read tutorial of
the paper (SGD lr 6 on -S_c + lambda ||I||_p).
"""
import math

import numpy as np

import minigrad as mg

from .gradients import frozen, targets_for


def valid_range(meta):
    """Per-channel (lo, hi) of the model's input space for pixels in 0..255: arrays (3, 1, 1)."""
    mean = np.asarray(meta["mean"], np.float32).reshape(3, 1, 1)
    std = np.asarray(meta["std"], np.float32).reshape(3, 1, 1)
    scale = np.float32(meta["scale"])
    return (0 - mean) / std, (scale - mean) / std


def _blur(x, sigma):
    """Separable Gaussian blur of (3, H, W), reflecting at the borders."""
    radius = max(1, int(round(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-(t * t) / np.float32(2 * sigma * sigma))
    k /= k.sum()
    p = np.pad(x, ((0, 0), (radius, radius), (radius, radius)), mode="reflect")
    h = sum(k[i] * p[:, :, i:i + x.shape[2]] for i in range(k.size))          # (3, H+2r, W)
    return sum(k[i] * h[:, i:i + x.shape[1], :] for i in range(k.size)).astype(x.dtype)


def _tv_gradient(x):
    """Gradient of the anisotropic total variation sum |x[i+1]-x[i]| + |x[j+1]-x[j]| (a subgradient)."""
    g = np.zeros_like(x)
    dy = np.sign(x[:, 1:, :] - x[:, :-1, :])
    dx = np.sign(x[:, :, 1:] - x[:, :, :-1])
    g[:, 1:, :] += dy
    g[:, :-1, :] -= dy
    g[:, :, 1:] += dx
    g[:, :, :-1] -= dx
    return g


PRESETS = {
    # the paper: plain gradient ascent on S_c - lambda ||I||^2 from the zero image
    "paper": dict(steps=300, lr=1.0, l2=1e-3, optimizer="sgd", param="pixel", jitter=(), scales=(1.0,),
                  degrees=0.0, decay=0.0, blur_every=0, clip=False, objective="logit", transparency=0.0, batch=1),
    # lucid's standard transforms (pad 12 with the mean, jitter 8, scale 1 + (i - 5) / 50, rotate
    # -10..10 degrees, jitter 4) on the decorrelated Fourier parametrisation, Adam 0.05, 512 steps
    "lucid": dict(steps=512, lr=0.05, l2=0.0, optimizer="adam", param="fourier", jitter=(8, 4),
                  scales=tuple(1 + (i - 5) / 50 for i in range(11)), degrees=10.0, decay=0.0, blur_every=0,
                  clip=False, objective="logit", transparency=0.0, decay_power=1.0, batch=1),
}
# the default: lucid's, on a transparent picture over random backgrounds (an opacity channel, its mean
# penalised: Mordvintsev et al. 2018), maximising log p_c (Santurkar et al. 2019) rather than S_c alone,
# with the transforms and the image prior widened to the shapes data's: any rotation and scales
# 0.75..1.25 (its objects come at every angle and at 30-60% of the side), and a 1/f^1.5 spectrum
# (lucid's 1/f is that of photographs; a flat-coloured silhouette's amplitude falls as 1/f^1.4-1.8);
# each step averages 4 draws of transform and background (expectation over transformation), 512 steps
PRESETS["default"] = dict(PRESETS["lucid"], objective="log_softmax", transparency=4.0, degrees=180.0,
                          scales=tuple(0.75 + i / 20 for i in range(11)), decay_power=1.5, batch=4, steps=512)


def class_model(model, target, steps=512, lr=0.05, l2=0.0, optimizer="adam", param="fourier", jitter=(8, 4),
                scales=PRESETS["default"]["scales"], degrees=180.0, decay=0.0, blur_every=0, blur_sigma=0.5,
                clip=False, tv=0.0, objective="log_softmax", transparency=None, decay_power=1.5, batch=None,
                snapshot_every=0, progress=None,
                return_history=False, seed=0):
    """Gradient ascent on ``S_c(T(I)) - l2 * ||I||^2`` (T: a random transform each step; S_c, or log p_c
    with ``objective="log_softmax"``, the default's); returns I (3, H, W).

    The paper's recipe is ``**PRESETS["paper"]``: pixels from the zero image, x += lr * gradient, no
    transform. The defaults (``PRESETS["default"]``) are lucid's transforms and Fourier image
    (``PRESETS["lucid"]``) with an opacity channel over random backgrounds, maximising log p_c.

    optimizer : "sgd" (I += lr * ascent direction) or "adam" (Kingma & Ba, betas 0.9, 0.999)
    param : "pixel" (the pixels are the variable, starting at zero: the mean image) or "fourier"
        (a 1/f-scaled spectrum in a decorrelated colour space through a sigmoid: saliency.transforms)
    jitter : shifts in pixels drawn each step, each uniform in -j/2..j/2 (pixels that come in from
        outside are the mean; no wrap-around)
    scales, degrees : a random scale from ``scales`` and a rotation in -degrees..degrees each step
        (lucid: 0.9..1.1 and 10; the default: 0.75..1.25 and 180, the shapes data's variety)
    decay : I *= (1 - decay) after each step (Yosinski et al. 2015); pixel parametrisation only
    blur_every, blur_sigma : Gaussian blur every k steps (pixel parametrisation only)
    clip : keep pixels inside the valid range of the model's input space (pixel parametrisation)
    tv : weight of a total-variation penalty (pixel parametrisation)
    objective : "logit" (S_c, the paper's) or "log_softmax" (log p_c = S_c - log sum_k exp S_k, the
        cross-entropy of Santurkar et al. 2019's image synthesis: raises S_c against the other classes)
    transparency : with ``param="fourier"``, > 0 adds an opacity channel (None: the default's 4.0 for
        the Fourier image, 0 for pixels): each step the network sees
        alpha * picture + (1 - alpha) * a new random background, and the objective loses
        ``transparency * mean(alpha)`` (Mordvintsev et al. 2018). The returned image is the picture
        over the mean (model-space zero): alpha * I.
    decay_power : the Fourier image's prior, amplitude ~ 1/f**decay_power (lucid: 1, photographs'
        spectrum; the default: 1.5, closer to flat-coloured silhouettes': README, "Class models")
    batch : with transparency, each step averages the gradient over this many draws of transform and
        background, seen in one batch (expectation over transformation, Athalye et al. 2018); None:
        the default's 4 with transparency, else 1
    progress : a tqdm-like object with ``update(1)`` and ``set_postfix``, optional
    return_history : also return a dict with 'scores' (S_c per step, of the transformed image the
        step saw), 'final_score' (S_c of the returned image), 'snapshots' ((step, image) pairs
        every ``snapshot_every`` steps) and, with transparency, 'alpha' (the opacity, (H, W))
    """
    from .transforms import FourierImage, RandomAffine, random_background
    if optimizer not in ("sgd", "adam") or param not in ("pixel", "fourier"):
        raise ValueError(f"optimizer must be sgd or adam and param pixel or fourier, got {optimizer!r}, {param!r}")
    if objective not in ("logit", "log_softmax"):
        raise ValueError(f"objective must be logit or log_softmax, got {objective!r}")
    if transparency is None:
        transparency = PRESETS["default"]["transparency"] if param == "fourier" else 0.0
    if transparency and param != "fourier":
        raise ValueError("transparency needs param='fourier' (the opacity is a fourth channel of its spectrum)")
    if batch is None:
        batch = PRESETS["default"]["batch"] if transparency else 1
    if batch != 1 and not transparency:
        raise ValueError("batch > 1 averages draws of the transparent recipe: it needs transparency > 0")
    if transparency and (l2 or tv):
        raise ValueError("l2 and tv penalise the opaque picture and are not defined with transparency; "
                         "pass transparency=0 to use them")
    t = int(targets_for(target, 1, model.config.num_classes)[0])
    H, W = model.config.input_size
    dtype = model.parameters()[0].dtype
    rng = np.random.default_rng(seed)
    jitter = (jitter,) if np.isscalar(jitter) else tuple(jitter)
    jitter = tuple(int(j) for j in jitter if j)
    transformed = bool(jitter) or degrees or any(s != 1 for s in scales)
    lo, hi = valid_range(model.meta)
    bgr = model.meta["channel_order"].upper() != "RGB"
    mean, std = (np.asarray(model.meta[k], np.float32).reshape(3, 1, 1) for k in ("mean", "std"))
    if bgr:
        mean, std = mean[::-1], std[::-1]                                  # the Fourier image is RGB

    def model_order(x):                                                    # RGB -> the model's channel order
        return x[::-1].copy() if bgr else x

    if param == "fourier":
        fourier = FourierImage((3, H, W), rng, mean, std, model.meta["scale"], decay_power=decay_power,
                               alpha=bool(transparency))
        shown_on = mean / fourier.pixel_scale                               # the mean colour, pixels 0..1 RGB
        variable = fourier.spectrum
        rgb, alpha = fourier.pixels()
        image = model_order(fourier.to_model(rgb))
    else:
        image = variable = np.zeros((3, H, W), dtype)
    m1, m2 = np.zeros_like(variable), np.zeros_like(variable)
    scores, snapshots = [], []
    with frozen(model):
        for step in range(steps):
            if transparency:                                               # the picture over random backgrounds
                draws = [(random_background(rng, (3, H, W), fourier.scale_f, shown_on),
                          RandomAffine(rng, (3, H, W), jitter, scales, degrees) if transformed else None)
                         for _ in range(batch)]
                score, ascent = transparent_step(model, fourier, draws, t, objective, transparency, bgr)
                scores.append(score)
            else:
                T = RandomAffine(rng, image.shape, jitter, scales, degrees) if transformed else None
                score, grad = _score_gradient(model, T(image) if T else image, t, objective)
                scores.append(score)
                if T:
                    grad = T.adjoint(grad)
                # d/dI [S_c - l2 ||I||^2 - tv TV(I)] = dS_c/dI - 2 l2 I - tv dTV/dI
                ascent = grad - np.float32(2 * l2) * image
                if tv:
                    ascent -= np.float32(tv) * _tv_gradient(image)
                if param == "fourier":                                     # d/d(pixels, RGB), then d/d spectrum
                    ascent = fourier.pixels_backward(model_order(ascent) * fourier.pixel_scale / fourier.std, rgb)
            variable = variable + _step(ascent, m1, m2, step, lr, optimizer)
            if param == "fourier":
                fourier.spectrum = variable
                rgb, alpha = fourier.pixels()
                image = model_order(fourier.to_model(rgb))
            else:
                if decay:
                    variable *= np.float32(1 - decay)
                if blur_every and (step + 1) % blur_every == 0:
                    variable = _blur(variable, blur_sigma)
                if clip:
                    variable = np.clip(variable, lo, hi)
                image = variable
            if snapshot_every and (step + 1) % snapshot_every == 0:
                snapshots.append((step + 1, image * alpha if transparency else image.copy()))
            if progress is not None:
                progress.update(1)
                progress.set_postfix(score=f"{scores[-1]:.3f}")
        if transparency:
            image = image * alpha                                          # over the mean: model-space zero
        final = _score_gradient(model, image, t)[0] if return_history else None
    image = image.astype(dtype, copy=False)
    if return_history:
        history = {"scores": scores, "final_score": final, "snapshots": snapshots}
        if transparency:
            history["alpha"] = alpha[0]
        return image, history
    return image


def transparent_step(model, fourier, draws, t, objective, transparency, bgr=False):
    """One step's (mean S_c, d J / d spectrum) of the transparent recipe, for

        J = mean over draws of objective_c(T(picture)) - transparency * mean(alpha),
        picture = alpha rgb + (1 - alpha) background

    (``fourier``: a FourierImage with an alpha channel; ``draws``: (background, T) pairs, the background
    in pixels 0..1, RGB (3, H, W), T a RandomAffine or None, all seen in one batch; ``bgr``: the model
    takes BGR). Averaging over several draws is expectation over transformation (Athalye et al. 2018)."""
    rgb, alpha = fourier.pixels()
    seen = []
    for background, T in draws:
        x = fourier.to_model(alpha * rgb + (1 - alpha) * background)
        x = x[::-1].copy() if bgr else x
        seen.append(T(x) if T else x)
    scores, grads = _score_gradients(model, np.stack(seen), t, objective)
    d_rgb, d_alpha = 0, 0
    for (background, T), grad in zip(draws, grads):
        if T:
            grad = T.adjoint(grad)
        d_pixels = (grad[::-1] if bgr else grad) * fourier.pixel_scale / fourier.std   # d/d(picture pixels, RGB)
        d_rgb = d_rgb + d_pixels * alpha
        d_alpha = d_alpha + (d_pixels * (rgb - background)).sum(0, keepdims=True)
    n = np.asarray(len(draws), alpha.dtype)
    H, W = alpha.shape[1:]
    penalty = np.asarray(transparency / (H * W), alpha.dtype)
    return float(np.mean(scores)), fourier.pixels_backward(d_rgb / n, rgb, d_alpha / n - penalty, alpha)


def _step(ascent, m1, m2, step, lr, optimizer):
    """The update of the variable: lr * ascent (SGD), or Adam's (moments m1, m2 updated in place)."""
    if optimizer == "sgd":
        return np.float32(lr) * ascent
    b1, b2 = np.float32(0.9), np.float32(0.999)
    m1 *= b1
    m1 += (1 - b1) * ascent
    m2 *= b2
    m2 += (1 - b2) * ascent * ascent
    k = step + 1
    corr = np.float32(math.sqrt(1 - 0.999 ** k) / (1 - 0.9 ** k))
    return np.float32(lr) * corr * m1 / (np.sqrt(m2) + np.float32(1e-8))


def _score_gradient(model, image, t, objective="logit"):
    """(S_c(image), d objective / d image) for one (3, H, W) image on the host."""
    scores, grads = _score_gradients(model, image[None], t, objective)
    return float(scores[0]), grads[0]


def _score_gradients(model, images, t, objective="logit"):
    """(S_c, d objective / d image) of each of (N, 3, H, W) images on the host, in one batch; the
    objective is S_c ("logit") or log softmax_c ("log_softmax": its gradient is that of
    S_c - sum_k p_k S_k)."""
    x = mg.Tensor(mg.to_device(np.array(images), model.device), requires_grad=True)   # a copy
    scores = model(x)
    if objective == "logit":
        seed = np.zeros(scores.shape, np.float64)
        seed[:, t] = 1
    else:
        s = mg.backend.to_numpy(scores.data).astype(np.float64)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        seed = -p / p.sum(axis=1, keepdims=True)
        seed[:, t] += 1                                                    # d log p_t / d S = onehot_t - p
    scores.backward(mg.to_device(seed.astype(scores.dtype), model.device))
    return mg.backend.to_numpy(scores.data)[:, t].astype(np.float64), mg.backend.to_numpy(x.grad)


def norm_gradient(image, p):
    """d ||I||_p / dI for p in {1, 2}: sign(I), or I / ||I||_2 (0 at the zero image, as PyTorch's norm)."""
    if p == 1:
        return np.sign(image)
    if p == 2:
        n = np.sqrt(np.sum(image * image, dtype=image.dtype))
        return image / n if n > 0 else np.zeros_like(image)
    raise ValueError(f"p must be 1 or 2, got {p!r}")


def tutorial_class_model(model, target, lam=0.1, p=2, steps=151, lr=6.0, snapshot_every=10, progress=None,
                         return_history=False, start=None):
    """The recipe of a widely read tutorial of the paper: plain SGD on the image from the zero image,

        loss = -S_c(I) + lam * ||I||_p          (the p-norm itself, not squared; p in {1, 2})
        I <- I - lr * d loss / dI               (lr 6.0, 151 steps)

    with a snapshot every ``snapshot_every`` steps (for a GIF). Returns I (3, H, W), and with
    ``return_history`` a dict with 'scores' and 'snapshots' as :func:`class_model`.

    ``start`` (3, H, W): the image to start from instead of zero. At the zero image every max-pool
    window of a layer fed by constant activations holds an exact tie, and which element takes the
    gradient follows the last bit of the convolutions, which depends on the BLAS kernel in float32
    (docs/reproducibility.md); a start without ties makes the ascent independent of it.
    """
    t = int(targets_for(target, 1, model.config.num_classes)[0])
    H, W = model.config.input_size
    dtype = model.parameters()[0].dtype
    image = np.zeros((3, H, W), dtype) if start is None else np.array(start, dtype).reshape(3, H, W)
    scores, snapshots = [], []
    with frozen(model):
        for step in range(steps):
            score, grad = _score_gradient(model, image, t)
            scores.append(score)
            image = image - np.float32(lr) * (np.float32(lam) * norm_gradient(image, p) - grad)
            if snapshot_every and (step + 1) % snapshot_every == 0:
                snapshots.append((step + 1, image.copy()))
            if progress is not None:
                progress.update(1)
    if return_history:
        return image, {"scores": scores, "snapshots": snapshots}
    return image
