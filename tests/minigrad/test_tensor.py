"""The autodiff core: graph, accumulation, no_grad, elementwise and shape ops, all gradchecked."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F

from ..conftest import away_from_zero


def T(a):
    return mg.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def test_tensor_used_twice_gets_both_contributions():
    x = T([2.0, -3.0])
    y = (x * x + x * 3.0).sum()          # dy/dx = 2x + 3
    y.backward()
    np.testing.assert_array_equal(x.grad, [7.0, -3.0])


def test_gradients_accumulate_across_backward_calls():
    x = T([1.0, 2.0])
    (x * 2.0).sum().backward()
    (x * 5.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])


def test_diamond_graph():
    x = T([0.5])
    a = x.exp()
    b = a * a + a.log()                  # e^{2x} + x
    b.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp(1.0) + 1, rtol=1e-14)


def test_backward_on_non_scalar_needs_grad():
    x = T(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="non-scalar"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.ones((2, 3)))
    np.testing.assert_array_equal(x.grad, 2 * np.ones((2, 3)))


def test_backward_grad_shape_checked():
    x = T(np.ones(3))
    with pytest.raises(ValueError, match="grad has shape"):
        (x * 2.0).backward(np.ones(4))


def test_no_grad_records_nothing():
    x = T([1.0])
    with mg.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y._op is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    assert mg.is_grad_enabled()


def test_intermediate_grads_freed_unless_retained():
    x = T([1.0, 2.0])
    h = x * 3.0
    k = (x * 4.0).retain_grad()
    (h + k).sum().backward()
    assert h.grad is None
    np.testing.assert_array_equal(k.grad, [1.0, 1.0])


def test_python_scalars_and_lists_become_float32():
    assert mg.Tensor([1, 2]).dtype == np.float32
    assert mg.Tensor(3.0).dtype == np.float32
    assert mg.Tensor(np.zeros(2)).dtype == np.float64       # arrays keep their dtype


def test_float64_scalar_does_not_promote_float32():
    x = mg.Tensor(np.ones(3, np.float32), requires_grad=True)
    y = x * np.sqrt(np.float64(2.0)) + np.float64(1.0) - np.float64(0.5) / np.float64(2.0)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_transpose_with_negative_axes():
    a = mg.Tensor(np.arange(6.0).reshape(1, 2, 3), requires_grad=True)
    out = a.transpose(0, -1, 1)
    assert out.shape == (1, 3, 2)
    assert mg.gradcheck(lambda a: a.transpose(0, -1, 1), [a])
    with pytest.raises(ValueError, match="not a permutation"):
        a.transpose(0, 0, 1)


def test_mixed_tensor_dtypes_refused():
    with pytest.raises(TypeError, match="float32 and float64"):
        mg.Tensor(np.ones(2, np.float32)) + mg.Tensor(np.ones(2))


ELEMENTWISE = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("rsub", lambda a, b: 2.0 - a * b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("rdiv", lambda a, b: 1.5 / b + a),
    ("neg", lambda a, b: -a + b),
    ("pow", lambda a, b: (a * a + 1.0) ** 1.5 + b ** 2),
    ("exp_log", lambda a, b: (a * 0.3).exp() + (b * b + 0.5).log()),
]


@pytest.mark.parametrize("name,fn", ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((5,), ())])
def test_elementwise_gradcheck(rng, name, fn, shapes):
    a = mg.Tensor(away_from_zero(rng, shapes[0], 0.5), requires_grad=True)
    b = mg.Tensor(away_from_zero(rng, shapes[1], 0.5), requires_grad=True)
    assert mg.gradcheck(fn, [a, b])


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((2, 3, 4), (2, 4, 3))])
def test_matmul_gradcheck(rng, shape_a, shape_b):
    a = mg.Tensor(rng.standard_normal(shape_a), requires_grad=True)
    b = mg.Tensor(rng.standard_normal(shape_b), requires_grad=True)
    assert mg.gradcheck(lambda a, b: a @ b, [a, b])


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_sum_mean_gradcheck(rng, axis, keepdims):
    a = mg.Tensor(rng.standard_normal((3, 4, 5)), requires_grad=True)
    assert mg.gradcheck(lambda a: a.sum(axis, keepdims), [a])
    assert mg.gradcheck(lambda a: a.mean(axis, keepdims), [a])


def test_shape_ops_gradcheck(rng):
    a = mg.Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    assert mg.gradcheck(lambda a: a.reshape(4, 6) * 2.0, [a])
    assert mg.gradcheck(lambda a: a.transpose(2, 0, 1) @ mg.Tensor(np.ones((3, 2))), [a])
    assert mg.gradcheck(lambda a: a.reshape(6, 4).T, [a])
    assert mg.gradcheck(lambda a: F.flatten(a), [a])


def test_getitem_class_scores(rng):
    logits = mg.Tensor(rng.standard_normal((4, 6)), requires_grad=True)
    targets = np.array([5, 0, 0, 3])
    assert mg.gradcheck(lambda z: z[:, 2], [logits])
    assert mg.gradcheck(lambda z: z[np.arange(4), targets], [logits])
    assert mg.gradcheck(lambda z: z[np.array([1, 1, 2])], [logits])      # repeated rows accumulate
    s = logits[np.arange(4), targets].sum()
    logits.grad = None
    s.backward()
    expected = np.zeros((4, 6))
    expected[np.arange(4), targets] = 1
    np.testing.assert_array_equal(logits.grad, expected)


def test_gradcheck_reports_received_and_expected():
    class Wrong(mg.tensor.Function):
        @staticmethod
        def forward(ctx, a):
            return a * a

        @staticmethod
        def backward(ctx, g):
            return g                                     # should be 2 a g

    a = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"received .* expected"):
        mg.gradcheck(lambda a: Wrong.apply(a), [a])


def test_gradcheck_refuses_float32():
    a = mg.Tensor(np.ones(2, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        mg.gradcheck(lambda a: a * 2.0, [a])


def test_gradcheck_random_directions_for_large_inputs(rng):
    a = mg.Tensor(rng.standard_normal((60, 80)), requires_grad=True)   # 4800 > max_elements
    assert mg.gradcheck(lambda a: (a * a).sum(axis=1), [a])
