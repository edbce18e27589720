"""Sanity checks for saliency maps: cascading model randomisation (Adebayo et al. 2018).

A saliency method that explains the *network* must change when the network's weights are
destroyed. Starting from the logits, re-initialise one more weight layer at each stage, as at the
start of training (He normal, ``std = sqrt(2 / fan_in)``, zero bias), recompute each method's map
and compare it with the trained network's map of the same image and class:

    stages = ["none", "fc5", "fc4", "conv3_2", ...]          # "none": the trained network itself
    spearman_abs : Spearman rank correlation of |map|, the paper's map max_c |g| (H, W)
    spearman     : Spearman rank correlation of the signed map, the gradient summed over channels (H, W)
    ssim         : SSIM of the two |map|s, each scaled by its own maximum to [0, 1] (data_range 1)

each averaged over the images. Adebayo et al.'s finding: the gradient changes as layers are
randomised; guided backprop barely changes when the top layers are, so its picture shows the
image more than the network. ``scipy.stats.spearmanr`` and ``skimage.metrics.structural_similarity``
do the measuring.
"""
import math

import numpy as np

import minigrad as mg

from .gradients import input_gradient
from .maps import saliency_map, smoothgrad

METHODS = ("gradient", "deconvnet", "guided", "smoothgrad")
MEASURES = ("spearman_abs", "spearman", "ssim")


def weight_layers(model):
    """The layers with weights, in network order (conv1_1 ... fc_last)."""
    return list(model.weight_layers)


def reinitialise(layer, rng):
    """He-normal weight (std sqrt(2 / fan_in)) and zero bias, in place, in the layer's dtype and device."""
    w = layer.weight.data
    shape = tuple(w.shape)
    fan_in = int(np.prod(shape[1:]))                            # conv (out, in, kh, kw); linear (out, in)
    new = rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / fan_in))
    layer.weight.data[...] = mg.get_array_module(w).asarray(new.astype(w.dtype, copy=False))
    if getattr(layer, "bias", None) is not None:
        layer.bias.data[...] = 0


def method_gradient(model, batch, targets, method, smooth_n=16, smooth_sigma=0.15, seed=0):
    """(N, 3, H, W) input gradient of each image's target class under ``method``."""
    if method == "smoothgrad":
        return np.stack([smoothgrad(model, x[None], int(t), n=smooth_n, sigma=smooth_sigma, seed=seed + k)[0]
                         for k, (x, t) in enumerate(zip(batch, targets))])
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return mg.backend.to_numpy(input_gradient(model, batch, targets, rule=method))


def compare(reference, other):
    """{measure: value} between two gradients (3, H, W): see the module docstring."""
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    a, b = saliency_map(reference).astype(np.float64), saliency_map(other).astype(np.float64)
    sa, sb = reference.sum(axis=0, dtype=np.float64), other.sum(axis=0, dtype=np.float64)

    def rank(u, v):
        if np.ptp(u) == 0 or np.ptp(v) == 0:                 # a constant map has no ranking
            return 0.0
        return float(spearmanr(u.ravel(), v.ravel())[0])

    def unit(m):
        return m / m.max() if m.max() > 0 else m
    return {"spearman_abs": rank(a, b), "spearman": rank(sa, sb),
            "ssim": float(structural_similarity(unit(a), unit(b), data_range=1.0))}


def cascading_randomisation(model, batch, targets, methods=METHODS, seed=0, smooth_n=16, progress=None):
    """Run the cascade on ``batch`` (N, 3, H, W) with one target class per image.

    Returns ``(result, maps)``: ``result`` is ``{"stages": [...], "methods": {method: {measure:
    [one value per stage, averaged over the images]}}}``; ``maps[method]`` is a list of (N, H, W)
    arrays, the paper's map at each stage (for figures). The model's weights are restored at the end,
    also after an error or an interrupt. ``progress`` gets ``update(1)`` per stage and method.
    """
    batch = np.ascontiguousarray(mg.backend.to_numpy(batch))
    targets = np.broadcast_to(np.atleast_1d(targets), (batch.shape[0],)).astype(np.int64)
    layers = weight_layers(model)
    stages = ["none"] + layers[::-1]                            # from the logits down
    saved = {n: (getattr(model, n).weight.data.copy(), getattr(model, n).bias.data.copy()) for n in layers}
    rng = np.random.default_rng(seed)
    result = {m: {k: [] for k in MEASURES} for m in methods}
    maps = {m: [] for m in methods}
    reference = {}
    try:
        for stage in stages:
            if stage != "none":
                reinitialise(getattr(model, stage), rng)
            for m in methods:
                g = method_gradient(model, batch, targets, m, smooth_n=smooth_n, seed=seed)
                if stage == "none":
                    reference[m] = g
                scores = [compare(r, o) for r, o in zip(reference[m], g)]
                for k in MEASURES:
                    result[m][k].append(float(np.mean([s[k] for s in scores])))
                maps[m].append(saliency_map(g))
                if progress is not None:
                    progress.update(1)
    finally:
        for n, (w, b) in saved.items():
            getattr(model, n).weight.data[...] = w
            getattr(model, n).bias.data[...] = b
    return {"stages": stages, "methods": result}, maps
