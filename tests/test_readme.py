"""The README's Python examples run as written: each ```python block is executed in a fresh
interpreter at the repository's root, as a reader would paste it."""
import re
import subprocess
import sys

import pytest

from .cli import ROOT

BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), re.M | re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2, "the README's library examples are gone: update this test"


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{k}" for k in range(len(BLOCKS))])
def test_readme_python_block_runs(code):
    done = subprocess.run([sys.executable, "-c", code + "\nprint('README block ran')"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.endswith("README block ran\n"), done.stderr[-3000:]
