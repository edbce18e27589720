"""Sanity checks for saliency maps: cascading model randomisation (Adebayo et al. 2018).

A saliency method that explains the *network* must change when the network's weights are
destroyed. Starting from the logits, re-initialise one more stage at each step, as at the start of
training, recompute each method's map and compare it with the trained network's map of the same
image and class:

    stages = ["none", "fc5", "fc4", "conv3_2", ...]          # "none": the trained network itself
    spearman_abs : Spearman rank correlation of |map|, the paper's map max_c |g| (H, W)
    spearman     : Spearman rank correlation of the signed map, the gradient summed over channels (H, W)
    ssim         : SSIM of the two |map|s, each scaled by its own maximum to [0, 1] (data_range 1)

each averaged over the images. Grad-CAM and guided Grad-CAM give a map, not a signed input gradient
(a Grad-CAM map is >= 0 by its ReLU and has no colour channels): their maps are compared by the
Spearman of |map| and SSIM, and their ``spearman`` is None (not applicable).

Adebayo et al.'s finding: the gradient changes as layers are randomised; guided backprop barely
changes when the top layers are, so its picture shows the image more than the network.
``scipy.stats.spearmanr`` and ``skimage.metrics.structural_similarity`` do the measuring.

What a stage re-initialises (:func:`stages`):

* ``by="block"`` (the default): the weight layers of one block of the table. A VGG has no blocks
  in this sense (``conv3_2`` is a layer of the table), so each of its weight layers is a stage. A
  ResNet's stages are ``fc``, then its residual blocks from the last (``layer4.2``: conv1..conv3
  and the downsample, if any), down to the stem ``conv1``: as Adebayo et al. randomised Inception
  v3 block by block. ResNet-50 has 18 stages this way, ResNet-152 52.
* ``by="layer"``: one weight layer per stage (ResNet-50: 54 stages).

Re-initialised as at the start of training: a convolution or fc layer He normal (``std =
sqrt(2 / fan_in)``) with zero bias; the batch norm that follows a convolution in the table
(``bn2`` after ``conv2``, ``downsample.1`` after ``downsample.0``) with it, as a new BatchNorm2d:
weight 1, bias 0, running mean 0, running variance 1 (so in eval mode it is the identity, up to
``1 / sqrt(1 + eps)``). A trained BN left in place would rescale each random channel by its
trained statistics, which belong to the trained convolution, not to the new one.
"""
import math

import numpy as np

import minigrad as mg
from minigrad import nn

from .gradients import input_gradient
from .maps import METHODS, method_maps, saliency_map, smoothgrad

#: the methods whose output is a signed input gradient (N, 3, H, W); the others of METHODS give a map
GRADIENT_METHODS = ("gradient", "deconvnet", "guided", "smoothgrad")
MEASURES = ("spearman_abs", "spearman", "ssim")
GRANULARITIES = ("block", "layer")                  # what one stage re-initialises (stages)


def weight_layers(model):
    """The layers with weights, in network order (conv1_1 ... fc_last)."""
    return list(model.weight_layers)


def block_of(model, name):
    """The block of the table a layer belongs to: the longest table name that is a dotted prefix of
    it (``layer4.2.conv3`` -> ``layer4.2``), else the layer itself (``fc``, ``conv1_1``)."""
    parts = name.split(".")
    prefixes = [".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
    return next((p for p in prefixes if p in model.layer_names), name)


def norms_after(model, name):
    """The batch norm layers that follow weight layer ``name`` in the table, before the next one."""
    table, found = model.layer_names, []
    for other in table[table.index(name) + 1:]:
        if other in model.weight_layers:
            break
        if isinstance(model.layer(other), nn.BatchNorm2d):
            found.append(other)
    return found


def stages(model, by="block"):
    """[(stage, [layers it re-initialises])], from the logits down; see the module docstring.

    The layers are weight layers, each followed by its batch norms (if any)."""
    if by not in GRANULARITIES:
        raise ValueError(f"stages by {by!r}: use one of {', '.join(GRANULARITIES)}")
    groups = {}
    for name in weight_layers(model):
        key = block_of(model, name) if by == "block" else name
        groups.setdefault(key, []).extend([name] + norms_after(model, name))
    return list(groups.items())[::-1]


def reinitialise(layer, rng):
    """In place, in the layer's dtype and device, as at the start of training: a convolution or a
    linear layer He normal (std sqrt(2 / fan_in)) with zero bias; a batch norm weight 1, bias 0,
    running mean 0, running variance 1, no batches tracked."""
    if isinstance(layer, nn.BatchNorm2d):
        layer.weight.data[...] = 1
        layer.bias.data[...] = 0
        layer.running_mean[...] = 0
        layer.running_var[...] = 1
        layer.num_batches_tracked[...] = 0
        return
    w = layer.weight.data
    shape = tuple(w.shape)
    fan_in = int(np.prod(shape[1:]))                            # conv (out, in, kh, kw); linear (out, in)
    new = rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / fan_in))
    layer.weight.data[...] = mg.get_array_module(w).asarray(new.astype(w.dtype, copy=False))
    if getattr(layer, "bias", None) is not None:
        layer.bias.data[...] = 0


def method_gradient(model, batch, targets, method, smooth_n=16, smooth_sigma=0.15, seed=0):
    """(N, 3, H, W) input gradient of each image's target class under ``method`` (of GRADIENT_METHODS),
    or for Grad-CAM and guided Grad-CAM their maps (N, H, W) (``method_maps``)."""
    if method == "smoothgrad":
        return np.stack([smoothgrad(model, x[None], int(t), n=smooth_n, sigma=smooth_sigma, seed=seed + k)[0]
                         for k, (x, t) in enumerate(zip(batch, targets))])
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method not in GRADIENT_METHODS:
        return method_maps(model, batch, targets, method)
    return mg.backend.to_numpy(input_gradient(model, batch, targets, rule=method))


def compare(reference, other):
    """{measure: value} between two gradients (3, H, W), or two maps (H, W) (Grad-CAM: no signed
    gradient, so ``spearman`` is None): see the module docstring."""
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    if reference.ndim == 2:
        a, b = np.abs(reference).astype(np.float64), np.abs(other).astype(np.float64)
    else:
        a, b = saliency_map(reference).astype(np.float64), saliency_map(other).astype(np.float64)

    def rank(u, v):
        if np.ptp(u) == 0 or np.ptp(v) == 0:                 # a constant map has no ranking
            return 0.0
        return float(spearmanr(u.ravel(), v.ravel())[0])

    def unit(m):
        return m / m.max() if m.max() > 0 else m
    signed = None
    if reference.ndim == 3:
        signed = rank(reference.sum(axis=0, dtype=np.float64), other.sum(axis=0, dtype=np.float64))
    return {"spearman_abs": rank(a, b), "spearman": signed,
            "ssim": float(structural_similarity(unit(a), unit(b), data_range=1.0))}


def cascading_randomisation(model, batch, targets, methods=METHODS, seed=0, smooth_n=16, progress=None,
                            by="block"):
    """Run the cascade on ``batch`` (N, 3, H, W) with one target class per image.

    ``by``: "block" or "layer", what one stage re-initialises (:func:`stages`).
    Returns ``(result, maps)``: ``result`` is ``{"stages": [...], "methods": {method: {measure:
    [one value per stage, averaged over the images, or None where it does not apply]}}}``;
    ``maps[method]`` is a list of (N, H, W) arrays, the method's map at each stage (for figures). The
    model's weights and batch-norm statistics are restored at the end, also after an error or an
    interrupt. ``progress`` gets ``update(1)`` per stage and method.
    """
    batch = np.ascontiguousarray(mg.backend.to_numpy(batch))
    targets = np.broadcast_to(np.atleast_1d(targets), (batch.shape[0],)).astype(np.int64)
    plan = [("none", [])] + stages(model, by)
    saved = {n: {k: v.copy() for k, v in model.layer(n).state_dict().items()} for _, group in plan for n in group}
    rng = np.random.default_rng(seed)
    result = {m: {k: [] for k in MEASURES} for m in methods}
    maps = {m: [] for m in methods}
    reference = {}
    try:
        for stage, group in plan:
            for name in group:
                reinitialise(model.layer(name), rng)
            for m in methods:
                g = method_gradient(model, batch, targets, m, smooth_n=smooth_n, seed=seed)
                if stage == "none":
                    reference[m] = g
                scores = [compare(r, o) for r, o in zip(reference[m], g)]
                for k in MEASURES:
                    values = [s[k] for s in scores]
                    result[m][k].append(None if None in values else float(np.mean(values)))
                maps[m].append(g if g.ndim == 3 else saliency_map(g))
                if progress is not None:
                    progress.update(1)
    finally:
        for n, state in saved.items():
            model.layer(n).load_state_dict(state)
    return {"stages": [name for name, _ in plan], "methods": result}, maps
