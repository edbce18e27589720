"""Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017): the comparison every peer tool offers.

Grad-CAM weighs the feature maps ``A^k`` of one convolutional layer by how much the class score
``S_c`` (the logit, as everywhere here) depends on them on average, keeps the positive part and
resamples it to the input::

    alpha_k = mean over (i, j) of dS_c / dA^k_ij         (one number per channel k)
    L       = ReLU( sum_k alpha_k A^k )                   (h, w): the layer's grid
    map     = bilinear(L) to the input's (H, W)           (torch's interpolate, align_corners=False)

The default layer is the last convolutional block's output: a VGG's last ReLU after its last
convolution (``relu5_3`` in VGG16, TorchRay's ``features.29``), a ResNet's last stage
(``layer4``). Any layer of ``model.layer_names`` with a spatial output works.

Guided Grad-CAM multiplies the guided-backprop input gradient by the upsampled Grad-CAM map.
"""
import re

import numpy as np

import minigrad as mg
from minigrad import nn

from .gradients import _input_tensor, class_scores, frozen, input_gradient, targets_for
from .maps import saliency_map


def default_layer(model):
    """The last convolutional block's output: a ResNet's last stage (``layer4``), else the first ReLU
    after the last convolution (VGG16: ``relu5_3``), else that convolution."""
    names = model.layer_names
    stages = [n for n in names if re.fullmatch(r"layer\d+", n)]
    if stages:
        return stages[-1]
    convs = [n for n in names if isinstance(model.layer(n), nn.Conv2d)]
    if not convs:
        raise ValueError(f"Grad-CAM needs a convolutional layer; this {model.arch} has none")
    after = names[names.index(convs[-1]) + 1:]
    return next((n for n in after if isinstance(model.layer(n), nn.ReLU)), convs[-1])


def activation_and_gradient(model, batch, target, layer):
    """(A, dS_c/dA, (H, W)) at ``layer`` for each image and its target class: arrays on the model's
    device, and the input's size.

    The backward runs under the gradient rule whatever rule is in force (Grad-CAM is defined on the
    gradient). Asking the model for ``layer`` keeps that layer's own output in the graph (the networks
    fuse only what nobody asked for).
    """
    x = _input_tensor(batch, model)
    last = model.layer_names[-1]
    with frozen(model):
        found = model(x, until=[layer, last])
        act, logits = found[layer], found[last]
        scores = class_scores(logits, targets_for(target, x.shape[0], logits.shape[1]))
        act.retain_grad()
        with mg.relu_rule("gradient"):
            scores.sum().backward()
    if act.grad is None:
        raise RuntimeError(f"Grad-CAM: no gradient reached layer {layer!r}")
    return act.data, act.grad, tuple(x.shape[2:])


def grad_cam(model, batch, target, layer=None, upsample=True):
    """Grad-CAM maps of ``batch`` (N, 3, H, W), each image for its own ``target`` (int or one per image).

    ``layer``: a name of ``model.layer_names`` (None: :func:`default_layer`); its output must be
    (N, C, h, w). Returns (N, H, W), or with ``upsample=False`` (N, h, w) at the layer's size, in the
    model's dtype, on the model's device (as ``input_gradient``). A bad layer name is a ValueError
    that lists the layers.
    """
    layer = default_layer(model) if layer is None else layer
    acts, grads, size = activation_and_gradient(model, batch, target, layer)
    if acts.ndim != 4:
        raise ValueError(f"Grad-CAM needs a layer with a spatial output (N, C, h, w); {layer!r} gives "
                         f"{tuple(acts.shape)}")
    xp = mg.get_array_module(acts)
    alpha = grads.mean(axis=(2, 3), keepdims=True)                   # (N, C, 1, 1)
    cam = xp.maximum((alpha * acts).sum(axis=1), 0)                  # (N, h, w)
    if not upsample:
        return cam
    return resize_bilinear(cam, size)


def bilinear_weights(n_in, n_out):
    """(n_out, n_in) float64 matrix: output pixel i as a weighted sum of input pixels, as
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` computes it.

    The half-pixel convention: pixel i covers [i, i + 1) and its value sits at its centre i + 0.5.
    The output's centre (i + 0.5) is at (i + 0.5) * n_in / n_out in input units, i.e. between input
    centres at source coordinate s = (i + 0.5) * n_in / n_out - 0.5. torch clamps s below at 0 (the
    first half pixel copies the edge); above, s < n_in - 0.5 always and the right neighbour is clamped
    to the last pixel. Weights: 1 - (s - floor(s)) on floor(s), s - floor(s) on the next pixel.
    No antialiasing: downsampling also reads only the two nearest pixels.
    """
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    weights = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(weights, (rows, i0), 1 - frac)
    np.add.at(weights, (rows, i1), frac)                            # on i0 again at the last pixel
    return weights


def resize_bilinear(maps, size):
    """(N, h, w) or (h, w) -> (..., H, W), bilinear with the half-pixel convention of
    ``bilinear_weights``: one matrix per axis, ``Wy @ map @ Wx.T``, in the maps' dtype and device."""
    xp = mg.get_array_module(maps)
    H, W = size
    h, w = maps.shape[-2:]
    wy = xp.asarray(bilinear_weights(h, H).astype(maps.dtype))      # (H, h)
    wx = xp.asarray(bilinear_weights(w, W).astype(maps.dtype))      # (W, w)
    return wy @ maps @ wx.T                                          # (..., H, h) @ (h, w) @ (w, W)


def guided_grad_cam(model, batch, target, layer=None):
    """Guided Grad-CAM (N, H, W): the saliency map of the guided-backprop input gradient (max over the
    colour channels of |g|, as ``saliency_map``) times the upsampled Grad-CAM map.

    Selvaraju et al. multiply the guided gradient (N, 3, H, W) by the map elementwise in each channel;
    the map is >= 0, so max_c |g_c * cam| = cam * max_c |g_c|: this is that product reduced over the
    channels as the paper's maps are. On the model's device, in its dtype.
    """
    cam = grad_cam(model, batch, target, layer, upsample=True)
    return saliency_map(input_gradient(model, batch, target, rule="guided")) * cam
