"""ResNet weight files: depth inferred from torchvision's keys, our HDF5 round trip and layout,
custom configurations, training-mode batch norm against torch, and every bad input as one line."""
import json
import pathlib

import h5py
import numpy as np
import pytest

import minigrad as mg
import models
from models import WeightsError, convert, resnet, vgg
from models.formats import hdf5, pth
from models.load import family_of, read_weights

from ..cli import call, one_error_line
from .conftest import SMALL, rel_err, torch_vgg

torch = pytest.importorskip("torch")
from .torch_resnet import randomise, torch_resnet  # noqa: E402  (imports torch)

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: a small custom net: the CIFAR-style stem (3x3, stride 1, no max pool), 3 stages of basic blocks.
TINY = dict(name="tiny", block="basic", depths=[1, 2, 1], widths=[8, 16, 32], stem_width=8, stem_kernel=3,
            stem_stride=1, maxpool=False, num_classes=5, input_size=32)


def _zeros_state_dict(arch):
    """torchvision's keys and shapes for ``arch``, as (lazily allocated) zeros: cheap even for resnet152."""
    return {f"{layer}.{k}": np.zeros(shape, np.int64 if k == "num_batches_tracked" else np.float32)
            for layer, group in resnet.layer_shapes(resnet.config_for(arch)).items() for k, shape in group.items()}


def test_depth_and_name_inferred_from_keys():
    for arch in resnet.STANDARD:
        wf = resnet.from_foreign(pth.resnet_layers("mem.pth", _zeros_state_dict(arch)))
        assert wf.arch == arch and wf.config["depths"] == resnet.STANDARD[arch][1], arch
        assert list(wf.layers)[:2] == ["conv1", "bn1"] and list(wf.layers)[-1] == "fc"
        assert wf.classes[281] == "tabby" and wf.meta["resize"] == 256 and wf.meta["std"] == [0.229, 0.224, 0.225]
    sd = _zeros_state_dict("resnet50")
    with pytest.raises(WeightsError, match=r"mem\.pth: holds a resnet50 net \(bottleneck blocks 3-4-6-3\), not resnet101"):
        resnet.from_foreign(pth.resnet_layers("mem.pth", sd), arch="resnet101")
    with pytest.raises(WeightsError, match=r"holds a resnet50 net \(bottleneck blocks 3-4-6-3\), not vgg16"):
        resnet.from_foreign(pth.resnet_layers("mem.pth", sd), arch="vgg16")


def test_torchvision_file_recognised_by_content(tmp_path):
    tmodel = torch_resnet("resnet18", seed=1)
    torch.save(tmodel.state_dict(), tmp_path / "weights.bin")                 # no .pth suffix
    assert pth.read(tmp_path / "weights.bin").family == "resnet"
    model = models.load(tmp_path / "weights.bin")
    assert isinstance(model, resnet.ResNet) and model.arch == "resnet18"
    assert isinstance(resnet.load(tmp_path / "weights.bin", arch="resnet18"), resnet.ResNet)
    with pytest.raises(WeightsError, match=r"holds a resnet network, which vgg\.load does not build"):
        vgg.load(tmp_path / "weights.bin")
    with pytest.raises(WeightsError, match=r"holds a shapes_vgg network, which resnet\.load does not build"):
        resnet.load(ROOT / "weights" / "shapes_vgg.h5")


def test_file_without_num_batches_tracked(tmp_path):
    """Files saved before PyTorch 0.4.1 (the first torchvision ResNets) have no num_batches_tracked."""
    tmodel = randomise(_torch_tiny(), seed=2)
    sd = {k: v for k, v in tmodel.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    wf = read_weights(tmp_path / "old.pth")
    assert wf.arch == "custom" and wf.layers["bn1"]["num_batches_tracked"] == 0
    model = models.load(tmp_path / "old.pth")
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with mg.no_grad(), torch.no_grad():
        assert rel_err(model(x).data, tmodel(torch.from_numpy(x)).numpy()) <= 1e-5


def _torch_tiny():
    from .torch_resnet import TorchResNet
    return TorchResNet(False, TINY["depths"], TINY["widths"], stem_width=8, num_classes=5, stem_kernel=3, maxpool=False)


def test_custom_config_inferred_and_round_trip(tmp_path):
    tmodel = randomise(_torch_tiny(), seed=3)
    torch.save(tmodel.state_dict(), tmp_path / "tiny.pth")
    convert.convert(tmp_path / "tiny.pth", tmp_path / "tiny.h5")
    model = models.load(tmp_path / "tiny.h5")
    expected = dict(TINY, name="custom", input_size=[224, 224], in_channels=3)
    assert model.config.to_dict() == expected and model.layer_names[:4] == ("conv1", "bn1", "relu", "layer1.0.conv1")
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with mg.no_grad(), torch.no_grad():
        ours = model(x).data
        assert rel_err(ours, tmodel(torch.from_numpy(x)).numpy()) <= 1e-5
    model.meta = dict(model.meta, resize=37, crop=32)
    model.classes = list("abcde")
    resnet.save(model, tmp_path / "again.h5")
    again = models.load(tmp_path / "again.h5")
    assert again.config == model.config and again.classes == list("abcde") and again.meta == model.meta
    with mg.no_grad():
        assert np.array_equal(again(x).data, ours)
    assert family_of(read_weights(tmp_path / "again.h5")) == "resnet"             # by its config


def test_file_layout(tmp_path):
    model = resnet.build(TINY, seed=0).eval()
    resnet.save(model, tmp_path / "t.h5")
    with h5py.File(tmp_path / "t.h5", "r") as f:
        a = f.attrs
        assert a["format_version"] == 2 and a["arch"] == "tiny"
        assert json.loads(a["config"]) == dict(TINY, input_size=[32, 32], in_channels=3)
        assert set(f["conv1"]) == {"weight"} and f["conv1/weight"].shape == (8, 3, 3, 3)
        assert set(f["layer2.0.bn1"]) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
        assert f["layer2.0.bn1/num_batches_tracked"].dtype == np.int64 and f["layer2.0.bn1/running_var"].dtype == np.float32
        assert f["layer2.0.downsample.0/weight"].shape == (16, 8, 1, 1) and "layer1.0.downsample.0" not in f
        assert f["fc/weight"].shape == (5, 32) and [t for t in a["layers"]][-1] == "fc"
    vgg.save(vgg.build(dict(name="small", **SMALL), seed=0), tmp_path / "v.h5")
    with h5py.File(tmp_path / "v.h5", "r") as f:
        assert f.attrs["format_version"] == 1                                  # older readers still read VGG files


def test_training_mode_batch_norm_matches_torch():
    """One forward in training mode: batch statistics, and the running averages updated as torch's."""
    tmodel = randomise(_torch_tiny(), seed=4).train()
    sd = {k: v.numpy().copy() for k, v in tmodel.state_dict().items()}
    model = resnet.build(TINY)
    model.load_state_dict(sd)
    x = np.random.default_rng(2).standard_normal((4, 3, 32, 32)).astype(np.float32)
    ours = model(x).data
    ref = tmodel(torch.from_numpy(x)).detach().numpy()
    assert rel_err(ours, ref) <= 1e-4
    for name, array in model.state_dict().items():
        expected = tmodel.state_dict()[name].numpy()
        assert np.allclose(array, expected, rtol=1e-4, atol=1e-5), name
    assert model.layer("layer2.0.bn1").num_batches_tracked == sd["layer2.0.bn1.num_batches_tracked"] + 1


def test_build_options():
    model = resnet.build(TINY, seed=0, zero_init_residual=True)
    assert model.training and model.layer("layer2.1.bn2").weight.data.max() == 0
    assert model.layer("layer2.1.bn1").weight.data.min() == 1
    assert resnet.build("resnet34", num_classes=7, input_size=96).config.num_classes == 7
    with pytest.raises(ValueError, match="depths and widths must be lists of the same length"):
        resnet.build(dict(TINY, widths=[8, 16]))
    with pytest.raises(ValueError, match="unknown ResNet architecture 'resnet20'"):
        resnet.build("resnet20")
    with pytest.raises(ValueError, match="unknown layer 'layer1.1.conv1'"):           # layer1 has one block
        model.layer("layer1.1.conv1")


# ------------------------------------------------------------------------------------------------
# bad input: one line naming the file, the layer, the expected and the found shape; exit 2
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def r18(tmp_path_factory):
    d = tmp_path_factory.mktemp("r18")
    sd = torch_resnet("resnet18", seed=5).state_dict()
    torch.save(sd, d / "resnet18.pth", _use_new_zipfile_serialization=False)
    return sd, d


def _variant(r18, name, change):
    sd, d = r18
    sd = dict(sd)
    change(sd)
    torch.save(sd, d / name)
    return d / name


def _refused(capsys, tmp_path, src, *args):
    out = tmp_path / "out.h5"
    assert call("convert_weights", src, "--out", out, *args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(src) in line and not out.exists()
    return line


def test_cli_converts_resnet(r18, tmp_path, capsys):
    src = r18[1] / "resnet18.pth"
    assert call("convert_weights", src, "--out", tmp_path / "r.h5", "--arch", "resnet18") == 0
    printed = capsys.readouterr().out
    assert "resnet18, 41 layers, 11,689,512 parameters, 1000 classes" in printed
    assert models.load(tmp_path / "r.h5").arch == "resnet18"


def test_cli_wrong_architecture_both_ways(r18, tmp_path, capsys):
    line = _refused(capsys, tmp_path, r18[1] / "resnet18.pth", "--arch", "vgg16")
    assert "holds a resnet18 net (basic blocks 2-2-2-2), not vgg16" in line
    line = _refused(capsys, tmp_path, r18[1] / "resnet18.pth", "--arch", "resnet50")
    assert "holds a resnet18 net (basic blocks 2-2-2-2), not resnet50" in line
    src = tmp_path / "vgg.pth"
    torch.save(torch_vgg(**SMALL).state_dict(), src)
    assert "not resnet50" in _refused(capsys, tmp_path, src, "--arch", "resnet50")
    convert.convert(r18[1] / "resnet18.pth", tmp_path / "r.h5")
    assert "architecture 'resnet18', expected 'vgg16'" in _refused(capsys, tmp_path, tmp_path / "r.h5", "--arch", "vgg16")


def test_cli_missing_bn_statistic(r18, tmp_path, capsys):
    src = _variant(r18, "no_var.pth", lambda sd: sd.pop("layer2.1.bn2.running_var"))
    line = _refused(capsys, tmp_path, src)
    assert "layer layer2.1.bn2 has no running_var (expected shape (128,))" in line
    src = _variant(r18, "nan.pth", lambda sd: sd.update({"bn1.running_var": torch.full((64,), float("nan"))}))
    assert "layer bn1 running_var contains NaN or Inf" in _refused(capsys, tmp_path, src)


@pytest.mark.parametrize("arch", [None, "resnet18"])
def test_cli_block_of_the_wrong_width(r18, tmp_path, capsys, arch):
    src = _variant(r18, "wide.pth", lambda sd: sd.update({"layer3.1.conv1.weight": torch.zeros(200, 256, 3, 3)}))
    line = _refused(capsys, tmp_path, src, *(["--arch", arch] if arch else []))
    assert "layer layer3.1.conv1 has shape (200, 256, 3, 3), expected (256, 256, 3, 3)" in line
    src = _variant(r18, "bn.pth", lambda sd: sd.update({"layer1.0.bn1.running_mean": torch.zeros(32)}))
    assert "layer layer1.0.bn1 running_mean has shape (32,), expected (64,)" in _refused(capsys, tmp_path, src)


def test_our_file_with_a_wrong_layer(tmp_path):
    resnet.save(resnet.build(TINY, seed=0), tmp_path / "t.h5")
    with h5py.File(tmp_path / "t.h5", "r+") as f:
        del f["layer3.0.bn2/bias"]
        f["layer3.0.bn2"].create_dataset("bias", data=np.zeros(16, np.float32))
    with pytest.raises(WeightsError, match=r"t\.h5: layer layer3\.0\.bn2 bias has shape \(16,\), expected \(32,\)"):
        models.load(tmp_path / "t.h5")
    with h5py.File(tmp_path / "t.h5", "r+") as f:
        del f["layer3.0.bn2"]
    with pytest.raises(WeightsError, match=r"layer layer3\.0\.bn2 is listed but missing"):
        models.load(tmp_path / "t.h5")


def test_unexpected_keys_refused(r18, tmp_path):
    src = _variant(r18, "se.pth", lambda sd: sd.update({"layer1.0.se.fc.weight": torch.zeros(4, 64)}))
    with pytest.raises(WeightsError, match=r"unexpected key 'layer1\.0\.se\.fc\.weight': not a torchvision ResNet"):
        read_weights(src)
    src = _variant(r18, "bias.pth", lambda sd: sd.update({"conv1.bias": torch.zeros(64)}))
    with pytest.raises(WeightsError, match="layer conv1 has bias, which this architecture does not use"):
        read_weights(src)
    src = _variant(r18, "gap.pth", lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("layer2.0.")])
    with pytest.raises(WeightsError, match=r"not numbered layer1\.0, layer1\.1, .*: found layer1\.0, layer1\.1, layer2\.1"):
        read_weights(src)
