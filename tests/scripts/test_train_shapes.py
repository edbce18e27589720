"""scripts/train_shapes.py: where it writes (a trial run once replaced the shipped model by default),
adversarial training (the attack itself: tests/saliency/test_adversarial.py)."""
import hashlib

import numpy as np

from models import vgg

from ..cli import ROOT, call

SHIPPED = ROOT / "weights" / "shapes_vgg.h5"
TINY = ("--train-size", 16, "--test-size", 8, "--epochs", 1, "--batch", 8, "--size", 16, "--curriculum-steps", 0)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_writes_under_out_by_default_and_leaves_the_shipped_model(tmp_path, monkeypatch, capsys):
    before = SHIPPED.read_bytes()
    monkeypatch.chdir(tmp_path)
    try:
        assert call("train_shapes", *TINY) == 0
        assert SHIPPED.read_bytes() == before, "the default run replaced weights/shapes_vgg.h5"
    finally:
        if SHIPPED.read_bytes() != before:              # a regression must not cost the shipped file
            SHIPPED.write_bytes(before)
    written = tmp_path / "out" / "shapes_vgg.h5"
    assert vgg.load(written).config.input_size == (16, 16)
    out = capsys.readouterr()
    assert "saved out/shapes_vgg.h5" in out.out and "replaced" not in out.out + out.err


def test_replacing_a_file_needs_out_naming_it_and_is_reported(tmp_path, capsys):
    target = tmp_path / "mine.h5"
    target.write_bytes(b"an older file")
    assert call("train_shapes", *TINY, "--out", target) == 0
    assert vgg.load(target).config.input_size == (16, 16)
    out = capsys.readouterr()
    assert f"{target} exists: it will be replaced" in out.err
    assert f"saved {target} (replaced the file that was there)" in out.out


def test_adversarial_training_runs_and_refuses_a_negative_eps(tmp_path, capsys):
    out = tmp_path / "adv.h5"
    assert call("train_shapes", *TINY, "--adversarial-eps", 1.0, "--adversarial-steps", 2, "--out", out) == 0
    assert vgg.load(out).config.input_size == (16, 16)
    assert call("train_shapes", *TINY, "--adversarial-eps", -1, "--out", out) == 2
    assert "--adversarial-eps must be >= 0" in capsys.readouterr().err


def test_the_resnet_trains_its_batch_norms_and_keeps_their_statistics(tmp_path, monkeypatch, capsys):
    import models
    from minigrad import nn
    from models import resnet
    monkeypatch.chdir(tmp_path)
    assert call("train_shapes", *TINY, "--arch", "resnet") == 0           # 16 images, batch 8: 2 steps
    assert "saved out/shapes_resnet.h5" in capsys.readouterr().out
    model = models.load(tmp_path / "out" / "shapes_resnet.h5")
    assert isinstance(model, resnet.ResNet) and model.config.input_size == (16, 16)
    bns = [model.layer(n) for n in model.layer_names if isinstance(model.layer(n), nn.BatchNorm2d)]
    assert bns and all(int(bn.num_batches_tracked) == 2 for bn in bns)
    assert all(np.abs(bn.running_mean).max() > 0 for bn in bns)           # moved from the fresh zeros
    # --resume takes a file of the same architecture only
    assert call("train_shapes", *TINY, "--arch", "vgg", "--resume", "out/shapes_resnet.h5") == 2
    assert "not a shapes network of this architecture (--arch vgg)" in capsys.readouterr().err
