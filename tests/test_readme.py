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


def test_a_random_real_sized_network_in_two_lines(tmp_path):
    """The README's two lines to a random ResNet-50 without PyTorch run as written: in a fresh folder,
    the second with the repository's scripts and a photograph for photo.jpg."""
    import shlex

    from PIL import Image
    from skimage import data
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^```\n(python -c 'import models; models\.save\(models\.build.*?)^```", readme, re.M | re.S)
    assert block, "the README's random-network lines are gone: update this test"
    make, use = block.group(1).strip().splitlines()
    Image.fromarray(data.chelsea()).save(tmp_path / "photo.jpg")
    env = dict(__import__("os").environ, PYTHONPATH=str(ROOT))
    for line in (make, use):
        argv = shlex.split(line)
        assert argv[0] == "python"
        argv = [sys.executable] + [str(ROOT / a) if a.startswith("scripts/") else a for a in argv[1:]]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "photo_gradient.png").is_file()


def test_the_readme_takes_pytorch_from_its_cpu_index():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in readme
    assert "pip install torch==2.13.0 captum" not in readme


PAGES = [ROOT / "README.md", ROOT / "weights" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _slug(heading):
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_a_door():
    """At most 250 lines, and its first screen has both commands and where to start reading."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: its depth belongs in docs/"
    first = "\n".join(lines[:30])
    for needed in ("python scripts/demo.py", "python -m pytest", "docs/walkthrough.ipynb", "minigrad/simple.py"):
        assert needed in first, f"{needed} is not on the README's first screen"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_links_and_paths_resolve(page):
    """Every relative link (and its #anchor) and every repository path a page names exists."""
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", file.read_text(encoding="utf-8"), re.M)
            if anchor not in {_slug(h) for h in headings}:
                broken.append(target)
    named = re.findall(r"(?<![\w/.])((?:scripts|experiments|minigrad|models|saliency|docs|tests)/[\w/.-]*\w\.(?:py|md|png|ipynb|sh))(?!\w)",
                       text)
    broken += [p for p in named if not (ROOT / p).exists()]
    assert not broken, f"{page.relative_to(ROOT)} names what does not exist: {sorted(set(broken))}"
