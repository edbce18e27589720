"""Saliency maps from input gradients (paper Sec. 3.1), SmoothGrad, and the 10-crop average.

The paper's map of an RGB image is ``M_ij = max_c |w_(i,j,c)|``: one number per pixel, the largest
magnitude of the class score's derivative over the three colour channels.
"""
import numpy as np

import minigrad as mg

from .gradients import _input_tensor, gradient_of_scores, input_gradient, rule_in_force

REDUCTIONS = ("max", "sum")

#: Every map method the scripts and tools offer (``--method``), computed by :func:`method_maps`:
#: the input gradient under a ReLU rule (the paper's, the deconvnet's, guided backprop's), SmoothGrad
#: (of the gradient), Grad-CAM and guided Grad-CAM (gradcam.py).
METHODS = ("gradient", "deconvnet", "guided", "smoothgrad", "gradcam", "guided-gradcam")


def saliency_map(g, reduce="max"):
    """(N, C, H, W) gradient -> (N, H, W) map: max over channels of |g| (the paper), or the sum.

    A (C, H, W) gradient gives an (H, W) map. For one channel (grey images) both are |g|.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {', '.join(REDUCTIONS)}, got {reduce!r}")
    xp = mg.get_array_module(g)
    if g.ndim not in (3, 4):
        raise ValueError(f"expected a gradient (N, C, H, W) or (C, H, W), got shape {tuple(g.shape)}")
    a = xp.abs(g)
    return a.max(axis=-3) if reduce == "max" else a.sum(axis=-3)


def smoothgrad(model, batch, target, n=50, sigma=0.15, rule=None, chunk=16, seed=0, progress=None):
    """SmoothGrad (Smilkov et al. 2017): the input gradient averaged over ``n`` noisy copies.

    ``rule``: the ReLU rule of each pass (None: the rule in force when called).
    Noise is Gaussian with std ``sigma * (max - min)`` of each image (relative to its range).
    Copies are processed ``chunk`` at a time so memory stays bounded. Returns the averaged gradient
    (N, C, H, W) on the model's device, like ``input_gradient``; take ``saliency_map`` of it for the map.

    Everything stays on the model's device: the batch goes there once, the noise is drawn there
    (``xp.random.default_rng(seed)``) and the sum is kept there, so a GPU never waits for the host
    between chunks.
    """
    rule = rule_in_force(rule)
    x = _input_tensor(batch, model).data                               # checked once, on the device
    xp = mg.get_array_module(x)
    rng = xp.random.default_rng(seed)
    total = xp.zeros_like(x)
    targets = np.broadcast_to(np.atleast_1d(target), (x.shape[0],))   # each pass checks its range
    for k, image in enumerate(x):                                      # (C, H, W)
        span = image.max() - image.min()
        std = sigma * xp.where(span > 0, span, 1).astype(x.dtype)       # a 0-d array: no wait for its value
        done = 0
        while done < n:
            m = min(chunk, n - done)
            noise = rng.standard_normal((m,) + image.shape, dtype=xp.float32).astype(x.dtype, copy=False)
            noisy = image[None] + noise * std                          # (m, C, H, W)
            g = gradient_of_scores(model, mg.Tensor(noisy, requires_grad=True), int(targets[k]), rule=rule)
            total[k] += g.sum(axis=0)
            done += m
            if progress is not None:
                progress.update(m)
    return total / n


def method_maps(model, batch, targets, method, smooth_n=50, smooth_sigma=0.15, seed=0, progress=None):
    """(N, H, W) maps of ``batch`` (N, 3, H, W), each image for its own class, by ``method`` (one of
    ``METHODS``), as a NumPy array in the model's dtype.

    gradient, deconvnet, guided: ``saliency_map`` of the input gradient under that ReLU rule;
    smoothgrad: of SmoothGrad's averaged gradient (the gradient rule; ``smooth_n`` noisy copies of
    noise ``smooth_sigma``, drawn from ``seed``; ``progress`` gets ``update`` per pass); gradcam: Grad-CAM
    at the default layer, upsampled to the input; guided-gradcam: guided Grad-CAM.
    """
    from .gradcam import grad_cam, guided_grad_cam
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "smoothgrad":
        g = smoothgrad(model, batch, targets, n=smooth_n, sigma=smooth_sigma, rule="gradient", seed=seed,
                       progress=progress)
        m = saliency_map(g)
    elif method == "gradcam":
        m = grad_cam(model, batch, targets)
    elif method == "guided-gradcam":
        m = guided_grad_cam(model, batch, targets)
    else:
        m = saliency_map(input_gradient(model, batch, targets, rule=method))
    return mg.backend.to_numpy(m)


def ten_crops(height, width, crop):
    """The 10 classification crops of an image: 4 corners and the centre, each also mirrored.

    Returns a list of (y0, x0, mirrored) for a ``crop`` x ``crop`` window.
    """
    if crop > height or crop > width:
        raise ValueError(f"crop {crop} is larger than the image {height}x{width}")
    corners = [(0, 0), (0, width - crop), (height - crop, 0), (height - crop, width - crop),
               ((height - crop) // 2, (width - crop) // 2)]
    return [(y, x, m) for m in (False, True) for y, x in corners]


def ten_crop_saliency(model, image, target, crop=None, rule=None, reduce="max", method=None):
    """The paper's map averaged over the 10 crops, mapped back into image coordinates.

    image : (C, H, W) float in the model's input space, at least ``crop`` in each side.
    rule : the ReLU rule (None: the rule in force).
    method : None for the input gradient's map under ``rule`` (reduced by ``reduce``), or a name of
        ``METHODS`` but smoothgrad (``method_maps``: e.g. "gradcam", each crop's Grad-CAM map).
    Each crop's map is flipped back if the crop was mirrored and added where it came from; each
    pixel is averaged over the crops that contain it, all on the model's device. Returns (H, W), a
    NumPy array (the one copy back to the host).
    """
    C, H, W = image.shape
    if crop is None:
        h, w = model.config.input_size
        if h != w:
            raise ValueError(f"10 crops need a square input; this network takes {h}x{w}")
        crop = h
    windows = ten_crops(H, W, crop)
    image = mg.to_device(image, model.device)                          # once; crops, maps and sums stay there
    xp = mg.get_array_module(image)
    batch = xp.stack([image[:, y:y + crop, x:x + crop][:, :, ::-1] if m else image[:, y:y + crop, x:x + crop]
                      for y, x, m in windows])                          # (10, C, crop, crop)
    if method is None:
        maps = saliency_map(input_gradient(model, batch, target, rule), reduce)   # (10, crop, crop)
    elif method == "smoothgrad":
        raise ValueError("10 crops are not available with smoothgrad")
    else:
        maps = mg.to_device(method_maps(model, batch, target, method), model.device)
    total, count = xp.zeros((H, W), maps.dtype), xp.zeros((H, W), maps.dtype)
    for (y, x, m), smap in zip(windows, maps):
        total[y:y + crop, x:x + crop] += smap[:, ::-1] if m else smap
        count[y:y + crop, x:x + crop] += 1
    return mg.backend.to_numpy(total / xp.maximum(count, 1))
