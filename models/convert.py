"""Convert a Keras .h5 or torchvision .pth file (or one of ours) to the project's HDF5.

The readers live in ``models/formats/``; :func:`models.load.read_weights` names the layers.
"""
import os

from .formats import hdf5
from .formats.common import WeightsError
from .load import read_weights


def convert(src, dst, arch=None):
    """Convert ``src`` to the project's HDF5 at ``dst`` (written atomically); returns the WeightFile."""
    if os.path.abspath(src) == os.path.abspath(dst):
        raise WeightsError(f"weights file {src}: the output would overwrite the input")
    wf = read_weights(src, arch)
    hdf5.write(dst, wf.arch, wf.config, wf.layers, wf.meta, wf.classes, wf.wnids)
    return wf
