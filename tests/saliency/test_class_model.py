"""Class models (saliency/class_model.py): the tutorial recipe against PyTorch, and the library's recipe."""
import numpy as np
import pytest

from saliency.class_model import norm_gradient, tutorial_class_model

from .twin import random_vgg, torch_twin


def torch_tutorial(net, target, lam, p, size, steps=151, lr=6.0):
    """The tutorial's recipe as written in PyTorch: SGD on a zero image, loss -S_c + lam * ||I||_p."""
    import torch
    img = torch.zeros(1, 3, size, size, requires_grad=True)
    opt = torch.optim.SGD([img], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = -net(img)[0, target] + lam * torch.norm(img, p)
        loss.backward()
        opt.step()
    return img.detach().numpy()[0]


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("lam", [0.001, 0.1, 1.0])
def test_tutorial_recipe_matches_pytorch(p, lam):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    model = random_vgg(blocks=((8,), (16,)), fc=(32,), size=16, seed=2)
    ours, history = tutorial_class_model(model, 3, lam=lam, p=p, return_history=True)
    ref = torch_tutorial(torch_twin(model), 3, lam, p, 16)
    assert ours.dtype == np.float32 and [s for s, _ in history["snapshots"]] == list(range(10, 151, 10))
    # float32 rounding: 151 steps of lr 6 accumulate a few ulps of the largest pixel (measured: at most
    # 1.4e-6 of max |I| over the six settings). A ReLU or max-pool decision flipped by rounding would
    # show as a jump far above this tolerance (it does on other seeds: the gradient is discontinuous).
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    assert err < 1e-5, f"max |ours - torch| = {err:.2e} of max |I|"
    assert history["scores"][-1] > history["scores"][0] + 1


def test_norm_gradient():
    x = np.array([[[-2.0, 0.0], [3.0, 4.0]]], np.float32)
    np.testing.assert_array_equal(norm_gradient(x, 1), np.sign(x))
    np.testing.assert_allclose(norm_gradient(x, 2), x / np.sqrt(29.0), rtol=1e-6)
    assert not norm_gradient(np.zeros_like(x), 2).any()                  # PyTorch's choice at 0
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        norm_gradient(x, 3)
