"""ResNet's ops against PyTorch (a test-only reference; skipped when torch is not installed): batch
norm in training and inference, forward, backward and the running statistics over several steps,
padded max pooling, global average pooling, and a small conv-BN-ReLU-maxpool-residual-GAP-linear
net's logits and input gradients, under the three ReLU rules, against a float64 PyTorch reference.

float32 against float32: relative tolerance 1e-4 of the largest magnitude (test_against_torch.py).
float64 against float64: 1e-10 (the same maths in other orders: rounding about 1e-15 a term).
float32 against the float64 reference: 1e-5 (float32's 6e-8 unit roundoff through ten layers and the
backward's sums; measured 4e-8 to 7e-7 on both tiers, every rule, both modes).
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F, nn, relu_rules

from ..conftest import distinct
from .test_against_torch import RTOL, TorchRelu, pair, rel_err
from .test_batchnorm import bn_inputs
from .test_tiers import TinyResNet

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def rel_err_any(ours, theirs):
    """As rel_err, across dtypes (float32 ours against a float64 reference)."""
    theirs = theirs.detach().numpy()
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 7, 6), (2, 5, 3, 3)])
def test_batch_norm(tier, rng, shape, training):
    x, gamma, beta, mean, var = bn_inputs(rng, shape, np.float32)
    (mx, mg_, mb), (tx, tg, tb) = pair(x, gamma, beta)
    ours_mean, ours_var = mean.copy(), var.copy()
    theirs_mean, theirs_var = torch.tensor(mean), torch.tensor(var)
    out = F.batch_norm(mx, mg_, mb, ours_mean, ours_var, training, 0.1, 1e-5)
    ref = TF.batch_norm(tx, theirs_mean, theirs_var, tg, tb, training, 0.1, 1e-5)
    assert rel_err(out.data, ref) <= RTOL
    assert rel_err(ours_mean, theirs_mean) <= RTOL and rel_err(ours_var, theirs_var) <= RTOL
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for ours, theirs in ((mx, tx), (mg_, tg), (mb, tb)):
        assert rel_err(ours.grad, theirs.grad) <= RTOL


def test_batch_norm_module_running_statistics_over_several_steps(tier, rng):
    """Five training steps on different batches, then inference: running mean and (unbiased) variance,
    the step count, and the eval-mode output and input gradient match torch.nn.BatchNorm2d."""
    ours, theirs = nn.BatchNorm2d(3, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2)
    gamma, beta = rng.uniform(0.5, 2, 3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    ours.weight.data, ours.bias.data = gamma.copy(), beta.copy()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(gamma))
        theirs.bias.copy_(torch.tensor(beta))
    for step in range(5):
        x = (rng.standard_normal((4, 3, 5, 6)) * (step + 1) + step).astype(np.float32)
        assert rel_err(ours(mg.Tensor(x)).data, theirs(torch.tensor(x))) <= RTOL
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 5
    assert rel_err(ours.running_mean, theirs.running_mean) <= RTOL
    assert rel_err(ours.running_var, theirs.running_var) <= RTOL
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    (mx,), (tx,) = pair(x)
    out, ref = ours(mx), theirs(tx)
    assert rel_err(out.data, ref) <= RTOL
    out.sum().backward()
    ref.sum().backward()
    assert rel_err(mx.grad, tx.grad) <= RTOL


@pytest.mark.parametrize("xshape,k,s,p", [((2, 3, 9, 8), 3, 2, 1), ((1, 2, 10, 11), (3, 5), (2, 1), (1, 2)),
                                          ((2, 2, 7, 7), 2, 2, 1), ((1, 3, 12, 12), 5, 3, 2)])
def test_padded_max_pool2d(tier, rng, xshape, k, s, p):
    x = distinct(rng, xshape, dtype=np.float32) - 100                  # all negative: padding must not win
    (mx,), (tx,) = pair(x)
    out, ref = F.max_pool2d(mx, k, s, p), TF.max_pool2d(tx, k, s, p)
    assert rel_err(out.data, ref) == 0                                 # max and masks: exact
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    assert rel_err(mx.grad, tx.grad) <= 1e-6                           # overlaps: sums in another order


def test_global_avg_pool2d(tier, rng):
    x = rng.standard_normal((3, 4, 7, 5)).astype(np.float32)
    (mx,), (tx,) = pair(x)
    out, ref = F.global_avg_pool2d(mx), TF.adaptive_avg_pool2d(tx, 1).flatten(1)
    assert rel_err(out.data, ref) <= RTOL
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    ref.backward(torch.tensor(g))
    assert rel_err(mx.grad, tx.grad) <= RTOL


def torch_tiny_resnet(state, x, training, rule):
    """TinyResNet (test_tiers.py) in PyTorch's functional ops, from our state dict, every ReLU call
    through TorchRelu with ``rule``."""
    t = {k: torch.tensor(np.array(v)) for k, v in state.items()}        # copies: torch updates in place

    def bn(name, h):
        return TF.batch_norm(h, t[f"{name}.running_mean"], t[f"{name}.running_var"], t[f"{name}.weight"],
                             t[f"{name}.bias"], training, 0.1, 1e-5)

    def relu(h):
        return TorchRelu.apply(h, rule)

    x = TF.max_pool2d(relu(bn("bn1", TF.conv2d(x, t["conv1.weight"], None, 2, 3))), 3, 2, 1)
    y = bn("bn3", TF.conv2d(relu(bn("bn2", TF.conv2d(x, t["conv2.weight"], None, 1, 1))), t["conv3.weight"], None, 1, 1))
    x = relu(x + y)
    y = bn("bn5", TF.conv2d(relu(bn("bn4", TF.conv2d(x, t["conv4.weight"], None, 2, 1))), t["conv5.weight"], None, 1, 1))
    x = relu(bn("down_bn", TF.conv2d(x, t["down.weight"], None, 2, 0)) + y)
    return TF.linear(x.mean(dim=(2, 3)), t["fc.weight"], t["fc.bias"])


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("rule", relu_rules.RULES)
def test_tiny_resnet_logits_and_input_gradients(tier, rng, rule, training):
    """Ours in float64 (tight) and in float32 against PyTorch in float64: logits and the input gradient
    of a random weighting of the logits (in training mode a class score summed over the batch would
    give 0: the batch statistics' backward removes a gradient constant over a channel's values), every
    ReLU (the ones after the additions too) under the rule; in eval mode the fast tier runs each
    conv+BN(+ReLU) as one folded convolution."""
    x, g = rng.standard_normal((2, 3, 29, 26)), rng.standard_normal((2, 5))
    reference = TinyResNet(np.float64)
    tx = torch.tensor(x, requires_grad=True)
    ref = torch_tiny_resnet(reference.state_dict(), tx, training, rule)
    ref.backward(torch.tensor(g))
    for dtype, tol_logits, tol_grad in ((np.float64, 1e-10, 1e-10), (np.float32, 1e-5, 1e-5)):
        net = TinyResNet(dtype).train(training).requires_grad_(False)
        mx = mg.Tensor(x.astype(dtype), requires_grad=True)
        logits = net(mx)
        with mg.relu_rule(rule):
            logits.backward(g.astype(dtype))
        assert logits.dtype == mx.grad.dtype == dtype
        assert rel_err_any(logits.data, ref) <= tol_logits
        assert rel_err_any(mx.grad, tx.grad) <= tol_grad
