"""A small VGG in minigrad and the same network, with the same weights, in PyTorch; a small ResNet
with random batch norms (test helpers)."""
import numpy as np

import minigrad as mg
from models import resnet, vgg


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


def save_small_shapes_vgg(path, resize=32):
    """A random 10-class VGG at 32 px with the shapes' class names (resize to ``resize``, centre crop
    32), saved to ``path``: weights for the scripts' tests."""
    from models import shapes
    model = random_vgg(blocks=((8,), (16,)), fc=(32,), classes=10, size=32)
    model.classes = list(shapes.CLASSES)
    model.meta = dict(model.meta, resize=resize, crop=32, scale=1.0)
    vgg.save(model, path)
    return path


def random_resnet(block="basic", depths=(1, 1), widths=(8, 16), stem_width=8, classes=10, size=32,
                  stem="small", seed=0):
    """A small ResNet, eval mode, with He convolutions and random batch norms: weight U(0.5, 1.5), bias
    U(-0.3, 0.3), running mean N(0, 0.3), running variance U(0.5, 2), fc bias N(0, 0.05). (A new BN is
    the identity in eval mode and a zero-bias net is dead at the zero image: neither tests much.)

    stem "small": 3x3 stride 1, no max pool (for 32-64 px inputs); "imagenet": 7x7 stride 2 + max pool.
    """
    big = stem == "imagenet"
    config = dict(name="twin_resnet", block=block, depths=list(depths), widths=list(widths), stem_width=stem_width,
                  stem_kernel=7 if big else 3, stem_stride=2 if big else 1, maxpool=big, num_classes=classes,
                  input_size=size)
    model = resnet.build(config, seed=seed).eval()
    rng = np.random.default_rng(seed)
    for name, module in model.named_modules():
        if type(module).__name__ == "BatchNorm2d":
            c = module.num_features
            module.weight.data[...] = rng.uniform(0.5, 1.5, c)
            module.bias.data[...] = rng.uniform(-0.3, 0.3, c)
            module.running_mean[...] = rng.normal(0, 0.3, c)
            module.running_var[...] = rng.uniform(0.5, 2.0, c)
    model.fc.bias.data[...] = rng.normal(0, 0.05, classes)
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


__all__ = ["random_vgg", "random_resnet", "torch_twin", "images", "mg"]
