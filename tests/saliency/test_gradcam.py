"""Grad-CAM and guided Grad-CAM against Captum (LayerGradCam + LayerAttribution.interpolate, and
GuidedGradCam) in float64 on a small VGG and a small ResNet; the bilinear resampling against torch's
interpolate; the default and named layers, dtype, and bad layer names.

Tolerance: in float64 both sides compute the same sums in another order (the layer gradient, a
channel mean, a weighted channel sum, four-tap interpolation), so they agree to rounding: measured
at most 2.1e-15 of the largest value (VGG, ResNet, guided). 1e-10 leaves room for other BLAS kernels
while a wrong convention (align_corners=True, upsampling before the ReLU, a sum instead of a mean)
moves the maps by far more than 1e-3.
"""
import copy

import numpy as np
import pytest

import minigrad as mg
import saliency
from saliency.gradcam import bilinear_weights, default_layer, resize_bilinear

from .test_resnet_methods import rel, torch_twin64
from .twin import images, random_resnet, random_vgg, torch_twin

TARGETS = [1, 2, 7]
TOL = 1e-10


def as64(model):
    return copy.deepcopy(model).to(dtype=np.float64)


@pytest.fixture(scope="module")
def vgg():
    return random_vgg()


@pytest.fixture(scope="module")
def resnet():
    return random_resnet("basic", depths=(1, 1), widths=(8, 16), size=32, seed=2)


def captum_cam(net, module, x, targets, size):
    """Captum's Grad-CAM of ``module``'s output, ReLU'd, upsampled bilinearly to ``size``: (N, H, W)."""
    torch = pytest.importorskip("torch")
    attr = pytest.importorskip("captum.attr")
    a = attr.LayerGradCam(net, module).attribute(torch.tensor(x), target=torch.tensor(targets),
                                                 relu_attributions=True)
    return attr.LayerAttribution.interpolate(a, size, interpolate_mode="bilinear")[:, 0].detach().numpy()


# the default layer, the conv under it (the fast tier fuses it into its ReLU: the simple-tier pass),
# and a pooling layer
@pytest.mark.parametrize("layer", [None, "conv3_2", "pool2"])
def test_vgg_against_captum_float64(vgg, layer):
    pytest.importorskip("captum.attr")
    model, x = as64(vgg), images(3, 32).astype(np.float64)
    net = torch_twin(model).double()
    name = layer or "relu3_3"
    ours = saliency.grad_cam(model, x, TARGETS, layer=layer)
    assert ours.shape == (3, 32, 32) and ours.dtype == np.float64 and ours.min() >= 0
    ref = captum_cam(net, net[model.layer_names.index(name)], x, TARGETS, (32, 32))
    assert np.abs(ref).max() > 0
    assert rel(ours, ref) <= TOL, f"{name}: received {ours.ravel()[:3]}, expected {ref.ravel()[:3]}"


# layer2: the default (the last stage); layer1; a block's conv (folded into its batch norm on the fast
# tier) and that batch norm
@pytest.mark.parametrize("layer", [None, "layer1", "layer2.0.conv1", "layer2.0.bn2"])
def test_resnet_against_captum_float64(resnet, layer):
    pytest.importorskip("captum.attr")
    model, x = as64(resnet), images(3, 32, seed=4).astype(np.float64)
    net = torch_twin64(resnet)
    modules = {None: net.layer2[-1], "layer1": net.layer1[-1], "layer2.0.conv1": net.layer2[0].conv1,
               "layer2.0.bn2": net.layer2[0].bn2}
    ours = saliency.grad_cam(model, x, TARGETS, layer=layer)
    assert ours.shape == (3, 32, 32) and ours.dtype == np.float64
    ref = captum_cam(net, modules[layer], x, TARGETS, (32, 32))
    assert np.abs(ref).max() > 0
    assert rel(ours, ref) <= TOL, layer


@pytest.mark.filterwarnings("ignore:.*(require gradients|backward hooks on ReLU)")
def test_guided_grad_cam_against_captum_float64(vgg):
    torch = pytest.importorskip("torch")
    attr = pytest.importorskip("captum.attr")
    model, x = as64(vgg), images(3, 32, seed=5).astype(np.float64)
    net = torch_twin(model).double()
    theirs = attr.GuidedGradCam(net, net[model.layer_names.index("relu3_3")]).attribute(
        torch.tensor(x), target=torch.tensor(TARGETS), interpolate_mode="bilinear").detach().numpy()
    ours = saliency.guided_grad_cam(model, x, TARGETS)
    assert ours.shape == (3, 32, 32) and ours.dtype == np.float64
    assert rel(ours, np.abs(theirs).max(axis=1)) <= TOL          # max over channels of |product|


@pytest.mark.parametrize("size_in,size_out", [((7, 7), (32, 32)), ((5, 9), (23, 17)), ((16, 16), (8, 8)),
                                              ((13, 11), (4, 6)), ((6, 10), (6, 10)), ((1, 3), (5, 2)),
                                              ((3, 4), (224, 161))])
def test_bilinear_matches_torch_interpolate(size_in, size_out):
    torch = pytest.importorskip("torch")
    maps = np.random.default_rng(sum(size_in + size_out)).standard_normal((2,) + size_in)
    ref = torch.nn.functional.interpolate(torch.tensor(maps)[:, None], size_out, mode="bilinear",
                                          align_corners=False)[:, 0].numpy()
    ours = resize_bilinear(maps, size_out)
    assert ours.shape == (2,) + size_out and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-14)
    m32 = maps.astype(np.float32)
    out32 = resize_bilinear(m32, size_out)
    assert out32.dtype == np.float32
    ref32 = torch.nn.functional.interpolate(torch.tensor(m32)[:, None], size_out, mode="bilinear")[:, 0].numpy()
    np.testing.assert_allclose(out32, ref32, rtol=0, atol=1e-5)
    np.testing.assert_allclose(bilinear_weights(size_in[0], size_out[0]).sum(axis=1), 1.0)


def test_defaults_dtype_named_layer_and_rule_in_force(vgg, resnet):
    assert default_layer(vgg) == "relu3_3" and default_layer(resnet) == "layer2"
    x = images(2, 32, seed=6)
    cam = saliency.grad_cam(vgg, x, [3, 4])
    assert cam.shape == (2, 32, 32) and cam.dtype == np.float32 and np.isfinite(cam).all() and cam.max() > 0
    small = saliency.grad_cam(vgg, x, [3, 4], upsample=False)
    assert small.shape == (2, 8, 8) and small.dtype == np.float32            # relu3_3 of a 32 px input
    np.testing.assert_allclose(resize_bilinear(small, (32, 32)), cam, rtol=1e-6, atol=1e-7)
    named = saliency.grad_cam(vgg, x, [3, 4], layer="relu2_2", upsample=False)
    assert named.shape == (2, 16, 16) and not np.allclose(resize_bilinear(named, (32, 32)), cam)
    with mg.relu_rule("deconvnet"):                                           # always the gradient
        np.testing.assert_array_equal(saliency.grad_cam(vgg, x, [3, 4]), cam)
    assert saliency.grad_cam(resnet, x, 5).shape == (2, 32, 32)
    assert saliency.guided_grad_cam(vgg, x, 3).dtype == np.float32
    assert all(p.grad is None and p.requires_grad for p in vgg.parameters())  # weights untouched


def test_bad_layer_and_target(vgg, resnet):
    x = images(1, 32)
    with pytest.raises(ValueError, match=r"unknown layer 'conv9_9': this twin has conv1_1, relu1_1"):
        saliency.grad_cam(vgg, x, 1, layer="conv9_9")
    with pytest.raises(ValueError, match="unknown layer 'layer4': this twin_resnet has conv1"):
        saliency.grad_cam(resnet, x, 1, layer="layer4")
    with pytest.raises(ValueError, match=r"spatial output .* 'fc4' gives \(1, 64\)"):
        saliency.grad_cam(vgg, x, 1, layer="fc4")
    with pytest.raises(ValueError, match="out of range"):
        saliency.grad_cam(vgg, x, 10)


def test_method_maps_gives_every_method_and_ten_crops_take_gradcam(vgg):
    from saliency.evaluation import frame_maps
    from saliency.maps import METHODS, method_maps
    assert METHODS == ("gradient", "deconvnet", "guided", "smoothgrad", "gradcam", "guided-gradcam")
    x = images(2, 32, seed=7)
    for method in METHODS:
        m = method_maps(vgg, x, [3, 4], method, smooth_n=2)
        assert isinstance(m, np.ndarray) and m.shape == (2, 32, 32) and m.dtype == np.float32, method
        assert (m >= 0).all() and m.max() > 0, method
    np.testing.assert_array_equal(method_maps(vgg, x, [3, 4], "gradcam"), saliency.grad_cam(vgg, x, [3, 4]))
    np.testing.assert_array_equal(method_maps(vgg, x, [3, 4], "guided"),
                                  saliency.saliency_map(saliency.input_gradient(vgg, x, [3, 4], rule="guided")))
    with pytest.raises(ValueError, match="method must be one of gradient, .*, gradcam, guided-gradcam"):
        method_maps(vgg, x, 3, "lrp")
    big = images(1, 40, seed=8)[0]
    np.testing.assert_array_equal(saliency.ten_crop_saliency(vgg, big, 2, method="gradient"),
                                  saliency.ten_crop_saliency(vgg, big, 2, rule="gradient"))
    ten = saliency.ten_crop_saliency(vgg, big, 2, method="gradcam")
    # each crop's Grad-CAM map, flipped back if mirrored, pasted and averaged where crops overlap: the
    # same as the evaluation's 10-crop maps of that image
    (framed,), window = frame_maps(vgg, big, [2], "gradcam", crops=10)
    assert ten.shape == (40, 40) and window == (0, 0, 40, 40)
    np.testing.assert_allclose(framed, ten, rtol=1e-6, atol=1e-7)
