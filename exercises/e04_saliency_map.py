"""Exercise 4: the image-specific class saliency map (paper Sec. 3).

    w = dS_c / dI at the image I_0   (one backward pass; S_c the class score, the logit, not the softmax)
    M[y, x] = max over channels of |w[:, y, x]|

Arguments: ``model`` a minigrad network (``model(mg.Tensor(batch))`` gives logits (N, classes)); ``image``
(3, H, W) float64 in the model's input space; ``c`` the class. Return M (H, W) as a NumPy array.
Hint: ``x = mg.Tensor(image[None], requires_grad=True)``, ``logits = model(x)``, ``logits[0, c].backward()``,
then ``x.grad``. The answer: saliency/gradients.py (input_gradient) and saliency/maps.py (saliency_map).
"""


def saliency_map(model, image, c):
    raise NotImplementedError("exercise 4: saliency_map(model, image, c)")
