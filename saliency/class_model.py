"""Class model visualisation (paper Sec. 2).

Find the image that maximises the class score, regularised by its L2 norm:

    I* = argmax_I  S_c(I) - lambda ||I||_2^2

by gradient ascent on I, starting from the zero image (which, in the model's mean-subtracted input
space, is the mean image), with the weights fixed. ``S_c`` is the unnormalised class score (the
logit): maximising the softmax could be done by pushing the other classes down instead.

Three recipes, each read top to bottom:

- ``paper_class_model``: the paper's, a plain loop, I <- I + lr * (dS_c/dI - 2 lambda I).
- ``tutorial_class_model``: a widely read tutorial's, plain SGD lr 6 on -S_c + lambda ||I||_p.
- ``class_model``: the library's, a ``Recipe`` (``class_models``: several classes side by side, one
  batch through the network per step). Its default (``PRESETS["default"]``) is lucid's
  recipe (``PRESETS["lucid"]``: random shifts that fill in the mean, scales and rotations each step, on
  a decorrelated Fourier image, with Adam; saliency/transforms.py) with three additions: an opacity
  channel, the picture seen over a new random background each step with its mean opacity penalised
  (Mordvintsev et al. 2018), so that only a compact object carries the class; the objective log p_c
  (Santurkar et al. 2019's cross-entropy), which raises S_c against the other classes; and lucid's
  transforms and image prior widened to the shapes data's (any rotation, scales 0.75..1.25, a 1/f^1.5
  spectrum), so that what survives every step is a shape rather than a texture. docs/class_models.md
  shows the three side by side on the shipped network.
"""
import copy
import dataclasses
import math

import numpy as np

import minigrad as mg

from .gradients import class_scores, frozen, targets_for
from .transforms import Canvas


def _score_gradient(model, image, t, objective="logit"):
    """(S_c(image), d objective / d image) for one (3, H, W) image on the host."""
    scores, grads = _score_gradients(model, image[None], t, objective)
    return float(scores[0]), grads[0]


def _score_gradients(model, images, t, objective="logit"):
    """(S_c, d objective / d image) of each of (N, 3, H, W) images on the host, in one batch (``t``: the
    class c, or one per image); the objective is S_c ("logit") or log p_c ("log_probability",
    gradients.class_scores). The objective is taken of the logits cast to float64 (the gradient at the
    logits, onehot_c - softmax(S) for log p_c, rounded to the model's dtype once): Adam's first steps
    make a whole step of a near-zero gradient's sign, so a float32 softmax's last bits would change the
    pictures."""
    x = mg.Tensor(mg.to_device(np.array(images), model.device), requires_grad=True)   # a copy
    logits = model(x)
    targets = targets_for(t, len(images), model.config.num_classes)
    class_scores(logits.astype(np.float64), targets, objective).sum().backward()
    scores = mg.backend.to_numpy(logits.data)[np.arange(len(images)), targets].astype(np.float64)
    return scores, mg.backend.to_numpy(x.grad)


# ---------------------------------------------------------------------------------- the paper's recipe
def paper_class_model(model, target, steps=300, lr=1.0, l2=1e-3, snapshot_every=0, progress=None,
                      return_history=False, start=None):
    """The paper's recipe (Sec. 2): from the zero image, plain gradient ascent on S_c(I) - l2 ||I||^2,

        I <- I + lr * (dS_c/dI - 2 l2 I)         (S_c the logit; 300 steps of lr 1, lambda 1e-3)

    Returns I (3, H, W) in the model's input space, and with ``return_history`` a dict with 'scores'
    (S_c before each step), 'final_score' (S_c of the returned image) and 'snapshots' ((step, image)
    pairs every ``snapshot_every`` steps). ``progress``: a tqdm-like object (``update(1)``,
    ``set_postfix``), optional. ``start`` (3, H, W): the image to start from instead of zero (see
    :func:`tutorial_class_model` on the ties at the zero image).
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
            image = image + np.float32(lr) * (grad - np.float32(2 * l2) * image)
            if snapshot_every and (step + 1) % snapshot_every == 0:
                snapshots.append((step + 1, image.copy()))
            if progress is not None:
                progress.update(1)
                progress.set_postfix(score=f"{score:.3f}")
        final = _score_gradient(model, image, t)[0] if return_history else None
    if return_history:
        return image, {"scores": scores, "final_score": final, "snapshots": snapshots}
    return image


# ------------------------------------------------------------------------------- the tutorial's recipe
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
    ``return_history`` a dict with 'scores' and 'snapshots' as :func:`paper_class_model`.

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


# -------------------------------------------------------------------------------- the library's recipe
@dataclasses.dataclass(frozen=True)
class Recipe:
    """The library's class-model recipe; its defaults are the default's (``PRESETS["default"]``).

    steps, lr : the number of steps and the step size
    optimizer : "sgd" (I += lr * ascent direction) or "adam" (Kingma & Ba, betas 0.9, 0.999)
    param : "fourier" (a 1/f-scaled spectrum in a decorrelated colour space through a sigmoid:
        saliency.transforms) or "pixel" (the pixels are the variable, starting at zero: the mean image)
    objective : "log_probability" (log p_c = S_c - log sum_k exp S_k, the cross-entropy of Santurkar et
        al. 2019's image synthesis: raises S_c against the other classes) or "logit" (S_c, the paper's)
    opacity_penalty : > 0 adds an opacity channel to the Fourier image: each step the network sees
        alpha * picture + (1 - alpha) * a new random background, and the objective loses
        ``opacity_penalty * mean(alpha)`` (Mordvintsev et al. 2018); 0: an opaque picture
    batch : with an opacity channel, each step averages the gradient over this many draws of transform
        and background, seen in one batch (expectation over transformation, Athalye et al. 2018)
    jitter : shifts in pixels drawn each step, each uniform in -j/2..j/2 (pixels that come in from
        outside are the mean; no wrap-around)
    scales, degrees : a random scale from ``scales`` and a rotation in -degrees..degrees each step
        (lucid: 0.9..1.1 and 10; the default: 0.75..1.25 and 180, the shapes data's variety)
    decay_power : the Fourier image's prior, amplitude ~ 1/f**decay_power (lucid: 1, photographs'
        spectrum; the default: 1.5, closer to flat-coloured silhouettes': docs/class_models.md)
    l2 : weight of the penalty ``l2 * ||I||^2`` on an opaque picture
    clip : keep the pixels inside the valid range of the model's input space (param "pixel")
    """
    steps: int = 512
    lr: float = 0.05
    optimizer: str = "adam"
    param: str = "fourier"
    objective: str = "log_probability"
    opacity_penalty: float = 4.0
    batch: int = 4
    jitter: tuple = (8, 4)
    scales: tuple = tuple(0.75 + i / 20 for i in range(11))
    degrees: float = 180.0
    decay_power: float = 1.5
    l2: float = 0.0
    clip: bool = False

    def __post_init__(self):
        jitter = (self.jitter,) if np.isscalar(self.jitter) else self.jitter
        object.__setattr__(self, "jitter", tuple(int(j) for j in jitter if j))
        object.__setattr__(self, "scales", tuple(self.scales))
        if self.optimizer not in ("sgd", "adam") or self.param not in ("pixel", "fourier"):
            raise ValueError(f"optimizer must be sgd or adam and param pixel or fourier, got {self.optimizer!r}, "
                             f"{self.param!r}")
        if self.objective not in ("logit", "log_probability"):
            raise ValueError(f"objective must be logit or log_probability, got {self.objective!r}")
        if self.opacity_penalty and self.param != "fourier":
            raise ValueError("opacity_penalty needs param='fourier' (the opacity is a fourth channel of its "
                             "spectrum); pass opacity_penalty=0, batch=1 for pixels")
        if self.batch != 1 and not self.opacity_penalty:
            raise ValueError("batch > 1 averages draws of the transparent recipe: it needs opacity_penalty > 0")
        if self.opacity_penalty and self.l2:
            raise ValueError("l2 penalises an opaque picture: pass opacity_penalty=0 (and batch=1) to use it")
        if self.clip and self.param != "pixel":
            raise ValueError("clip keeps pixels in range: it needs param='pixel' (the Fourier image's sigmoid "
                             "keeps it there)")

    def transform(self, rng, shape):
        """This step's random jitter, scale and rotation (a RandomAffine), or None if the recipe has none."""
        from .transforms import RandomAffine
        if self.jitter or self.degrees or any(s != 1 for s in self.scales):
            return RandomAffine(rng, shape, self.jitter, self.scales, self.degrees)
        return None


PRESETS = {name: dataclasses.asdict(recipe) for name, recipe in {      # keyword arguments of class_model
    # the paper: plain gradient ascent on S_c - lambda ||I||^2 from the zero image (paper_class_model)
    "paper": Recipe(steps=300, lr=1.0, l2=1e-3, optimizer="sgd", param="pixel", jitter=(), scales=(1.0,),
                    degrees=0.0, objective="logit", opacity_penalty=0.0, batch=1),
    # lucid's standard transforms (pad 12 with the mean, jitter 8, scale 1 + (i - 5) / 50, rotate
    # -10..10 degrees, jitter 4) on the decorrelated Fourier parametrisation, Adam 0.05, 512 steps
    "lucid": Recipe(scales=tuple(1 + (i - 5) / 50 for i in range(11)), degrees=10.0, decay_power=1.0,
                    objective="logit", opacity_penalty=0.0, batch=1),
    # the default: lucid's, on a transparent picture over random backgrounds, maximising log p_c, with
    # the transforms and the image prior widened to the shapes data's: any rotation and scales 0.75..1.25
    # (its objects come at every angle and at 30-60% of the side), and a 1/f^1.5 spectrum (lucid's 1/f
    # is that of photographs; a flat-coloured silhouette's amplitude falls as 1/f^1.4-1.8); each step
    # averages 4 draws of transform and background (expectation over transformation), 512 steps
    "default": Recipe(),
}.items()}


def class_model(model, target, recipe=None, *, seed=0, snapshot_every=0, progress=None, return_history=False,
                **changes):
    """The library's recipe: gradient ascent on ``objective_c(T(I)) - l2 * ||I||^2`` (T: a random
    transform each step), or, with an opacity channel, on the picture over random backgrounds; returns
    I (3, H, W) in the model's input space.

    recipe : a :class:`Recipe` (None: the default's, ``PRESETS["default"]``); ``changes`` replace its
        fields: ``class_model(model, c, steps=100)``, ``class_model(model, c, **PRESETS["lucid"])``
    seed : of the random draws (the Fourier image's start, the transforms, the backgrounds)
    progress : a tqdm-like object with ``update(1)`` and ``set_postfix``, optional
    return_history : also return a dict with 'scores' (S_c per step, of the transformed image the
        step saw; with an opacity channel, their mean over the batch), 'final_score' (S_c of the
        returned image), 'snapshots' ((step, image) pairs every ``snapshot_every`` steps) and, with an
        opacity channel, 'alpha' (the opacity, (H, W))
    """
    return class_models(model, [target], recipe, seed=seed, snapshot_every=snapshot_every, progress=progress,
                        return_history=return_history, **changes)[0]


#: a step of class models side by side sends at most this many pixels through the network (classes x
#: draws x H x W, so that memory stays that of a small batch); more classes run in groups, one group after
#: the other (64x64 with the default's 4 draws: 16 classes at a time; 224x224: one)
SIDE_BY_SIDE_PIXELS = 2**18


def classes_per_batch(model, recipe=None):
    """How many classes :func:`class_models` runs side by side on ``model`` with ``recipe``."""
    H, W = model.config.input_size
    return max(1, SIDE_BY_SIDE_PIXELS // ((recipe or Recipe()).batch * H * W))


def class_models(model, targets, recipe=None, *, seed=0, snapshot_every=0, progress=None, return_history=False,
                 **changes):
    """:func:`class_model` of each class in ``targets``, the classes side by side: a list of what
    ``class_model(model, c, ...)`` returns for each c, with the same arguments.

    The random draws depend on the seed alone, not on the class, so every class sees the same ones: each
    step draws once, and the images of all the classes go through the network in one batch, up to
    ``classes_per_batch`` classes at a time (``progress`` counts each group's steps). A class's ascent
    is the one ``class_model`` makes, but the larger batch's convolutions may round differently (more
    tiles can switch Winograd F(2x2) to F(4x4): fast/conv.py), and the ascent follows the last bits.
    """
    recipe = dataclasses.replace(recipe or Recipe(), **changes)
    targets = list(targets)
    ts = [int(t) for t in targets_for(targets, len(targets), model.config.num_classes)]
    per = classes_per_batch(model, recipe)
    return [result for i in range(0, len(ts), per) for result in _side_by_side(
        model, ts[i:i + per], recipe, seed, snapshot_every, progress, return_history)]


def _side_by_side(model, ts, recipe, seed, snapshot_every, progress, return_history):
    """The ascent of the classes ``ts`` in one batch per step (class_models)."""
    rng = np.random.default_rng(seed)
    first = Canvas(model, recipe, rng)                                    # the draws go on from rng
    canvases = [first] + [copy.deepcopy(first) for _ in ts[1:]]
    moments = [(np.zeros_like(c.variable), np.zeros_like(c.variable)) for c in canvases]
    scores, snapshots = [[] for _ in ts], [[] for _ in ts]
    with frozen(model):
        for step in range(recipe.steps):
            if recipe.opacity_penalty:
                draws = random_draws(recipe, rng, first)
                step_scores, ascents = transparent_step(model, [c.fourier for c in canvases], draws, ts,
                                                        recipe.objective, recipe.opacity_penalty, first.bgr)
            else:
                step_scores, ascents = opaque_step(model, canvases, recipe.transform(rng, first.image.shape),
                                                   ts, recipe.objective, recipe.l2)
            for k, canvas in enumerate(canvases):
                scores[k].append(step_scores[k])
                canvas.move(optimizer_step(ascents[k], *moments[k], step, recipe.lr, recipe.optimizer))
                if snapshot_every and (step + 1) % snapshot_every == 0:
                    snapshots[k].append((step + 1, canvas.picture()))
            if progress is not None:
                progress.update(1)
                progress.set_postfix(score=f"{np.mean(step_scores):.3f}")
        images = [canvas.picture() for canvas in canvases]
        finals = _score_gradients(model, np.stack(images), ts)[0] if return_history else None
    images = [image.astype(model.parameters()[0].dtype, copy=False) for image in images]
    if not return_history:
        return images
    results = []
    for k, canvas in enumerate(canvases):
        history = {"scores": scores[k], "final_score": float(finals[k]), "snapshots": snapshots[k]}
        if canvas.alpha is not None:
            history["alpha"] = canvas.alpha[0]
        results.append((images[k], history))
    return results


def opaque_step(model, canvases, T, ts, objective, l2):
    """One step's S_c and d J / d variable of each opaque picture I (one canvas per class in ``ts``), for
    J = objective_c(T(I)) - l2 ||I||^2 (T a RandomAffine, or None), the pictures in one batch."""
    images = np.stack([canvas.image for canvas in canvases])              # (K, 3, H, W)
    scores, grads = _score_gradients(model, T(images) if T else images, ts, objective)
    if T:
        grads = T.adjoint(grads)
    return scores, [canvas.backward(grad - np.float32(2 * l2) * canvas.image)    # d/dI ||I||^2 = 2 I
                    for canvas, grad in zip(canvases, grads)]


def random_draws(recipe, rng, canvas):
    """This step's ``recipe.batch`` (background, transform) pairs of the transparent recipe: each
    background in pixels 0..1, RGB (3, H, W); each transform a RandomAffine or None."""
    from .transforms import random_background
    shape = canvas.image.shape
    return [(random_background(rng, shape, canvas.fourier.scale_f, canvas.shown_on), recipe.transform(rng, shape))
            for _ in range(recipe.batch)]


def transparent_step(model, fouriers, draws, ts, objective, opacity_penalty, bgr=False):
    """One step's mean S_c and d J / d spectrum of each class's transparent picture (``fouriers``: one
    FourierImage with an alpha channel per class in ``ts``), for

        J = mean over draws of objective_c(T(picture)) - opacity_penalty * mean(alpha),
        picture = alpha rgb + (1 - alpha) background

    (``draws``: (background, T) pairs, the background in pixels 0..1, RGB (3, H, W), T a RandomAffine or
    None; ``bgr``: the model takes BGR). Every class's picture under every draw goes through the
    network in one batch. Averaging over several draws is expectation over transformation (Athalye et
    al. 2018)."""
    rgb, alpha = (np.stack(a) for a in zip(*(f.pixels() for f in fouriers)))   # (K, 3 | 1, H, W)
    f = fouriers[0]
    seen = []
    for background, T in draws:
        x = f.to_model(alpha * rgb + (1 - alpha) * background)
        x = x[:, ::-1].copy() if bgr else x
        seen.append(T(x) if T else x)
    scores, grads = _score_gradients(model, np.concatenate(seen), np.tile(ts, len(draws)), objective)
    K = len(fouriers)
    d_rgb, d_alpha = 0, 0
    for i, (background, T) in enumerate(draws):
        grad = grads[i * K:(i + 1) * K]
        if T:
            grad = T.adjoint(grad)
        d_pixels = (grad[:, ::-1] if bgr else grad) * f.pixel_scale / f.std      # d/d(picture pixels, RGB)
        d_rgb = d_rgb + d_pixels * alpha
        d_alpha = d_alpha + (d_pixels * (rgb - background)).sum(1, keepdims=True)
    n = np.asarray(len(draws), alpha.dtype)
    H, W = alpha.shape[2:]
    penalty = np.asarray(opacity_penalty / (H * W), alpha.dtype)
    mean_scores = scores.reshape(len(draws), K).mean(0)
    return ([float(v) for v in mean_scores],
            [fourier.pixels_backward(d_rgb[k] / n, rgb[k], d_alpha[k] / n - penalty, alpha[k])
             for k, fourier in enumerate(fouriers)])


def optimizer_step(ascent, m1, m2, step, lr, optimizer):
    """The change of the variable: lr * ascent (SGD), or Adam's (moments m1, m2 updated in place)."""
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
