"""Networks and their data: VGG as a layer table, weight files, conversion, images, class names.

Reading order: vgg (the network), hdf5 (its weight file), convert and torchfile (Keras and
torchvision weights in), preprocess (images in and out), imagenet (class names and look-up).

    from models import vgg, preprocess
    model = vgg.load("weights/shapes_vgg.h5")
    rgb, notes = preprocess.load_image("photo.jpg")
    x = preprocess.prepare(rgb, model.meta)          # (3, H, W) float32
"""
from .hdf5 import WeightsError
from .imagenet import ClassLookupError
from .preprocess import ImageError

__all__ = ["WeightsError", "ImageError", "ClassLookupError"]
