"""Localisation data sets in the ILSVRC formats: a folder of images and their ground-truth boxes.

Two ways to give the boxes:

* a folder of Pascal-VOC XML files, one per image with the image's stem (ILSVRC's ``val/*.xml``)::

      <annotation><size><width>500</width><height>375</height></size>
        <object><name>n01751748</name>
          <bndbox><xmin>111</xmin><ymin>108</ymin><xmax>412</xmax><ymax>374</ymax></bndbox></object>
        ... (several objects possible)
      </annotation>

* a CSV like the Kaggle release's ``LOC_val_solution.csv``: a header ``ImageId,PredictionString``,
  then one row per image, the string being groups of five tokens ``wnid xmin ymin xmax ymax``. Its
  ``LOC_synset_mapping.txt`` (``n01440764 tench, Tinca tinca``, one class per line, in index order)
  names the classes of a network whose weights carry no WordNet ids.

Coordinates in both are inclusive pixel indices (``xmax`` is the box's last column), counted from 0 by
default, as ILSVRC's boxes are read by most tools (Pascal VOC's own count from 1: ``origin=1``); they
are returned as the project's boxes, ``(x0, y0, x1, y1)`` from 0 with ``x1 = xmax + 1`` exclusive.

An object's ``<name>`` is matched to the network's classes by WordNet id when the network has them
(its weights file, or the synset mapping), otherwise by class name (case, spaces and underscores
ignored: the shapes task's ``circle``, ``L-shape``). Anything malformed or missing raises
:class:`AnnotationError` with one line naming the file.

    items = read_dataset("val/images", "val/annotations", model.classes, model.wnids)
    for item in items: item.image_id, item.path, item.objects   # objects: [(class, (x0, y0, x1, y1))]
"""
import csv
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm")


class AnnotationError(ValueError):
    """A missing, unreadable or malformed annotation; the message names the file."""


@dataclass
class Item:
    """One image of a data set: its id (the file stem), path, and ground truth
    (class index, box with exclusive ends); ``size`` is (height, width) when the annotation says."""
    image_id: str
    path: str
    objects: list = field(default_factory=list)
    size: tuple = None


# ------------------------------------------------------------------------------ class names
def _key(name):
    return " ".join(str(name).replace("_", " ").split()).lower()


class ClassMatcher:
    """Maps an annotation's class token (WordNet id or name) to the network's class index."""

    def __init__(self, classes, wnids=None):
        self.by_wnid = {w: i for i, w in enumerate(wnids or [])}
        self.by_name = {}
        for i, c in enumerate(classes):
            self.by_name.setdefault(_key(c), i)

    def __call__(self, token, where):
        if token in self.by_wnid:
            return self.by_wnid[token]
        if not self.by_wnid and _key(token) in self.by_name:
            return self.by_name[_key(token)]
        how = "WordNet id" if self.by_wnid else "class name"
        raise AnnotationError(f"{where}: {token!r} is not a {how} of this network")


def read_synset_mapping(path):
    """``LOC_synset_mapping.txt`` -> list of (wnid, name), one per line in index order."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                wnid, _, name = line.strip().partition(" ")
                if not (wnid.startswith("n") and wnid[1:].isdigit()):
                    raise AnnotationError(f"{path}: line {n} does not start with a WordNet id: {line.strip()[:60]!r}")
                out.append((wnid, name.split(",")[0].strip()))
    except (OSError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: cannot be read ({e})") from None
    if not out:
        raise AnnotationError(f"{path}: no classes in the synset mapping")
    return out


# ------------------------------------------------------------------------------- the readers
def _box(values, where, origin=0):
    try:
        xmin, ymin, xmax, ymax = (int(round(float(v))) - origin for v in values)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: box {list(values)} is not four numbers") from None
    if xmin < 0 or ymin < 0 or xmax < xmin or ymax < ymin:
        raise AnnotationError(f"{where}: box (xmin {xmin}, ymin {ymin}, xmax {xmax}, ymax {ymax}) is empty "
                              "or negative")
    return xmin, ymin, xmax + 1, ymax + 1                          # inclusive -> exclusive ends


def read_voc_xml(path, match, origin=0):
    """One Pascal-VOC XML file -> (objects, size or None). ``match(token, where)`` gives a class;
    ``origin`` is the annotation's first pixel index (0 or 1)."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise AnnotationError(f"{path}: annotation not found") from None
    except (ET.ParseError, OSError) as e:
        raise AnnotationError(f"{path}: not a readable XML annotation ({e})") from None
    size = None
    w, h = root.findtext("size/width"), root.findtext("size/height")
    if w is not None and h is not None:
        try:
            size = (int(h), int(w))
        except ValueError:
            raise AnnotationError(f"{path}: <size> is not two integers") from None
    objects = []
    for k, obj in enumerate(root.iter("object"), 1):
        name = (obj.findtext("name") or "").strip()
        tags = [obj.findtext(f"bndbox/{t}") for t in ("xmin", "ymin", "xmax", "ymax")]
        if not name or any(t is None for t in tags):
            raise AnnotationError(f"{path}: object {k} lacks a <name> or a complete <bndbox>")
        objects.append((match(name, path), _box(tags, f"{path}: object {k}", origin)))
    if not objects:
        raise AnnotationError(f"{path}: no <object> with a box")
    return objects, size


def read_solution_csv(path, match, origin=0):
    """``LOC_val_solution.csv``-style file -> {image id: objects}."""
    out = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AnnotationError(f"{path}: cannot be read as CSV ({e})") from None
    if not rows or [c.strip() for c in rows[0][:2]] != ["ImageId", "PredictionString"]:
        raise AnnotationError(f"{path}: expected the header 'ImageId,PredictionString'")
    for n, row in enumerate(rows[1:], 2):
        if not row or not "".join(row).strip():
            continue
        where = f"{path}: line {n}"
        if len(row) != 2:
            raise AnnotationError(f"{where}: expected 2 fields, found {len(row)}")
        tokens = row[1].split()
        if not tokens or len(tokens) % 5:
            raise AnnotationError(f"{where}: PredictionString must be groups of 'wnid xmin ymin xmax ymax'")
        objects = [(match(tokens[i], where), _box(tokens[i + 1:i + 5], where, origin))
                   for i in range(0, len(tokens), 5)]
        out.setdefault(row[0].strip(), []).extend(objects)
    if not out:
        raise AnnotationError(f"{path}: no annotated images")
    return out


def list_images(folder):
    """{stem: path} of the image files in ``folder`` (not recursive), by extension."""
    if not os.path.isdir(folder):
        raise AnnotationError(f"{folder}: not a folder of images")
    out = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS:
            if stem in out:
                raise AnnotationError(f"{os.path.join(folder, name)}: a second image with the stem {stem!r}")
            out[stem] = os.path.join(folder, name)
    if not out:
        raise AnnotationError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return out


def read_dataset(images, annotations, classes, wnids=None, synsets=None, origin=0):
    """Every image of the folder ``images`` with its ground truth, sorted by image id.

    annotations : a folder of VOC XML files (``STEM.xml`` per image) or a LOC_val_solution-style CSV
    classes, wnids : the network's class names and WordNet ids (or None)
    synsets : optional LOC_synset_mapping.txt; gives WordNet ids by class index when ``wnids`` is None
        (its class count must match the network's)
    origin : the annotations' first pixel index, 0 (ILSVRC, the default) or 1 (Pascal VOC)

    Raises AnnotationError (one line, naming the file) for an image without an annotation, an
    unreadable or malformed annotation, or a class the network does not have.
    """
    if origin not in (0, 1):
        raise ValueError(f"origin must be 0 or 1, got {origin!r}")
    if wnids is None and synsets is not None:
        mapping = read_synset_mapping(synsets)
        if len(mapping) != len(classes):
            raise AnnotationError(f"{synsets}: {len(mapping)} classes, the network has {len(classes)}")
        wnids = [w for w, _ in mapping]
    match = ClassMatcher(classes, wnids)
    paths = list_images(images)
    items = []
    if os.path.isdir(annotations):
        for stem, path in paths.items():
            objects, size = read_voc_xml(os.path.join(annotations, stem + ".xml"), match, origin)
            items.append(Item(stem, path, objects, size))
    elif os.path.isfile(annotations):
        table = read_solution_csv(annotations, match, origin)
        for stem, path in paths.items():
            if stem not in table:
                raise AnnotationError(f"{annotations}: no row for the image {path}")
            items.append(Item(stem, path, table[stem]))
    else:
        raise AnnotationError(f"{annotations}: no such folder of XML files or CSV file")
    return items
