"""PyTorch ``.pth`` files (torchvision's VGGs and ResNets), read **without torch**, refusing any
pickle that asks for more.

A ``.pth`` file is a pickle. Unpickling runs whatever callables the pickle names, so a hostile file
could run ``os.system``. This reader's unpickler allows only what a state dict needs:

    collections.OrderedDict                      the dict itself (and empty backward-hook dicts)
    torch._utils._rebuild_tensor(_v2)            tensor = (storage, offset, size, stride, ...)
    torch._utils._rebuild_parameter(_with_state) a Parameter wrapping such a tensor
    torch.FloatStorage, torch.HalfStorage, ...   storage types, met only inside persistent ids

and refuses every other global with a :class:`WeightsError`, before anything is called.

Two containers (cf. torch/serialization.py, ``_legacy_save`` and ``_save``):

* legacy (before PyTorch 1.6, e.g. torchvision's ``vgg16-397923af.pth``): five pickles in a row --
  magic number 0x1950a86a20f9469cfc6c, protocol version 1001, sys_info {little_endian, ...}, the
  object (storages appear as persistent ids ``('storage', torch.FloatStorage, key, location, numel,
  view_metadata)``), the sorted list of storage keys -- then for each key an int64 element count
  and the raw bytes of that storage.
* zip (1.6 and later): ``PREFIX/data.pkl`` holds the pickle (persistent ids ``('storage', type,
  key, location, numel)``), ``PREFIX/data/KEY`` the raw bytes, ``PREFIX/byteorder`` 'little'/'big'.

Tensors are rebuilt lazily: the legacy format stores the bytes after the pickle that refers to them.

torchvision's VGG (``vgg16-397923af.pth``): ``features.{i}.weight|bias`` for the convolutions (index
gaps of 2 inside a block -- conv, relu -- and 3 across a pool), ``classifier.{0,3,6}`` for fc6..fc8,
already in the engine's layout; preprocessing RGB, /255, mean (0.485, 0.456, 0.406), std (0.229,
0.224, 0.225). :func:`read` returns them unnamed (a :class:`ForeignLayers`); ``vgg.from_foreign``
names them.

torchvision's ResNet (``resnet18-f37072fd.pth`` ... ``resnet152-394f9c45.pth``, and the older
``resnet152-b121ed2d.pth`` in the legacy container): ``conv1.weight``, ``bn1.{weight, bias,
running_mean, running_var, num_batches_tracked}``, ``layerL.B.{conv1, bn1, conv2, bn2[, conv3,
bn3]}.*``, ``layerL.B.downsample.{0, 1}.*``, ``fc.{weight, bias}`` (files saved before PyTorch 0.4.1
have no ``num_batches_tracked``). A state dict with ``layerL.B.`` keys is a ResNet; :func:`read`
returns its layers under those names (``ForeignLayers.layers``) and ``resnet.from_foreign`` infers
the depth from them and checks every shape.
"""
import io
import os
import pickle
import re
import tarfile
import zipfile
from collections import OrderedDict

import numpy as np

from .common import ForeignLayers, WeightsError, fail

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001

#: storage class name -> NumPy dtype ("bfloat16" is widened to float32 by hand).
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co. inside the pickle."""

    def __init__(self, name):
        self.name = name


class _Storage:
    """A flat typed buffer: ``numel`` elements, filled in once its bytes are read."""

    def __init__(self, name, numel):
        self.name, self.numel, self.array = name, int(numel), None
        raw = STORAGE_DTYPES[name]
        self.dtype = np.dtype(np.uint16 if raw == "bfloat16" else raw)

    def fill(self, raw, byteorder="little"):
        """Set the contents from raw bytes (a writable bytearray is used in place, not copied)."""
        n = len(raw) // self.dtype.itemsize
        if n < self.numel:
            raise ValueError(f"storage has {n} elements, expected {self.numel}")
        a = np.frombuffer(raw, dtype=self.dtype.newbyteorder("<" if byteorder == "little" else ">"),
                          count=self.numel)
        if not a.dtype.isnative or not a.flags.writeable:
            a = a.astype(self.dtype.newbyteorder("="))                   # native order, own copy
        if STORAGE_DTYPES[self.name] == "bfloat16":                     # top 16 bits of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        self.array = a


class _StorageView:
    """Old (pre-1.0) files could name a view into a storage: (root, element offset, size)."""

    def __init__(self, root, offset, numel):
        self.root, self.offset, self.numel = root, int(offset), int(numel)


class _LazyTensor:
    """A tensor waiting for its storage's bytes: as_strided(storage[offset:], size, stride)."""
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self):
        st, offset = self.storage, self.offset
        if isinstance(st, _StorageView):
            st, offset = st.root, st.offset + offset
        ok = (isinstance(st, _Storage) and st.array is not None and isinstance(offset, int)
              and isinstance(self.size, tuple) and isinstance(self.stride, tuple)
              and len(self.size) == len(self.stride)
              and all(isinstance(v, int) and v >= 0 for v in self.size + self.stride) and offset >= 0)
        if not ok:
            raise ValueError("malformed tensor record")
        if 0 in self.size:
            return np.zeros(self.size, st.array.dtype)
        last = offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= st.array.size:                                        # never read out of bounds
            raise ValueError(f"tensor reaches element {last} of a {st.array.size}-element storage")
        if offset == 0 and self.stride == _contiguous_strides(self.size) and last == st.array.size - 1:
            return st.array.reshape(self.size)                           # the whole storage: no copy
        item = st.array.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(st.array[offset:], self.size,
                                               [s * item for s in self.stride], writeable=False)
        return np.array(view)                                            # contiguous copy


def _contiguous_strides(size):
    strides, step = [], 1
    for n in reversed(size):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *_ignored):
    return data


ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in ALLOWED and torch storage types."""

    def __init__(self, file, path, storages):
        super().__init__(file)
        self.path, self.storages = path, storages

    def find_class(self, module, name):
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise WeightsError(f"weights file {self.path}: refusing to load it: its pickle asks for "
                           f"{module}.{name}, and a state dict needs only tensors "
                           "(torch._utils._rebuild_tensor_v2, torch.*Storage, collections.OrderedDict)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[4], int)):
            raise WeightsError(f"weights file {self.path}: refusing to load it: unexpected "
                               f"persistent id {str(pid)[:80]}")
        _, stype, key, _location, numel = pid[:5]
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(stype.name, numel)
        storage = self.storages[key]
        view = pid[5] if len(pid) > 5 else None
        if view is not None:                                             # (view key, offset, size)
            return _StorageView(storage, view[1], view[2])
        return storage


def _materialise(obj):
    """Replace every _LazyTensor in a (nested) dict/list by its NumPy array."""
    if isinstance(obj, _LazyTensor):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return OrderedDict((k, _materialise(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def _read_exact(f, n):
    """n bytes from f into a new (writable) bytearray; EOFError if the file ends first."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            raise EOFError(f"file ends {n - got} bytes early")
        got += k
    return buf


def _read_zip(path, f):
    storages = {}
    with zipfile.ZipFile(f) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise WeightsError(f"weights file {path}: a zip archive without data.pkl (not a PyTorch file)")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = z.read(prefix + "byteorder").decode().strip()
        obj = _RestrictedUnpickler(io.BytesIO(z.read(pkl[0])), path, storages).load()
        for key, storage in storages.items():
            record = f"{prefix}data/{key}"
            if record not in names:
                raise WeightsError(f"weights file {path}: storage record {record} is missing")
            need = storage.numel * storage.dtype.itemsize
            if z.getinfo(record).file_size < need:
                raise EOFError(f"record {record} is shorter than its tensor")
            with z.open(record) as r:
                storage.fill(_read_exact(r, need), byteorder)
    return obj


def _read_legacy(path, f):
    def small_pickle():
        return _RestrictedUnpickler(f, path, {}).load()

    try:
        magic = small_pickle()
    except WeightsError:
        raise
    except Exception:
        raise WeightsError(f"weights file {path}: not an HDF5 file, nor a PyTorch .pth file") from None
    if magic != LEGACY_MAGIC:
        raise WeightsError(f"weights file {path}: a pickle, but not a PyTorch .pth file (bad magic number)")
    version = small_pickle()
    if version != LEGACY_PROTOCOL:
        raise WeightsError(f"weights file {path}: PyTorch legacy protocol {version}, expected {LEGACY_PROTOCOL}")
    sys_info = small_pickle()
    byteorder = "little" if not isinstance(sys_info, dict) or sys_info.get("little_endian", True) else "big"
    storages = {}
    obj = _RestrictedUnpickler(f, path, storages).load()
    keys = small_pickle()
    if not isinstance(keys, list):
        raise WeightsError(f"weights file {path}: malformed storage key list")
    for key in keys:
        if key not in storages:
            raise WeightsError(f"weights file {path}: storage {key!r} is not used by the pickle")
        head = f.read(8)
        if len(head) < 8:
            raise EOFError
        numel = int.from_bytes(head, byteorder, signed=True)
        storage = storages[key]
        if numel != storage.numel:
            raise WeightsError(f"weights file {path}: storage {key} has {numel} elements, "
                               f"expected {storage.numel}")
        need = numel * storage.dtype.itemsize
        if need > os.fstat(f.fileno()).st_size - f.tell():              # before allocating it
            raise EOFError(f"storage {key} needs {need} bytes, the file ends before")
        storage.fill(_read_exact(f, need), byteorder)
    return obj


def read_state_dict(path):
    """{key: ndarray} from a .pth file in either container; nested checkpoints are unwrapped.

    Raises WeightsError for a missing, truncated or hostile file (nothing in it is ever called
    except the tensor rebuilders above).
    """
    path = str(path)
    try:
        with open(path, "rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"
            f.seek(0)
            if zipfile.is_zipfile(f):
                f.seek(0)
                obj = _read_zip(path, f)
            elif zipped:
                raise WeightsError(f"weights file {path}: truncated or corrupt zip archive")
            else:
                f.seek(0)
                if tarfile.is_tarfile(path):
                    raise WeightsError(f"weights file {path}: PyTorch's pre-0.1.10 tar format is not supported")
                f.seek(0)
                obj = _read_legacy(path, f)
        obj = _materialise(obj)
    except FileNotFoundError:
        raise WeightsError(f"weights file {path}: not found") from None
    except WeightsError:
        raise
    except (EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise WeightsError(f"weights file {path}: truncated or corrupt PyTorch file ({e or 'ends early'})") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, MemoryError) as e:
        raise WeightsError(f"weights file {path}: malformed PyTorch file ({e})") from None
    for key in ("state_dict", "model", "model_state_dict"):              # training checkpoints
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsError(f"weights file {path}: holds a {type(obj).__name__}, not a state dict")
    out = OrderedDict()
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            out[str(key)[7:] if str(key).startswith("module.") else str(key)] = value
    if not out:
        raise WeightsError(f"weights file {path}: contains no tensors")
    return out


# ------------------------------------------------------------------------------------------------
# torchvision's key names -> layers in network order
# ------------------------------------------------------------------------------------------------
TORCHVISION_RGB = {"channel_order": "RGB", "scale": 1.0, "mean": [0.485, 0.456, 0.406],
                   "std": [0.229, 0.224, 0.225]}
_VGG_KEY = re.compile(r"^(features|classifier)\.(\d+)\.(weight|bias)$")
_RESNET_BLOCK = re.compile(r"^layer\d+\.\d+\.")
_RESNET_KEY = re.compile(r"^(conv1|bn1|fc|layer\d+\.\d+\.(?:conv\d|bn\d|downsample\.[01]))"
                         r"\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def read(path):
    """The layers of a torchvision network saved as a ``.pth`` state dict: a ResNet or a VGG."""
    sd = read_state_dict(path)
    if any(_RESNET_BLOCK.match(key) for key in sd):
        return resnet_layers(path, sd)
    return vgg_layers(path, sd)


def resnet_layers(path, sd):
    """ForeignLayers (family "resnet") from a torchvision ResNet state dict {key: ndarray}: its
    layers under torchvision's names, ``{"layer1.0.bn1": {"weight": ..., "running_mean": ...}}``."""
    layers = {}
    for key, value in sd.items():
        m = _RESNET_KEY.match(key)
        if not m:
            fail(path, f"unexpected key {key!r}: not a torchvision ResNet state dict")
        layers.setdefault(m.group(1), {})[m.group(2)] = value
    return ForeignLayers("resnet", [], [], TORCHVISION_RGB, str(path), layers=layers)


def vgg_layers(path, sd):
    """ForeignLayers from a torchvision VGG state dict {key: ndarray}."""
    layers = {"features": {}, "classifier": {}}
    for key, value in sd.items():
        m = _VGG_KEY.match(key)
        if not m:
            if "running_mean" in key or "running_var" in key:
                fail(path, "a batch-norm VGG (vgg*_bn): not supported")
            fail(path, f"unexpected key {key!r}: not a torchvision VGG state dict")
        part, index, kind = m.group(1), int(m.group(2)), m.group(3)
        layers[part].setdefault(index, {})[kind] = value
    for part in layers:
        for index, wb in layers[part].items():
            if set(wb) != {"weight", "bias"}:
                fail(path, f"{part}.{index} has {sorted(wb)}; expected weight and bias")
    feats = sorted(layers["features"].items())
    if not feats or feats[0][0] != 0:
        fail(path, "no features.0 convolution: not a torchvision VGG state dict")
    blocks, prev = [[]], None
    for index, wb in feats:
        if wb["weight"].ndim != 4:
            fail(path, f"features.{index}.weight has shape {wb['weight'].shape}, expected 4-D")
        if prev is not None and index - prev not in (2, 3):
            fail(path, f"unexpected gap features.{prev} -> features.{index}")
        if prev is not None and index - prev == 3:                      # conv, relu, pool, conv
            blocks.append([])
        blocks[-1].append((wb["weight"], wb["bias"]))
        prev = index
    fcs = [(wb["weight"], wb["bias"]) for _, wb in sorted(layers["classifier"].items())]
    for w, _ in fcs:
        if w.ndim != 2:
            fail(path, f"classifier weight has shape {w.shape}, expected 2-D")
    return ForeignLayers("vgg", blocks, fcs, TORCHVISION_RGB, str(path))
