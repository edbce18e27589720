"""Converted weight files under weights/ stay out of git; the shipped ones do not."""
import shutil
import subprocess

import pytest

from .cli import ROOT


def ignored(path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT)
    assert done.returncode in (0, 1), done
    return done.returncode == 0


@pytest.mark.parametrize("path", ["weights/vgg16.h5", "weights/vgg16_tv.h5", "weights/resnet50.h5", "weights/vgg19.h5",
                                  "weights/vgg16-397923af.pth", "weights/vgg16_weights_tf_dim_ordering_tf_kernels.h5"])
def test_converted_weights_are_ignored(path):
    assert ignored(path)


@pytest.mark.parametrize("path", ["weights/shapes_vgg.h5", "weights/shapes_resnet.h5", "weights/README.md"])
def test_shipped_files_are_not(path):
    assert not ignored(path)
