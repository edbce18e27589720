"""The three ways back through a ReLU (paper Sec. 4; Springenberg et al. 2014).

Going backwards through ``X_{n+1} = max(X_n, 0)`` with the signal ``R_{n+1}`` arriving from above:

- ``gradient``  (back-propagation):  R_n = R_{n+1} * [X_n > 0]
- ``deconvnet`` (Zeiler & Fergus):   R_n = R_{n+1} * [R_{n+1} > 0]   i.e. relu(R_{n+1})
- ``guided``    (guided backprop):   R_n = R_{n+1} * [R_{n+1} > 0] * [X_n > 0]

Convolution (the transposed, flipped-kernel convolution) and max pooling (through the switches)
go backwards the same way in all three, so a deconvnet reconstruction *is* the gradient with the
ReLU rule swapped. That is the paper's point, and in this engine it is literally one switch:

    with relu_rule("deconvnet"):
        score.backward()

The rule in force when ``backward()`` runs is the one used. Nothing else in the engine knows about
deconvnets. On the simple tier (simple.py) the ReLU's backward calls the function below that
defines the rule in force (``in_force()``); the fast tier's kernels implement the same formulas
(fast/cpu_kernels.py: relu_backward) and are told which by ``code(name)``.
"""
import contextlib

#: the rule names; a rule's code for the compiled kernels is its index here (``code``).
RULES = ("gradient", "deconvnet", "guided")

_rule = "gradient"
_observers = []


def gradient(x_positive, g):
    """R_n = R_{n+1} * [X_n > 0]."""
    return g * x_positive


def deconvnet(x_positive, g):
    """R_n = R_{n+1} * [R_{n+1} > 0]: the forward activation plays no part."""
    return g * (g > 0)


def guided(x_positive, g):
    """R_n = R_{n+1} * [R_{n+1} > 0] * [X_n > 0]: both masks."""
    return g * (g > 0) * x_positive


def current_rule():
    """The name of the ReLU backward rule now in force."""
    return _rule


def in_force():
    """The function of the rule now in force: ``gradient``, ``deconvnet`` or ``guided`` above."""
    return {"gradient": gradient, "deconvnet": deconvnet, "guided": guided}[_rule]


def code(name=None):
    """The compiled kernels' number for rule ``name`` (default: the rule in force): its index in RULES."""
    return RULES.index(_rule if name is None else name)


def notify(x_positive, g, result):
    """Hand one ReLU backward's arrays to the observers (``observe``); both tiers call this."""
    for callback in _observers:
        callback(x_positive, g, result)


@contextlib.contextmanager
def relu_rule(name):
    """Use ReLU backward rule ``name`` ('gradient', 'deconvnet' or 'guided') inside the block."""
    global _rule
    if name not in RULES:
        raise ValueError(f"relu_rule: unknown rule {name!r}; choose one of {', '.join(RULES)}")
    previous, _rule = _rule, name
    try:
        yield
    finally:
        _rule = previous


@contextlib.contextmanager
def observe(callback):
    """Call ``callback(x_positive, g, result)`` at every ReLU backward inside the block.

    For analysis only (e.g. counting where the deconvnet mask [R > 0] and the gradient's mask
    [X > 0] disagree); the arrays must not be modified.
    """
    _observers.append(callback)
    try:
        yield
    finally:
        _observers.remove(callback)
