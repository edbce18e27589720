"""Keras .h5 and torchvision .pth -> our HDF5: layouts, architecture inference, hostile pickles.

The full check (a torch VGG16 with random He weights, saved in both PyTorch containers and as a
Keras file, converted, and run on a real photo against torch) runs once; the rest uses small nets.
"""
import os
import pickle
import zipfile

import numpy as np
import pytest

import minigrad as mg
from models import WeightsError, convert, vgg
from models.formats import pth
from models.load import read_weights
from models.preprocess import prepare

from .conftest import SMALL, rel_err, state_dict_numpy, torch_vgg, write_keras

torch = pytest.importorskip("torch")


# ------------------------------------------------------------------------------------------------
# VGG16, full size, once
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vgg16_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vgg16")
    model = torch_vgg(vgg.STANDARD["vgg16"], [4096, 4096], 1000, 224, seed=16)
    sd = model.state_dict()
    files = {"legacy": d / "vgg16-legacy.pth", "zip": d / "vgg16-zip.pth", "keras": d / "vgg16_keras.h5"}
    torch.save(sd, files["legacy"], _use_new_zipfile_serialization=False)
    torch.save(sd, files["zip"])
    write_keras(files["keras"], state_dict_numpy(model), vgg.STANDARD["vgg16"], 7)
    return model, files, d


@pytest.fixture(scope="module")
def vgg16_converted(vgg16_files):
    _, files, d = vgg16_files
    assert not zipfile.is_zipfile(files["legacy"])                  # really the pre-1.6 container
    out = d / "vgg16.h5"
    return convert.convert(files["legacy"], out, arch="vgg16"), out


def test_vgg16_legacy_pth_logits_match_torch(vgg16_files, vgg16_converted, photo):
    tmodel = vgg16_files[0]
    wf, out = vgg16_converted
    assert wf.arch == "vgg16" and wf.meta["channel_order"] == "RGB" and wf.meta["scale"] == 1.0
    model = vgg.load(out)
    assert model.arch == "vgg16" and len(model.classes) == 1000 and model.classes[285] == "Egyptian_cat"
    assert model.meta["resize"] == 256 and model.meta["crop"] == 224
    assert all(p.dtype == np.float32 for p in model.parameters())
    x = prepare(photo, model.meta)[None]                               # (1, 3, 224, 224)
    assert x.dtype == np.float32 and x.shape == (1, 3, 224, 224)
    with mg.no_grad():
        ours = model(mg.Tensor(x)).data
    with torch.no_grad():
        ref = tmodel(torch.from_numpy(x)).numpy()
    assert ours.dtype == np.float32 and ours.shape == (1, 1000)
    assert np.abs(ref).max() > 1.0                                     # activations did not vanish
    assert rel_err(ours, ref) <= 1e-4, f"received {ours[0, :5]}, expected {ref[0, :5]}"


def test_vgg16_zip_and_keras_give_identical_layers(vgg16_files, vgg16_converted):
    tmodel, files, _ = vgg16_files
    legacy = vgg16_converted[0]
    sd = tmodel.state_dict()
    assert np.array_equal(legacy.layers["conv3_2"]["weight"], sd["features.12.weight"].numpy())
    assert np.array_equal(legacy.layers["fc6"]["weight"], sd["classifier.0.weight"].numpy())
    for source in ("zip", "keras"):
        wf = read_weights(files[source])
        assert wf.arch == "vgg16" and list(wf.layers) == list(legacy.layers)
        for name, layer in wf.layers.items():
            w, b = layer["weight"], layer["bias"]
            assert set(layer) == {"weight", "bias"} and w.dtype == np.float32 and w.flags.c_contiguous
            assert np.array_equal(w, legacy.layers[name]["weight"]), f"{source}: {name} weight differs"
            assert np.array_equal(b, legacy.layers[name]["bias"]), f"{source}: {name} bias differs"
        meta = wf.meta
        del wf
    assert meta["channel_order"] == "BGR" and meta["scale"] == 255.0                 # Keras: 'caffe'
    assert meta["mean"] == [103.939, 116.779, 123.68] and meta["std"] == [1.0, 1.0, 1.0]


# ------------------------------------------------------------------------------------------------
# small nets: every path, and the Keras preprocessing end to end
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def small(tmp_path):
    tmodel = torch_vgg(**SMALL, seed=5)
    sd = state_dict_numpy(tmodel)
    files = {"legacy": tmp_path / "s-legacy.pth", "zip": tmp_path / "s-zip.pth",
             "keras1": tmp_path / "s-k1.h5", "keras2": tmp_path / "s-k2.h5"}
    torch.save(tmodel.state_dict(), files["legacy"], _use_new_zipfile_serialization=False)
    torch.save(tmodel.state_dict(), files["zip"])
    write_keras(files["keras1"], sd, SMALL["blocks"], 8)
    write_keras(files["keras2"], sd, SMALL["blocks"], 8, style="keras2", bias_first=True)
    return tmodel, files


@pytest.mark.parametrize("source", ["legacy", "zip", "keras1", "keras2"])
def test_small_net_loads_directly_and_matches_torch(small, source, photo):
    tmodel, files = small
    model = vgg.load(files[source])                                   # converted on the fly
    assert model.arch == "custom" and model.config.blocks == SMALL["blocks"]
    assert model.config.input_size == (32, 32) and model.classes == [f"class_{i}" for i in range(5)]
    x = prepare(photo, model.meta)[None]
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    with mg.no_grad():
        ours = model(x).data
    with torch.no_grad():
        ref = tmodel(torch.from_numpy(x)).numpy()                      # same network, same input
    assert rel_err(ours, ref) <= 1e-5


def test_keras_caffe_preprocessing_end_to_end(small, photo):
    """Keras nets see BGR 0..255 minus the BGR mean: check the input the torch twin is fed."""
    tmodel, files = small
    model = vgg.load(files["keras1"])
    x = prepare(photo, model.meta)
    from PIL import Image
    short = np.asarray(Image.fromarray(photo).resize((37, 37), Image.BILINEAR))
    crop = short[2:34, 2:34].astype(np.float32)                        # round((37 - 32) / 2) = 2
    expected = crop[:, :, ::-1].transpose(2, 0, 1) - np.array([103.939, 116.779, 123.68], np.float32)[:, None, None]
    assert np.allclose(x, expected, atol=1e-3)


def test_notop_keras(tmp_path):
    model = torch_vgg(**SMALL, seed=1)
    path = write_keras(tmp_path / "notop.h5", state_dict_numpy(model), SMALL["blocks"], 8, top=False)
    out = tmp_path / "notop-ours.h5"
    wf = convert.convert(path, out)
    assert wf.config["fc"] is None and list(wf.layers) == ["conv1_1", "conv2_1", "conv2_2"]
    net = vgg.load(out)
    assert net.layer_names[-1] == "pool2" and net.classes == []
    y = net(np.zeros((1, 3, 40, 24), np.float32))                     # any size without a classifier
    assert y.shape == (1, 16, 10, 6)


def test_arch_check_and_inference(small, tmp_path):
    _, files = small
    with pytest.raises(WeightsError, match=r"holds a custom net \(3 conv layers in blocks 1-2\), not vgg16"):
        read_weights(files["zip"], arch="vgg16")
    for arch, blocks in vgg.STANDARD.items():
        sd = _zeros_state_dict(blocks)                                # lazily allocated zeros: cheap
        wf = vgg.from_foreign(pth.vgg_layers("mem.pth", sd))
        assert wf.arch == arch
        assert list(wf.layers)[-3:] == ["fc6", "fc7", "fc8"]
    with pytest.raises(WeightsError, match="holds a vgg19 net .* not vgg16"):
        vgg.from_foreign(pth.vgg_layers("mem.pth", _zeros_state_dict(vgg.STANDARD["vgg19"])), arch="vgg16")


def _zeros_state_dict(blocks):
    sd, i, c = {}, 0, 3
    for block in blocks:
        for width in block:
            sd[f"features.{i}.weight"] = np.zeros((width, c, 3, 3), np.float32)
            sd[f"features.{i}.bias"] = np.zeros(width, np.float32)
            c, i = width, i + 2
        i += 1
    for j, (o, n) in zip((0, 3, 6), ((4096, 25088), (4096, 4096), (1000, 4096))):
        sd[f"classifier.{j}.weight"] = np.zeros((o, n), np.float32)
        sd[f"classifier.{j}.bias"] = np.zeros(o, np.float32)
    return sd


def test_batchnorm_and_foreign_state_dicts_refused(tmp_path):
    sd = {"features.0.weight": torch.zeros(4, 3, 3, 3), "features.0.bias": torch.zeros(4),
          "features.1.running_mean": torch.zeros(4)}
    torch.save(sd, tmp_path / "bn.pth")
    with pytest.raises(WeightsError, match="batch-norm"):
        read_weights(tmp_path / "bn.pth")
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="unexpected key 'encoder.weight'"):
        read_weights(tmp_path / "other.pth")


# ------------------------------------------------------------------------------------------------
# the .pth reader on its own
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("legacy", [True, False])
def test_pth_reader_dtypes_views_and_checkpoints(tmp_path, legacy):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {"t": base.t(),                                   # non-contiguous
          "view": base[1:3, 2:5],                          # offset into a shared storage
          "half": torch.linspace(-2, 2, 7).half(), "bf16": torch.tensor([1.5, -2.25]).bfloat16(),
          "long": torch.arange(5), "bool": torch.tensor([True, False]), "scalar": torch.tensor(3.5),
          "param": torch.nn.Parameter(torch.ones(2, 2))}
    path = tmp_path / "x.pth"
    torch.save({"state_dict": sd, "epoch": 3}, path, _use_new_zipfile_serialization=not legacy)
    out = pth.read_state_dict(path)
    for k, v in sd.items():
        expected = v.detach().float().numpy() if k == "bf16" else v.detach().numpy()
        assert out[k].dtype == expected.dtype, k
        assert np.array_equal(out[k], expected), k


def test_pth_reader_never_reads_out_of_bounds():
    st = pth._Storage("FloatStorage", 10)
    st.fill(np.arange(10, dtype=np.float32).tobytes())
    assert np.array_equal(pth._LazyTensor(st, 2, (2, 3), (3, 1)).to_numpy(), [[2, 3, 4], [5, 6, 7]])
    with pytest.raises(ValueError, match="reaches element"):
        pth._LazyTensor(st, 0, (100,), (1,)).to_numpy()
    with pytest.raises(ValueError, match="malformed"):
        pth._LazyTensor(st, -1, (2,), (1,)).to_numpy()


class _Hostile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["legacy", "zip", "plain-pickle"])
def test_hostile_pth_is_refused_and_never_runs(tmp_path, kind):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    payload = {"features.0.weight": torch.zeros(2, 3, 3, 3), "boom": _Hostile(marker)}
    if kind == "plain-pickle":
        with open(path, "wb") as f:
            pickle.dump(_Hostile(marker), f, protocol=2)
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=(kind == "zip"))
    assert not marker.exists()
    with pytest.raises(WeightsError, match=r"refusing to load it: its pickle asks for (posix|os|nt)\.system"):
        read_weights(path)
    with pytest.raises(WeightsError, match="refusing"):
        vgg.load(path)
    assert not marker.exists()


def test_truncated_and_junk_pth(tmp_path, small):
    _, files = small
    for source in ("legacy", "zip"):
        data = files[source].read_bytes()
        cut = tmp_path / f"cut-{source}.pth"
        cut.write_bytes(data[: len(data) * 2 // 3])
        with pytest.raises(WeightsError, match="truncated or corrupt"):
            read_weights(cut)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a weights file at all\n" * 10)
    with pytest.raises(WeightsError, match="not an HDF5 file, nor a PyTorch .pth"):
        vgg.load(junk)
    with pytest.raises(WeightsError, match="not found"):
        read_weights(tmp_path / "nope.pth")


def test_keras_errors(tmp_path, small):
    tmodel, files = small
    import h5py
    bad = tmp_path / "th.h5"
    write_keras(bad, state_dict_numpy(tmodel), SMALL["blocks"], 8)
    with h5py.File(bad, "r+") as f:                      # a Theano-ordered kernel (out, in, kh, kw)
        wn = f["block1_conv1"].attrs["weight_names"][0].decode()
        k = f["block1_conv1"][wn][()]
        del f["block1_conv1"][wn]
        f["block1_conv1"].create_dataset(wn, data=k.transpose(3, 2, 0, 1))
    with pytest.raises(WeightsError, match="layer block1_conv1 kernel has shape"):
        read_weights(bad)
    write_keras(bad, state_dict_numpy(tmodel), SMALL["blocks"], 8)
    with h5py.File(bad, "r+") as f:
        del f["block2_conv2"]
    with pytest.raises(WeightsError, match="layer block2_conv2 is listed in layer_names but missing"):
        read_weights(bad)
    with pytest.raises(WeightsError, match="overwrite the input"):
        convert.convert(files["keras1"], files["keras1"])
