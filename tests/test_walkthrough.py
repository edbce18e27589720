"""docs/walkthrough.ipynb runs top to bottom on the current code (so it cannot rot), and its committed
outputs show pictures on a code host."""
from pathlib import Path

import nbclient          # the test extra installs both, and ipykernel
import nbformat

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "walkthrough.ipynb"


def _outputs(nb, kind):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == kind]


def test_walkthrough_executes_top_to_bottom():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:                                   # run from scratch, not from saved outputs
        if cell.cell_type == "code":
            cell.outputs = []
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    assert not _outputs(nb, "error")
    text = "".join(o.text for o in _outputs(nb, "stream"))
    for section in ("the network's verdict on the class model", "IoU", "def deconvnet(x_positive, g)",
                    "disagree at", "fast tier vs simple tier"):
        assert section in text, section
    assert len([o for o in _outputs(nb, "display_data") if "image/png" in o.data]) == 4


def test_committed_notebook_shows_its_pictures():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not _outputs(nb, "error")
    assert len([o for o in _outputs(nb, "display_data") if "image/png" in o.data]) == 4
