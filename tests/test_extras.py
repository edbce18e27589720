"""The install extras: the tests' own brings no CUDA package; CI installs the CUDA one besides."""
import re

import pytest

from .cli import ROOT

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's")

CUDA = re.compile(r"^(numba-cuda|cuda-|nvidia-|cupy)", re.I)


def extras():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_the_test_extra_brings_no_cuda_package():
    test = extras()["test"]
    assert not [r for r in test if CUDA.match(r)], test
    assert any(r.startswith("pytest") for r in test)


def test_the_cuda_compile_needs_its_own_extra_which_ci_installs():
    assert any(r.startswith("numba-cuda") for r in extras()["test-cuda"])
    assert any(r.startswith("cuda-toolkit") for r in extras()["test-cuda"])
    assert ".[test,test-cuda]" in (ROOT / ".ci" / "run").read_text()
    assert "'.[test,test-cuda]'" in (ROOT / "README.md").read_text(encoding="utf-8")
