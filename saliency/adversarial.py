"""Projected gradient descent (Madry et al. 2018): the images within a small distance of a batch that
the network gets most wrong.

Like a saliency map it is a gradient of the network with respect to its input, taken with the weights
fixed; here of the cross-entropy, followed uphill for a few steps. ``scripts/train_shapes.py`` trains
on these images (adversarial training, for gradients that look like the object: Santurkar et al. 2019)
and ``experiments/robust_accuracy.py`` scores a network on them.
"""
import numpy as np

import minigrad as mg
from minigrad import functional as F

from .gradients import frozen


def _per_image(v, xp):
    """Per-image L2 norm of (N, ...) as (N, 1, 1, 1)."""
    return xp.sqrt((v * v).reshape(len(v), -1).sum(1)).reshape(-1, 1, 1, 1)


def pgd(model, x, y, eps, steps, norm, lo, hi, rng):
    """Projected gradient ascent on the cross-entropy within the eps-ball around x (N, 3, H, W).

    A random start in the ball, then ``steps`` steps of 2.5 * eps / steps: along the gradient
    normalised per image (``norm="l2"``) or its sign (``"linf"``); after each, projected back on the
    ball and into [lo, hi] (per channel, e.g. ``saliency.transforms.valid_range``). ``y`` holds the
    true classes (N,), ``rng`` a NumPy Generator for the start. The weights get no gradient; the
    model is left as it was. Returns the attacked batch, shaped and typed like x, on its device.
    """
    if norm not in ("l2", "linf"):
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
    xp = mg.backend.get_array_module(x)
    step = np.float32(2.5 * eps / steps)
    eps = np.float32(eps)
    noise = xp.asarray(rng.uniform(-1, 1, x.shape).astype(x.dtype))
    if norm == "l2":                                        # a random point on the sphere of radius eps
        delta = noise * (eps / _per_image(noise, xp))
    else:
        delta = noise * eps
    lo, hi = xp.asarray(lo, x.dtype), xp.asarray(hi, x.dtype)
    adv = xp.clip(x + delta, lo, hi)
    with frozen(model):
        for _ in range(steps):
            z = mg.Tensor(adv, requires_grad=True)
            F.cross_entropy(model(z), y).backward()
            g = z.grad
            if norm == "l2":
                adv = adv + step * g / (_per_image(g, xp) + np.float32(1e-12))
                delta = adv - x
                delta = delta * xp.minimum(np.float32(1), eps / (_per_image(delta, xp) + np.float32(1e-12)))
            else:
                delta = xp.clip(adv + step * xp.sign(g) - x, -eps, eps)
            adv = xp.clip(x + delta, lo, hi)
    return adv.astype(x.dtype, copy=False)
