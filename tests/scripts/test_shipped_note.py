"""A user's own image through the shipped shapes model gets one note saying so, with the way to a real
network; other weights get none."""
import pytest
from PIL import Image

from models import shapes, vgg

from ..cli import ROOT, call
from ..saliency.twin import random_vgg

NOTE = "using the shipped demo model weights/shapes_vgg.h5"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data
    tmp = tmp_path_factory.mktemp("photos")
    paths = [tmp / "astronaut.png", tmp / "coffee.png"]
    for path, picture in zip(paths, (data.astronaut(), data.coffee())):
        Image.fromarray(picture).save(path)
    return paths


@pytest.mark.parametrize("script,extra", [("classify", ()), ("saliency_map", ("--target", "0")),
                                          ("deconvnet", ("--target", "0"))])
def test_the_shipped_model_says_so_once(photos, tmp_path, capsys, script, extra):
    out = () if script == "classify" else ("--out", tmp_path)
    assert call(script, "--image", *photos, *extra, *out) == 0
    err = capsys.readouterr().err
    assert err.count(NOTE) == 1, err
    line = next(line for line in err.splitlines() if NOTE in line)
    assert "--weights" in line and "weights/README.md" in line and "shapes" in line


def test_no_note_with_other_weights(photos, tmp_path, capsys):
    model = random_vgg(blocks=((8,), (16,)), fc=(32,), classes=10, size=32)
    model.classes = list(shapes.CLASSES)
    vgg.save(model, tmp_path / "other.h5")
    assert call("classify", "--weights", tmp_path / "other.h5", "--image", *photos) == 0
    assert NOTE not in capsys.readouterr().err
    assert call("classify", "--weights", ROOT / "weights" / "shapes_vgg.h5", "--image", photos[0]) == 0
    assert capsys.readouterr().err.count(NOTE) == 1                      # named explicitly: still the note
