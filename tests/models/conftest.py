"""Helpers for the models tests: torch twins of our VGGs, Keras-layout files, a real photo.

torch is a test-only reference: every helper that needs it imports it lazily, and the tests that
use them call ``pytest.importorskip("torch")``.
"""
import math

import h5py
import numpy as np
import pytest

#: a small net that converts and runs in milliseconds: 2 blocks, one hidden fc, 5 classes, 32x32.
SMALL = dict(blocks=[[8], [16, 16]], fc=[32], num_classes=5, input_size=32)


def torch_vgg(blocks, fc, num_classes, input_size, seed=0):
    """A torchvision-layout VGG (``features.{i}``, ``classifier.{j}``) with He-normal weights.

    Biases are small random values (not zero) so that a bias mapped to the wrong layer shows.
    """
    import torch
    from torch import nn
    from torch.nn.utils import skip_init                # our He init below replaces torch's

    class TorchVGG(nn.Module):
        def __init__(self, features, classifier):
            super().__init__()
            self.features, self.classifier = features, classifier

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    torch.manual_seed(seed)
    layers, c = [], 3
    for block in blocks:
        for width in block:
            layers += [skip_init(nn.Conv2d, c, width, 3, padding=1), nn.ReLU(inplace=True)]
            c = width
        layers.append(nn.MaxPool2d(2, 2))
    side = input_size // 2 ** len(blocks)
    head, n = [], c * side * side
    for width in fc:
        head += [skip_init(nn.Linear, n, width), nn.ReLU(inplace=True), nn.Dropout()]
        n = width
    head.append(skip_init(nn.Linear, n, num_classes))
    model = TorchVGG(nn.Sequential(*layers), nn.Sequential(*head))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
                m.bias.uniform_(-0.1, 0.1)
    return model.eval()


def state_dict_numpy(model):
    """{key: ndarray} sharing memory with the torch model."""
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def write_keras(path, sd, blocks, side, style="keras1", top=True, bias_first=False):
    """Write ``sd`` (a torchvision-layout state dict of NumPy arrays) as a Keras VGG weights file.

    style "keras1": weight_names ``block1_conv1/block1_conv1_W_1:0`` stored as bytes (the original
    vgg16_weights_tf_dim_ordering_tf_kernels.h5); "keras2": ``block1_conv1/kernel:0`` as str.
    Kernels are (kh, kw, in, out); fc1's rows are in (h, w, c) order.
    """
    convs = [(sd[f"features.{i}.weight"], sd[f"features.{i}.bias"])
             for i in sorted({int(k.split(".")[1]) for k in sd if k.startswith("features.")})]
    fcs = [(sd[f"classifier.{i}.weight"], sd[f"classifier.{i}.bias"])
           for i in sorted({int(k.split(".")[1]) for k in sd if k.startswith("classifier.")})]
    names = []

    def layer(f, name, arrays):
        g = f.create_group(name)
        if style == "keras1":
            wnames = [f"{name}/{name}_W_1:0", f"{name}/{name}_b_1:0"][: len(arrays)]
        else:
            wnames = [f"{name}/kernel:0", f"{name}/bias:0"][: len(arrays)]
        pairs = list(zip(wnames, arrays))
        if bias_first:
            pairs = pairs[::-1]
        for wn, a in pairs:
            g.create_dataset(wn, data=np.ascontiguousarray(a))      # h5py writes strided data slowly
        _set_names(g.attrs, "weight_names", [wn for wn, _ in pairs], style)
        names.append(name)

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "1.1.0" if style == "keras1" else "2.2.4"
        f.attrs["backend"] = "tensorflow"
        k = 0
        for b, block in enumerate(blocks, 1):
            for i in range(1, len(block) + 1):
                w, bias = convs[k]
                k += 1
                layer(f, f"block{b}_conv{i}", [w.transpose(2, 3, 1, 0), bias])   # (kh, kw, in, out)
            layer(f, f"block{b}_pool", [])
        if top:
            layer(f, "flatten", [])
            for j, (w, bias) in enumerate(fcs):
                name = "predictions" if j == len(fcs) - 1 else f"fc{j + 1}"
                if j == 0:
                    out, c = w.shape[0], convs[-1][0].shape[0]
                    kern = w.reshape(out, c, side, side).transpose(2, 3, 1, 0).reshape(side * side * c, out)
                else:
                    kern = w.T
                layer(f, name, [kern, bias])
        _set_names(f.attrs, "layer_names", names, style)
    return path


def _set_names(attrs, key, names, style):
    """keras1: fixed-length bytes (as Keras writes them); keras2: variable-length str."""
    if style == "keras1":
        attrs[key] = np.array([n.encode() for n in names]) if names else np.array([], "S1")
    else:
        attrs.create(key, np.array(names, dtype=object), dtype=h5py.string_dtype())


def rel_err(a, b):
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.fixture(scope="session")
def photo():
    """A real photo (skimage's astronaut), (512, 512, 3) uint8."""
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.fixture
def small_model():
    """Our SMALL net with He-initialised weights and non-zero biases, eval mode."""
    from models import vgg
    model = vgg.build(dict(name="small", **SMALL), seed=3).eval()
    rng = np.random.default_rng(3)
    for name in model.weight_layers:
        layer = getattr(model, name)
        layer.bias.data = rng.uniform(-0.1, 0.1, layer.bias.shape).astype(np.float32)
    model.classes = ["circle", "square", "triangle", "star", "cross"]
    return model
