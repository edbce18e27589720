"""Exercise 10: Grad-CAM (Selvaraju et al. 2017), the comparison that came after the paper.

For the activations A (C, h, w) of one layer and the class score S_c:

    alpha_k = mean over (i, j) of dS_c / dA[k, i, j]        (one weight per channel)
    L = ReLU(sum_k alpha_k A[k])                           (h, w)

Arguments: ``model``, ``batch`` (N, 3, H, W) float64, ``c`` the class, ``layer`` a name in
``model.layer_names``. Return L for each image, (N, h, w), as a NumPy array, at the layer's size (not
upsampled). Hint: ``model(x, until=[layer, model.layer_names[-1]])`` gives the activation and the
logits in one pass; ``act.retain_grad()`` keeps its gradient. The answer: saliency/gradcam.py.
"""


def grad_cam(model, batch, c, layer):
    raise NotImplementedError("exercise 10: grad_cam(model, batch, c, layer)")
