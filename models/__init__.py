"""Networks and their data: weight files, architectures, images, class names.

Reading order: formats (one reader per weight-file format), vgg (the network as a layer table),
resnet (the same for ResNets, built from blocks), network (what the two share), load (any file ->
the network it holds), preprocess (images in and out), imagenet (class names).

    import models
    from models import preprocess
    model = models.load("weights/shapes_vgg.h5")     # any network: VGG or ResNet (vgg.load: VGG only)
    net = models.build("resnet50", seed=0)           # a new standard network, random weights
    models.save(net, "out/resnet50_random.h5")       # the project's HDF5 format, for --weights
    rgb, notes = preprocess.load_image("photo.jpg")
    x = preprocess.prepare(rgb, model.meta)          # (3, H, W) float32
"""
from .formats.common import WeightsError
from .imagenet import ClassLookupError
from .load import build, load
from .network import save
from .preprocess import ImageError

__all__ = ["load", "build", "save", "WeightsError", "ImageError", "ClassLookupError"]
