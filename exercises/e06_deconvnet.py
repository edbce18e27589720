"""Exercise 6: a deconvnet reconstruction is a gradient (paper Sec. 4).

Zeiler & Fergus reconstruct a unit of layer n by running the network backwards from it: through each
convolution by its transposed filters, through each max pooling by the forward's switches, and through
each ReLU by keeping the positive part of the signal. The paper's point: that is exactly the gradient
of the unit with respect to the image, except at the ReLUs, where the gradient keeps [x > 0] and the
deconvnet keeps [R > 0]. So the reconstruction is one backward pass under another ReLU rule.

Return the deconvnet reconstruction (3, H, W), a NumPy array, of the strongest unit of ``layer`` (the
largest activation over all its channels and positions) for ``image`` (3, H, W) float64. Hint (with
``import minigrad as mg`` and ``import numpy as np``): ``x = mg.Tensor(image[None],
requires_grad=True)``, ``a = model(x, until=layer)``; ``a.data`` is its NumPy array, and
``a[np.unravel_index(a.data.argmax(), a.shape)]`` is the strongest unit as a Tensor; call its
``backward()`` inside ``with mg.relu_rule("deconvnet"):`` and read ``x.grad`` (a NumPy array). The
grader checks that the rule mattered: the plain gradient differs.
The answer: saliency/gradients.py, layer_gradient.
"""


def deconvnet_reconstruction(model, image, layer):
    raise NotImplementedError("exercise 6: deconvnet_reconstruction(model, image, layer)")
