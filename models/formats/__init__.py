"""Weight files, one reader per format; :func:`read` picks the reader by what the file holds.

    hdf5    the project's own file (read, write, check_layers): named layers, config, preprocessing
    keras   Keras VGG .h5 files (HDF5 too, told apart by Keras' ``layer_names`` attribute)
    pth     PyTorch .pth state dicts (torchvision's VGGs and ResNets), through an unpickler that
            allows only tensors

The readers know file layouts, not networks: a foreign file comes back as unnamed layers
(:class:`ForeignLayers`) that the architecture module (``models/vgg.py``, ``models/resnet.py``) names
and checks. ``models.load`` puts the two together.
"""
import os

from . import hdf5, keras, pth
from .common import ForeignLayers, WeightFile, WeightsError, check_exists, is_hdf5


def read(path):
    """A :class:`WeightFile` (the project's HDF5) or :class:`ForeignLayers` (Keras, PyTorch).

    The file's content decides, never its extension: the HDF5 signature, then Keras' ``layer_names``
    attribute; anything else is tried as a PyTorch file, whose reader says when it is not one.
    """
    path = os.fspath(path)
    check_exists(path)
    if is_hdf5(path):
        return keras.read(path) if keras.is_keras(path) else hdf5.read(path)
    return pth.read(path)


__all__ = ["read", "hdf5", "keras", "pth", "WeightFile", "ForeignLayers", "WeightsError"]
