"""The VGG layer table: names, shapes, intermediate activations, configs."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from models import vgg

from .conftest import SMALL


def test_standard_tables():
    shapes = vgg.layer_shapes(vgg.config_for("vgg16"))
    assert list(shapes)[:3] == ["conv1_1", "conv1_2", "conv2_1"]
    assert list(shapes)[-4:] == ["conv5_3", "fc6", "fc7", "fc8"]
    assert shapes["conv1_2"] == ((64, 64, 3, 3), (64,))
    assert shapes["fc6"] == ((4096, 25088), (4096,)) and shapes["fc8"] == ((1000, 4096), (1000,))
    counts = {a: sum(len(b) for b in blocks) for a, blocks in vgg.STANDARD.items()}
    assert counts == {"vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16}
    n = sum(np.prod(w) + np.prod(b) for w, b in shapes.values())
    assert n == 138_357_544                                            # VGG16's published size
    cfg = vgg.config_for("vgg19", num_classes=10, input_size=64)
    assert vgg.layer_shapes(cfg)["fc6"][0] == (4096, 512 * 2 * 2) and cfg.num_classes == 10


def test_layer_names_and_parameter_names(small_model):
    assert small_model.layer_names == (
        "conv1_1", "relu1_1", "pool1", "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
        "flatten", "fc3", "relu3", "drop3", "fc4")
    names = [n for n, _ in small_model.named_parameters()]
    assert names[:2] == ["conv1_1.weight", "conv1_1.bias"] and names[-1] == "fc4.bias"
    assert small_model.weight_layers == ["conv1_1", "conv2_1", "conv2_2", "fc3", "fc4"]
    assert isinstance(small_model.pool2, nn.MaxPool2d) and "conv2_2" in repr(small_model)


def test_forward_until(small_model):
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with mg.no_grad():
        logits = small_model(mg.Tensor(x))
        conv = small_model(x, until="conv2_2")
        relu = small_model(x, until="relu2_2")
        acts = small_model(x, until=["pool1", "conv2_2", "fc3"])
    assert logits.shape == (2, 5) and logits.dtype == np.float32
    assert conv.shape == (2, 16, 16, 16) and conv.dtype == np.float32
    assert list(acts) == ["pool1", "conv2_2", "fc3"] and acts["pool1"].shape == (2, 8, 16, 16)
    assert np.array_equal(acts["conv2_2"].data, conv.data)
    assert np.array_equal(relu.data, np.maximum(conv.data, 0))         # fused conv+relu = the two ops
    assert (conv.data < 0).any()                                       # the conv output is pre-ReLU


def test_forward_errors(small_model):
    with pytest.raises(ValueError, match="unknown layer 'conv9_9'"):
        small_model(np.zeros((1, 3, 32, 32), np.float32), until="conv9_9")
    with pytest.raises(ValueError, match=r"input has shape \(1, 1, 32, 32\), expected \(N, 3, H, W\)"):
        small_model(np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"classifier needs \(N, 3, 32, 32\)"):
        small_model(np.zeros((1, 3, 40, 40), np.float32))
    assert small_model(np.zeros((1, 3, 40, 40), np.float32), until="pool2").shape == (1, 16, 10, 10)


def test_gradients_reach_the_input(small_model):
    x = mg.Tensor(np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32),
                  requires_grad=True)
    small_model(x)[:, 2].sum().backward()
    assert x.grad.shape == (1, 3, 32, 32) and x.grad.dtype == np.float32
    assert np.abs(x.grad).max() > 0


def test_build_configs():
    m = vgg.build(dict(name="tiny", blocks=[[4]], fc=[], num_classes=3, input_size=(8, 6)), seed=0)
    assert m.training and m.layer_names == ("conv1_1", "relu1_1", "pool1", "flatten", "fc2")
    assert m.fc2.weight.shape == (3, 4 * 4 * 3)
    w = m.conv1_1.weight.data
    assert w.dtype == np.float32 and 0.2 < w.std() / np.sqrt(2 / 27) < 5      # He scale
    again = vgg.build(dict(name="tiny", blocks=[[4]], fc=[], num_classes=3, input_size=(8, 6)), seed=0)
    assert np.array_equal(again.conv1_1.weight.data, w)
    assert vgg.build(vgg.VGGConfig("x", [[2]], None)).layer_names[-1] == "pool1"
    with pytest.raises(ValueError, match="unknown VGG architecture 'vgg17'"):
        vgg.build("vgg17")
    with pytest.raises(ValueError, match="too small"):
        vgg.build(dict(SMALL, name="s", input_size=2))
    m = vgg.build("VGG11", num_classes=7, input_size=32)
    assert m.arch == "vgg11" and m.fc8.weight.shape == (7, 4096) and m.meta["crop"] == 32
