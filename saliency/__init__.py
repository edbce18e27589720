"""The paper's methods on top of minigrad and models.

    g = saliency.input_gradient(model, batch, target, rule="gradient")   # (N, 3, H, W)
    m = saliency.saliency_map(g)                                          # (N, H, W)
    img = saliency.class_model(model, target)                            # (3, H, W): the library's recipe
    imgs = saliency.class_models(model, targets)                         # the same, the classes side by side
    img = saliency.paper_class_model(model, target, steps=300, lr=1.0, l2=1e-3)   # the paper's loop
    cam = saliency.grad_cam(model, batch, target, layer=None)             # (N, H, W)
    mask, box = saliency.localise(rgb, smap)
"""
from .class_model import Recipe, class_model, class_models, paper_class_model, tutorial_class_model
from .gradcam import grad_cam, guided_grad_cam
from .gradients import class_scores, input_gradient, layer_gradient
from .localise import localise
from .maps import saliency_map, smoothgrad, ten_crop_saliency

__all__ = ["input_gradient", "layer_gradient", "class_scores", "saliency_map", "smoothgrad",
           "ten_crop_saliency", "class_model", "class_models", "paper_class_model", "tutorial_class_model", "Recipe",
           "localise", "grad_cam", "guided_grad_cam"]
