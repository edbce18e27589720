"""The project's weight file: round trip, format attributes, and every way a file can be bad."""
import json
import os

import h5py
import numpy as np
import pytest

import minigrad as mg
from models import WeightsError, vgg
from models.formats import hdf5


@pytest.fixture
def saved(small_model, tmp_path):
    path = tmp_path / "small.h5"
    vgg.save(small_model, path)
    return small_model, path


def test_round_trip(saved, tmp_path):
    model, path = saved
    assert sorted(os.listdir(tmp_path)) == ["small.h5"]                  # no temporary left behind
    loaded = vgg.load(path)
    assert loaded.arch == "small" and loaded.config == model.config
    assert loaded.classes == model.classes and loaded.meta == model.meta
    assert not loaded.training                                           # eval mode: no dropout
    for (name, p), (name2, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert name == name2 and q.dtype == np.float32
        assert np.array_equal(p.data, q.data), name
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    model.eval()
    with mg.no_grad():
        assert np.array_equal(model(x).data, loaded(x).data)


def test_file_layout(saved):
    model, path = saved
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == hdf5.FORMAT and a["format_version"] == 1
        assert a["arch"] == "small" and a["num_classes"] == 5
        assert tuple(a["input_size"]) == (32, 32) and a["channel_order"] == "RGB"
        assert a["scale"] == 1.0 and list(a["mean"]) == pytest.approx([0.485, 0.456, 0.406])
        assert a["resize"] == 37 and a["crop"] == 32
        assert [c.decode() if isinstance(c, bytes) else c for c in a["class_names"]] == model.classes
        config = json.loads(a["config"])
        assert config["blocks"] == [[8], [16, 16]] and config["fc"] == [32]
        assert f["conv2_2/weight"].shape == (16, 16, 3, 3) and f["conv2_2/weight"].dtype == np.float32
        assert f["fc3/weight"].shape == (32, 16 * 8 * 8) and f["fc4/bias"].shape == (5,)


def test_wnids_and_meta_survive(small_model, tmp_path):
    small_model.wnids = [f"n{i:08d}" for i in range(5)]
    small_model.meta = dict(small_model.meta, channel_order="BGR", scale=255.0,
                            mean=[1.0, 2.0, 3.0], std=[1.0, 1.0, 1.0])
    vgg.save(small_model, tmp_path / "w.h5")
    loaded = vgg.load(tmp_path / "w.h5")
    assert loaded.wnids == small_model.wnids and loaded.meta == small_model.meta


def test_missing_and_not_hdf5(tmp_path):
    with pytest.raises(WeightsError, match=r"weights file .*nope\.h5: not found"):
        vgg.load(tmp_path / "nope.h5")
    with pytest.raises(WeightsError, match="not found"):
        hdf5.read(tmp_path / "nope.h5")
    text = tmp_path / "notes.h5"
    text.write_text("hello\n")
    with pytest.raises(WeightsError, match="not an HDF5 file"):
        hdf5.read(text)
    with pytest.raises(WeightsError, match="not an HDF5 file"):
        vgg.load(text)
    with pytest.raises(WeightsError, match="is a directory"):
        vgg.load(tmp_path)


def test_truncated(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    for frac in (0.5, 0.95):
        cut = tmp_path / f"cut{frac}.h5"
        cut.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(WeightsError, match="truncated or corrupt"):
            vgg.load(cut)


def test_other_architecture(saved):
    _, path = saved
    with pytest.raises(WeightsError, match=r"architecture 'small', expected 'vgg16'"):
        vgg.load(path, arch="vgg16")
    assert vgg.load(path, arch="small").arch == "small"


def test_wrong_shape_names_layer_and_both_shapes(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        del f["conv2_2/weight"]
        f["conv2_2"].create_dataset("weight", data=np.zeros((16, 3, 3, 3), np.float32))
    with pytest.raises(WeightsError, match=r"layer conv2_2 has shape \(16, 3, 3, 3\), expected \(16, 16, 3, 3\)"):
        vgg.load(path)


def test_wrong_bias_shape(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        del f["fc4/bias"]
        f["fc4"].create_dataset("bias", data=np.zeros(7, np.float32))
    with pytest.raises(WeightsError, match=r"layer fc4 bias has shape \(7,\), expected \(5,\)"):
        vgg.load(path)


def test_missing_layer(saved, tmp_path):
    _, path = saved
    with h5py.File(path, "r+") as f:
        del f["fc3"]
    with pytest.raises(WeightsError, match="layer fc3 is listed but missing"):
        vgg.load(path)
    # a file written without the layer at all
    wf_layers = {"conv1_1": (np.zeros((8, 3, 3, 3)), np.zeros(8))}
    cfg = vgg.config_for(dict(name="small", blocks=[[8], [16, 16]], fc=[32], num_classes=5, input_size=32))
    meta = vgg.default_meta(cfg)
    hdf5.write(tmp_path / "partial.h5", "small", cfg.to_dict(), wf_layers, meta, ["a"] * 5)
    with pytest.raises(WeightsError, match=r"layer conv2_1 is missing \(expected weight \(16, 8, 3, 3\)\)"):
        vgg.load(tmp_path / "partial.h5")


def test_not_ours_and_newer_version(saved, tmp_path):
    _, path = saved
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(WeightsError, match="not a deepinside weights file"):
        vgg.load(plain)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = hdf5.FORMAT_VERSION + 1
    with pytest.raises(WeightsError, match=f"format_version {hdf5.FORMAT_VERSION + 1} is newer"):
        vgg.load(path)


def test_nan_weights_refused(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        f["conv1_1/weight"][0, 0, 0, 0] = np.nan
    with pytest.raises(WeightsError, match="layer conv1_1 weight contains NaN or Inf"):
        vgg.load(path)


def test_class_count_mismatch(saved):
    _, path = saved
    with h5py.File(path, "r+") as f:
        del f.attrs["class_names"]
        f.attrs.create("class_names", np.array(["a", "b"], dtype=object), dtype=h5py.string_dtype())
    with pytest.raises(WeightsError, match="2 class names for 5 outputs"):
        vgg.load(path)


def test_failed_write_leaves_nothing(tmp_path, small_model):
    small_model.meta = dict(small_model.meta)
    del small_model.meta["scale"]                                     # makes the writer fail midway
    with pytest.raises(KeyError):
        vgg.save(small_model, tmp_path / "w.h5")
    assert os.listdir(tmp_path) == []


def test_gpu_without_gpu_is_a_clear_error(saved):
    if mg.gpu_available():
        pytest.skip("a GPU is present")
    _, path = saved
    with pytest.raises(RuntimeError, match="no usable GPU"):
        vgg.load(path, device="gpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        vgg.load(path, device="tpu")
