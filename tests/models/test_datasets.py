"""The ILSVRC-format readers on small generated files, well-formed and malformed."""
import numpy as np
import pytest
from PIL import Image

from models import datasets
from models.datasets import AnnotationError

CLASSES = ["circle", "ring", "L-shape"]
WNIDS = ["n00000001", "n00000002", "n00000003"]


def xml(objects, size=(40, 30)):
    objs = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                   f"<ymax>{d}</ymax></bndbox></object>" for n, (a, b, c, d) in objects)
    return (f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height></size>{objs}"
            "</annotation>")


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for stem in ("a", "b"):
        Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(images / f"{stem}.png")
    (images / "notes.txt").write_text("not an image")
    ann = tmp_path / "ann"
    ann.mkdir()
    return images, ann


def test_voc_xml_folder_by_name(folder):
    images, ann = folder
    (ann / "a.xml").write_text(xml([("l-shape", (0, 0, 39, 29)), ("ring", (5, 6, 7, 8))]))
    (ann / "b.xml").write_text(xml([("Circle", (10, 11, 12, 13))]))
    items = datasets.read_dataset(images, ann, CLASSES)
    assert [i.image_id for i in items] == ["a", "b"]
    # inclusive pixel coordinates -> exclusive ends; the whole 40 x 30 image is (0, 0, 40, 30)
    assert items[0].objects == [(2, (0, 0, 40, 30)), (1, (5, 6, 8, 9))]
    assert items[0].size == (30, 40)
    assert items[1].objects == [(0, (10, 11, 13, 14))]
    # Pascal VOC counts pixels from 1
    match = datasets.ClassMatcher(CLASSES)
    assert datasets.read_voc_xml(ann / "b.xml", match, origin=1)[0] == [(0, (9, 10, 12, 13))]
    with pytest.raises(AnnotationError, match=r"a\.xml: object 1: box .* negative"):
        datasets.read_dataset(images, ann, CLASSES, origin=1)          # an xmin of 0 cannot be 1-based


def test_voc_xml_folder_by_wnid(folder):
    images, ann = folder
    (ann / "a.xml").write_text(xml([("n00000003", (1, 2, 3, 4))]))
    (ann / "b.xml").write_text(xml([("n00000001", (1, 2, 3, 4))]))
    items = datasets.read_dataset(images, ann, CLASSES, WNIDS)
    assert [i.objects[0][0] for i in items] == [2, 0]
    # with WordNet ids known, a class name is not accepted in their place
    (ann / "b.xml").write_text(xml([("circle", (1, 2, 3, 4))]))
    with pytest.raises(AnnotationError, match=r"b\.xml.*'circle' is not a WordNet id"):
        datasets.read_dataset(images, ann, CLASSES, WNIDS)


@pytest.mark.parametrize("text,message", [
    (None, "annotation not found"),
    ("<annotation><object>", "not a readable XML"),
    (xml([("ring", (1, 2, 3, 4))]).replace("<xmax>3</xmax>", ""), "object 1 lacks"),
    (xml([("ring", (1, 2, "x", 4))]), "not four numbers"),
    (xml([("ring", (5, 2, 3, 4))]), "empty or negative"),
    (xml([]), "no <object>"),
    (xml([("zebra", (1, 2, 3, 4))]), "'zebra' is not a class name"),
    (xml([("ring", (1, 2, 3, 4))]).replace("<width>40", "<width>forty"), "<size>"),
])
def test_voc_xml_malformed_names_the_file(folder, text, message):
    images, ann = folder
    (ann / "a.xml").write_text(xml([("ring", (1, 2, 3, 4))]))
    if text is not None:
        (ann / "b.xml").write_text(text)
    with pytest.raises(AnnotationError) as e:
        datasets.read_dataset(images, ann, CLASSES)
    assert str(e.value).startswith(str(ann / "b.xml")) and message in str(e.value)
    assert "\n" not in str(e.value)


def test_solution_csv_with_synset_mapping(folder, tmp_path):
    images, _ = folder
    csv = tmp_path / "LOC_val_solution.csv"
    csv.write_text("ImageId,PredictionString\nb,n00000002 1 2 3 4 n00000002 0 0 39 29 \na,n00000001 5 5 9 9\n")
    synsets = tmp_path / "LOC_synset_mapping.txt"
    synsets.write_text("n00000001 circle, disc\nn00000002 ring\nn00000003 L-shape\n")
    assert datasets.read_synset_mapping(synsets) == [("n00000001", "circle"), ("n00000002", "ring"),
                                                     ("n00000003", "L-shape")]
    items = datasets.read_dataset(images, csv, CLASSES, None, synsets)
    assert [(i.image_id, i.objects) for i in items] == [("a", [(0, (5, 5, 10, 10))]),
                                                        ("b", [(1, (1, 2, 4, 5)), (1, (0, 0, 40, 30))])]
    # without the mapping and without wnids in the weights, a WordNet id is not a class name
    with pytest.raises(AnnotationError, match="'n00000002' is not a class name"):
        datasets.read_dataset(images, csv, CLASSES)
    synsets.write_text("n00000001 circle\n")
    with pytest.raises(AnnotationError, match="1 classes, the network has 3"):
        datasets.read_dataset(images, csv, CLASSES, None, synsets)


@pytest.mark.parametrize("text,message", [
    ("Image,Boxes\na,ring 1 2 3 4\n", "header"),
    ("ImageId,PredictionString\na,ring 1 2 3\n", "line 2: PredictionString must be groups"),
    ("ImageId,PredictionString\na,ring 1 2 3 4,extra\n", "line 2: expected 2 fields"),
    ("ImageId,PredictionString\na,ring 1 2 3 4\n", "no row for the image"),
    ("ImageId,PredictionString\n", "no annotated images"),
])
def test_solution_csv_malformed(folder, tmp_path, text, message):
    images, _ = folder
    csv = tmp_path / "sol.csv"
    csv.write_text(text)
    with pytest.raises(AnnotationError) as e:
        datasets.read_dataset(images, csv, CLASSES)
    assert str(e.value).startswith(str(csv)) and message in str(e.value)


def test_missing_inputs(tmp_path, folder):
    images, ann = folder
    with pytest.raises(AnnotationError, match="no such folder of XML files or CSV"):
        datasets.read_dataset(images, tmp_path / "nope", CLASSES)
    with pytest.raises(AnnotationError, match="not a folder of images"):
        datasets.read_dataset(tmp_path / "nope", ann, CLASSES)
    with pytest.raises(AnnotationError, match="no image files"):
        datasets.read_dataset(ann, ann, CLASSES)
