"""The library's answers to the exercises, under the exercises' names and signatures
(``DEEPINSIDE_EXERCISES=reference``): what the graders are tested against. Each is a thin call into
the library; docs/exercises.md names the file and function where the answer is written out."""
from types import SimpleNamespace

import numpy as np

import minigrad as mg
import saliency
from minigrad import relu_rules, simple
from minigrad.tensor import Context
from saliency import evaluation
from saliency.localise import bounding_box, largest_component, pairwise_weights, quantile_labels
from saliency.gmm import GMM


def _conv2d_forward(x, w, b, stride, padding):
    ctx = Context((False, False, False))
    return simple.Conv2d.forward(ctx, x, w, b, stride=stride, padding=padding)


def _conv2d_backward(x, w, g, stride, padding):
    ctx = Context((True, True, True))
    simple.Conv2d.forward(ctx, x, w, np.zeros(w.shape[0], x.dtype), stride=stride, padding=padding)
    return simple.Conv2d.backward(ctx, g)


def _max_pool_forward(x, kernel, stride):
    ctx = Context((True,))
    out = simple.MaxPool2d.forward(ctx, x, kernel_size=(kernel, kernel), stride=(stride, stride))
    return out, ctx                                      # the switches: kept in the op's context


def _max_pool_backward(g, switches, x_shape, kernel, stride):
    return simple.MaxPool2d.backward(switches, g)


def _gmm(weights, means, covs, reg_covar=1e-6):
    g = GMM(len(weights), reg_covar=reg_covar)
    g.weights_, g.means_, g.covs_, g.n_components_ = weights, means, covs, len(weights)
    return g


def _em_step(X, weights, means, covs, reg_covar):
    g = _gmm(weights, means, covs, reg_covar)
    g.em_step(X)
    return g.weights_, g.means_, g.covs_


def _quantile_labels(smap, fg_quantile, bg_quantile):
    fg, bg, _ = quantile_labels(smap, fg_quantile, bg_quantile)
    return fg, bg


def _deconvnet(model, image, layer):
    return saliency.layer_gradient(model, image[None], layer, rule="deconvnet")[0][0]


ANSWERS = {
    1: SimpleNamespace(gradient=relu_rules.gradient, deconvnet=relu_rules.deconvnet, guided=relu_rules.guided),
    2: SimpleNamespace(conv2d_forward=_conv2d_forward, conv2d_backward=_conv2d_backward),
    3: SimpleNamespace(max_pool_forward=_max_pool_forward, max_pool_backward=_max_pool_backward),
    4: SimpleNamespace(saliency_map=lambda model, image, c: saliency.saliency_map(
        saliency.input_gradient(model, image[None], c))[0]),
    5: SimpleNamespace(
        class_model_step=lambda model, image, c, lr, l2: saliency.paper_class_model(
            model, c, steps=1, lr=lr, l2=l2, start=image),
        paper_class_model=lambda model, c, steps, lr, l2: saliency.paper_class_model(model, c, steps, lr, l2)),
    6: SimpleNamespace(deconvnet_reconstruction=_deconvnet),
    7: SimpleNamespace(em_step=_em_step),
    8: SimpleNamespace(quantile_labels=_quantile_labels, pairwise_weights=pairwise_weights,
                       log_density=lambda X, weights, means, covs: _gmm(weights, means, covs).log_prob(X)),
    9: SimpleNamespace(largest_component=largest_component, bounding_box=bounding_box,
                       devkit_iou=evaluation.devkit_iou),
    10: SimpleNamespace(grad_cam=lambda model, batch, c, layer: mg.backend.to_numpy(
        saliency.grad_cam(model, batch, c, layer=layer, upsample=False))),
}
