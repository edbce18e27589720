"""The engine's layout, as a reader meets it: no import circle of more than 3 modules (imports inside
functions counted), none that joins the fast tier and the core, only tiers.py importing the fast tier,
and the simple tier never loading Numba, checked in a fresh interpreter on a VGG saliency map."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "minigrad"


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path):
    """The minigrad modules that the file imports anywhere (top level or inside functions)."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("minigrad")}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rsplit(".", 1)[0]
            target = (base + ("." + node.module if node.module else "")) if node.level else node.module
            if not target or not target.startswith("minigrad"):
                continue
            for a in node.names:                                   # "from . import fast" names a module
                sub = f"{target}.{a.name}"
                found.add(sub if (ROOT / Path(*sub.split("."))).with_suffix(".py").exists()
                          or (ROOT / Path(*sub.split("."))).is_dir() else target)
    return found - {name}


def graph():
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def circles(edges):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def is_fast(name):
    return name == "minigrad.fast" or name.startswith("minigrad.fast.")


def test_import_circles_are_small_and_never_join_the_fast_tier_and_the_core():
    edges = graph()
    assert "minigrad.tensor" in edges and "minigrad.fast.conv" in edges
    for component in circles(edges):
        assert len(component) <= 3, sorted(component)
        assert len({is_fast(m) for m in component}) == 1, sorted(component)


def test_only_tiers_imports_the_fast_tier():
    importers = {m for m, targets in graph().items() if not is_fast(m) and any(map(is_fast, targets))}
    assert importers == {"minigrad.tiers"}


def test_the_tensor_module_imports_no_op():
    assert graph()["minigrad.tensor"] <= {"minigrad.backend"}


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


SIMPLE_RUN = """
import sys
import numpy as np
import minigrad as mg, saliency
from models import vgg
model = vgg.build({"blocks": [[4], [8]], "fc": [16], "num_classes": 3, "input_size": 16}, seed=0).eval()
batch = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
with mg.relu_rule("deconvnet"):
    m = saliency.saliency_map(saliency.input_gradient(model, batch, 1))
model.train()
mg.functional.cross_entropy(model(mg.Tensor(batch)), np.array([2])).backward()
print(mg.current_ops(), m.shape, sorted(k for k in sys.modules if k.split(".")[0] in ("numba", "minigrad.fast")
                                        or k.startswith("minigrad.fast")))
"""


def test_the_simple_tier_never_loads_numba():
    """A saliency map under a ReLU rule and a training step, under MINIGRAD_OPS=simple, in a fresh
    interpreter: neither Numba nor any module of the fast tier is loaded."""
    env = dict(os.environ, MINIGRAD_OPS="simple")
    r = subprocess.run([sys.executable, "-c", SIMPLE_RUN], capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["simple", "(1,", "16,", "16)", "[]"], r.stdout


def test_the_fast_tier_does_load_it():
    """The same run on the fast tier loads both (so the check above can fail)."""
    r = subprocess.run([sys.executable, "-c", SIMPLE_RUN], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, MINIGRAD_OPS="fast"), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "'numba'" in r.stdout and "'minigrad.fast.conv'" in r.stdout


@pytest.mark.parametrize("tier", ["simple", "fast"])
def test_a_script_on_the_simple_tier_never_loads_numba(tmp_path, tier):
    """``MINIGRAD_OPS=simple python scripts/saliency_map.py``, which sizes the engine's threads as every
    script does, imports no Numba (``-X importtime`` lists every import); on the fast tier it does."""
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(image)
    r = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "scripts" / "saliency_map.py"), "--image",
                        str(image), "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, MINIGRAD_OPS=tier), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    loaded = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert ("numba" in loaded) == (tier == "fast") and ("minigrad.fast.conv" in loaded) == (tier == "fast")
