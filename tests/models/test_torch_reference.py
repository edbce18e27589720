"""models/torch_reference.py: the PyTorch ResNet layout takes our state dict key for key and gives our
logits; ``import models`` does not import torch."""
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from models import resnet, torch_reference

from ..cli import ROOT


def test_importing_the_library_does_not_import_torch():
    code = "import sys, models, saliency, models.torch_reference; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("block", ["bottleneck", "basic"])
def test_the_layout_takes_our_state_dict_and_computes_our_logits(block):
    """float32 both: within 1e-4 of the largest logit; the taps are our table's names."""
    torch = pytest.importorskip("torch")
    ours = resnet.build(dict(name="b", block=block, depths=[2, 1], widths=[8, 16], stem_width=8), seed=1).eval()
    net = torch_reference.resnet(block == "bottleneck", [2, 1], widths=(8, 16), stem_width=8)
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})   # strict
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64), dtype=np.float32)
    taps = {}
    with mg.no_grad(), torch.no_grad():
        want, tapped, got = net.eval()(torch.from_numpy(x)).numpy(), net(torch.from_numpy(x), taps=taps), ours(x).data
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert np.array_equal(tapped.numpy(), want) and set(taps) == set(ours.layer_names)
