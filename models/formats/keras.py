"""Keras VGG weight files (``vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5``, vgg19 likewise).

The root attribute ``layer_names`` lists the layers in order (weightless ones, like ``block1_pool``,
too); each layer's group lists its datasets in the attribute ``weight_names``
(``block1_conv1_W_1:0`` in the original files, ``kernel:0`` or ``kernel`` later: read, never
guessed). Layouts, Keras -> engine::

    conv kernel (kh, kw, in, out)  -> transpose(3, 2, 0, 1)                   -> (out, in, kh, kw)
    dense (in, out)                -> .T                                      -> (out, in)
    first dense: its inputs are Keras' flatten of (h, w, c), ours of (c, h, w):
        K.reshape(h, w, c, out).transpose(3, 2, 0, 1).reshape(out, c * h * w)

Keras' VGG expects 'caffe' preprocessing: BGR, 0..255, minus the BGR mean (103.939, 116.779, 123.68).
:func:`read` returns the layers unnamed (a :class:`ForeignLayers`); ``vgg.from_foreign`` names them.
"""
import h5py
import numpy as np

from .common import ForeignLayers, fail, is_hdf5, open_hdf5, square_side, texts

CAFFE_BGR = {"channel_order": "BGR", "scale": 255.0, "mean": [103.939, 116.779, 123.68],
             "std": [1.0, 1.0, 1.0]}


def _keras_root(f):
    if "layer_names" in f.attrs:
        return f
    if "model_weights" in f and "layer_names" in f["model_weights"].attrs:   # a whole saved model
        return f["model_weights"]
    return None


def is_keras(path):
    """True for an HDF5 file with Keras' ``layer_names`` (and not one of ours)."""
    if not is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return "format" not in f.attrs and _keras_root(f) is not None
    except OSError:
        return False


def read(path):
    """The conv blocks and dense layers of a Keras VGG weights file (with or without its classifier)."""
    with open_hdf5(path) as f:
        root = _keras_root(f)
        if root is None:
            fail(path, "not a Keras weights file (no 'layer_names' attribute)")
        convs, dense, blocks = [], [], []
        for lname in texts(root.attrs["layer_names"]):
            if lname not in root:
                fail(path, f"layer {lname} is listed in layer_names but missing")
            g = root[lname]
            wnames = texts(g.attrs.get("weight_names", []))
            if not wnames:
                if "pool" in lname.lower() and convs and not dense:     # a block ends here
                    blocks.append(convs)
                    convs = []
                continue
            try:
                arrays = [g[w][()] for w in wnames]
            except KeyError as e:
                fail(path, f"layer {lname}: dataset {e} listed in weight_names is missing")
            except OSError as e:
                fail(path, f"layer {lname} cannot be read (truncated or corrupt?): {e}")
            kernels = [a for a in arrays if a.ndim in (2, 4)]
            biases = [a for a in arrays if a.ndim == 1]
            if len(arrays) != 2 or len(kernels) != 1 or len(biases) != 1:
                fail(path, f"layer {lname} has weights of shapes {[a.shape for a in arrays]}; "
                           "expected a kernel and a bias (batch norm is not supported)")
            k, b = kernels[0], biases[0]
            if k.ndim == 4:
                if dense:
                    fail(path, f"convolution {lname} after a dense layer")
                if k.shape[:2] != (3, 3):
                    fail(path, f"layer {lname} kernel has shape {k.shape}, expected (3, 3, in, out) "
                               "(channels_last / 'tf' ordering; 'th' files are not supported)")
                convs.append((k.transpose(3, 2, 0, 1), b))               # (out, in, kh, kw)
            else:
                dense.append((k, b))                                     # (in, out), fixed below
        if convs:
            blocks.append(convs)
    if not blocks:
        fail(path, "no convolution layers found")
    if dense:                                            # (in, out) -> (out, in), one copy each
        c, (k, b) = blocks[-1][-1][0].shape[0], dense[0]
        side, out = square_side(path, k.shape[0], c), k.shape[1]
        dense[0] = (k.reshape(side, side, c, out).transpose(3, 2, 0, 1).reshape(out, -1), b)
        dense[1:] = [(np.ascontiguousarray(k.T), b) for k, b in dense[1:]]
    return ForeignLayers("vgg", blocks, dense, CAFFE_BGR, str(path))
