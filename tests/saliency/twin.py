"""A small VGG in minigrad and the same network, with the same weights, in PyTorch (test helper)."""
import numpy as np

import minigrad as mg
from models import vgg


def random_vgg(blocks=((16, 16), (32, 32), (64, 64, 64)), fc=(64,), classes=10, size=32, seed=0):
    """A VGG with He weights and small random biases (a zero-bias net is dead at the zero image)."""
    config = vgg.VGGConfig("twin", [list(b) for b in blocks], fc=list(fc), num_classes=classes,
                           input_size=(size, size))
    model = vgg.build(config, seed=seed).eval()
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.data[...] = rng.normal(0, 0.05, p.shape).astype(np.float32)
    return model


def torch_twin(model):
    """The same layers as a torch.nn.Sequential (ReLUs as modules, so Captum can hook them)."""
    import torch
    layers = []
    for name in model.layer_names:
        layer = getattr(model, name)
        kind = type(layer).__name__
        if kind == "Conv2d":
            o, i, kh, kw = layer.weight.shape
            t = torch.nn.Conv2d(i, o, (kh, kw), padding=layer.padding)
        elif kind == "Linear":
            t = torch.nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        elif kind == "ReLU":
            t = torch.nn.ReLU()
        elif kind == "MaxPool2d":
            t = torch.nn.MaxPool2d(2, 2)
        elif kind == "Flatten":
            t = torch.nn.Flatten()
        elif kind == "Dropout":
            t = torch.nn.Dropout(layer.p)
        else:
            raise TypeError(kind)
        if hasattr(t, "weight"):
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(np.array(layer.weight.data)))
                t.bias.copy_(torch.from_numpy(np.array(layer.bias.data)))
        layers.append(t)
    return torch.nn.Sequential(*layers).eval()


def images(n, size, seed=1):
    """Smooth random images in roughly the model's input range (not white noise)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, size // 4, size // 4)).astype(np.float32)
    return np.ascontiguousarray(x.repeat(4, axis=2).repeat(4, axis=3)
                                + 0.3 * rng.standard_normal((n, 3, size, size)).astype(np.float32))


__all__ = ["random_vgg", "torch_twin", "images", "mg"]
