"""models.load: one entry point that reads any supported file by content and builds its network."""
import ast
import pathlib
import shutil

import numpy as np
import pytest

import minigrad as mg
import models
from models import WeightsError, vgg
from models.load import ARCHITECTURES, family_of, read_weights

from .conftest import SMALL, write_keras

ROOT = pathlib.Path(__file__).resolve().parents[2] / "models"


def _torchvision_sd(model):
    """Our SMALL model's weights under torchvision's VGG keys (conv, relu[, pool] -> index gaps)."""
    sd, i = {}, 0
    for b, widths in enumerate(model.config.blocks, 1):
        for k in range(1, len(widths) + 1):
            layer = getattr(model, f"conv{b}_{k}")
            sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = layer.weight.data, layer.bias.data
            i += 2
        i += 1
    fcs = [n for n in model.weight_layers if n.startswith("fc")]
    for j, n in zip(range(0, 3 * len(fcs), 3), fcs):
        sd[f"classifier.{j}.weight"], sd[f"classifier.{j}.bias"] = getattr(model, n).weight.data, getattr(model, n).bias.data
    return sd


def _logits(model, seed=0):
    x = np.random.default_rng(seed).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with mg.no_grad():
        return model(mg.Tensor(x)).data


def test_models_load_is_the_package_entry_point(small_model, tmp_path):
    vgg.save(small_model, tmp_path / "w.h5")
    model = models.load(tmp_path / "w.h5")
    assert isinstance(model, vgg.VGG) and model.arch == "small" and not model.training
    assert model.classes == small_model.classes and model.meta == small_model.meta
    assert np.array_equal(_logits(model), _logits(small_model))
    assert np.array_equal(_logits(vgg.load(tmp_path / "w.h5")), _logits(model))   # the old entry point


def test_dispatch_is_by_content_not_extension(small_model, tmp_path):
    vgg.save(small_model, tmp_path / "ours.h5")
    shutil.copy(tmp_path / "ours.h5", tmp_path / "ours.pth")                # our HDF5 named .pth
    sd = {k: np.asarray(v) for k, v in _torchvision_sd(small_model).items()}
    write_keras(tmp_path / "keras.bin", sd, SMALL["blocks"], 8)              # Keras, no .h5 suffix
    want = _logits(small_model)
    assert np.array_equal(_logits(models.load(tmp_path / "ours.pth")), want)
    keras = models.load(tmp_path / "keras.bin")
    assert keras.meta["channel_order"] == "BGR" and keras.arch == "custom"
    for name in small_model.weight_layers:                                   # same layers, renamed
        assert np.array_equal(getattr(keras, name).weight.data, getattr(small_model, name).weight.data), name


def test_torchvision_pth_by_content(small_model, tmp_path):
    torch = pytest.importorskip("torch")
    sd = {k: torch.from_numpy(np.array(v)) for k, v in _torchvision_sd(small_model).items()}
    torch.save(sd, tmp_path / "tv.weights")                                  # no .pth suffix
    model = models.load(tmp_path / "tv.weights")
    assert model.meta["channel_order"] == "RGB" and model.meta["std"] == [0.229, 0.224, 0.225]
    assert np.array_equal(_logits(model), _logits(small_model))


def test_arch_check_and_errors(small_model, tmp_path):
    vgg.save(small_model, tmp_path / "w.h5")
    with pytest.raises(WeightsError, match=r"architecture 'small', expected 'vgg16'"):
        models.load(tmp_path / "w.h5", arch="vgg16")
    with pytest.raises(WeightsError, match=r"weights file .*nope\.h5: not found"):
        models.load(tmp_path / "nope.h5")
    (tmp_path / "junk.txt").write_text("not weights")
    with pytest.raises(WeightsError, match="not an HDF5 file, nor a PyTorch .pth"):
        models.load(tmp_path / "junk.txt")


def test_family_of_names_the_builder(small_model, tmp_path):
    vgg.save(small_model, tmp_path / "w.h5")
    wf = read_weights(tmp_path / "w.h5")
    assert family_of(wf) == "vgg" and ARCHITECTURES["vgg"] is vgg                # custom name, VGG config
    wf.arch, wf.config = "vgg16", {}
    assert family_of(wf) == "vgg"
    wf.arch = "transformer9"
    with pytest.raises(WeightsError, match=r"unknown architecture 'transformer9' \(this program builds vgg"):
        family_of(wf)


def _imports(path):
    """Module names a file imports, relative ones as written ('.formats', '..files')."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names |= {base} if node.module else {base + a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_no_import_circle_formats_then_architectures_then_load():
    for f in (ROOT / "formats").glob("*.py"):                   # readers know no network
        bad = {n for n in _imports(f) if any(w in n for w in ("vgg", "load", "convert"))}
        assert not bad, f"{f.name} imports {bad}"
    bad = {n for n in _imports(ROOT / "vgg.py") if "load" in n or "convert" in n}
    assert not bad, f"vgg.py imports {bad}"


def test_build_any_standard_network_by_name():
    from models import resnet
    from models.load import standard_names
    assert standard_names() == ["vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50",
                                "resnet101", "resnet152"]
    net = models.build("ResNet18", num_classes=7, input_size=64, seed=0)
    assert isinstance(net, resnet.ResNet) and net.training and net.arch == "resnet18"
    assert net.config.num_classes == 7 and net.config.input_size == (64, 64)
    again = models.build("resnet18", num_classes=7, input_size=64, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    assert isinstance(models.build("vgg11", input_size=32, num_classes=3), vgg.VGG)
    with pytest.raises(ValueError, match="unknown architecture 'vgg17': use one of vgg11, .*resnet152"):
        models.build("vgg17")
