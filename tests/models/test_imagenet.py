"""The 1000 ImageNet classes and class look-up (by index, name, WordNet id; any class list)."""
import hashlib
import importlib.resources

import numpy as np
import pytest

from models import imagenet
from models.imagenet import ClassLookupError, lookup


def test_the_file_is_keras_class_index_byte_for_byte():
    data = importlib.resources.files("models").joinpath("imagenet_classes.json").read_bytes()
    assert hashlib.md5(data).hexdigest() == "c2c37ea517e94d9795004a39431a14cb"  # Keras' file_hash


def test_known_classes():
    names, wnids = imagenet.names(), imagenet.wnids()
    assert len(names) == len(wnids) == 1000
    expected = {0: "tench", 1: "goldfish", 130: "flamingo", 134: "crane", 281: "tabby",
                285: "Egyptian_cat", 504: "coffee_mug", 517: "crane", 817: "sports_car",
                999: "toilet_tissue"}
    assert {i: names[i] for i in expected} == expected
    assert wnids[0] == "n01440764" and wnids[285] == "n02124075"
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000              # index = sorted wnid order


@pytest.mark.parametrize("query, index", [
    (281, 281), (np.int64(7), 7), ("281", 281), (" 0 ", 0), ("tabby", 281), ("Egyptian_cat", 285),
    ("egyptian cat", 285), ("EGYPTIAN   CAT", 285), ("sports car", 817), ("coffee_mug", 504),
    ("n02124075", 285), ("jack-o'-lantern", 607)])
def test_lookup(query, index):
    assert lookup(query) == index


@pytest.mark.parametrize("query, index", [
    ("n02123045", 281), ("tabby cat", 281), ("Tabby Cat", 281), ("tabby, tabby cat", 281),
    ("great grey owl, great gray owl, Strix nebulosa", 24), ("sports car, sport car", 817)])
def test_wordnet_ids_synonym_lists_and_longer_names(query, index):
    """As LOC_synset_mapping.txt writes a class (``n02123045 tabby, tabby cat``): the id, the list,
    or one of its names, also with the model's class list (a converted file's) instead of the default."""
    assert lookup(query) == index
    assert lookup(query, list(imagenet.names())) == index
    with pytest.raises(ClassLookupError, match="ambiguous: 281, 282 \\('tabby', 'tiger cat'"):
        lookup("tabby, tiger cat")


def test_suggestions_by_words_and_by_spelling():
    with pytest.raises(ClassLookupError) as info:
        lookup("cat")
    message = str(info.value)
    for name in ("'tiger cat' (282)", "'Persian cat' (283)", "'Siamese cat' (284)", "'Egyptian cat' (285)"):
        assert name in message, message
    with pytest.raises(ClassLookupError, match=r"did you mean 'great white shark' \(2\), 'tiger shark' \(3\)"):
        lookup("white shark")
    with pytest.raises(ClassLookupError, match=r"did you mean 'flamingo' \(130\)\?$"):
        lookup("flamingoo")


def test_ambiguous_names_list_their_indices():
    with pytest.raises(ClassLookupError, match=r"^'crane' is ambiguous: 134, 517"):
        lookup("crane")
    with pytest.raises(ClassLookupError, match="ambiguous: 638, 639"):
        lookup("Maillot")


def test_unknown_and_out_of_range():
    with pytest.raises(ClassLookupError, match=r"'egyptian dog' is not a class name of this model \(1000 classes\)"):
        lookup("egyptian dog")
    with pytest.raises(ClassLookupError, match="did you mean 'flamingo'"):
        lookup("flamingoo")
    with pytest.raises(ClassLookupError, match=r"class index 1000 is out of range: this model has 1000 classes \(0-999\)"):
        lookup(1000)
    with pytest.raises(ClassLookupError, match="index -1 is out of range"):
        lookup("-1")
    with pytest.raises(ClassLookupError, match="give an index or a name"):
        lookup(True)
    assert issubclass(ClassLookupError, ValueError)


def test_any_class_list():
    shapes = ["circle", "square", "triangle", "Five_point_star", "cross", "square"]
    assert lookup("Triangle", shapes) == 2 and lookup(4, shapes) == 4
    assert lookup("five point star", shapes) == 3
    with pytest.raises(ClassLookupError, match="'square' is ambiguous: 1, 5"):
        lookup("square", shapes)
    with pytest.raises(ClassLookupError, match=r"out of range: this model has 6 classes \(0-5\)"):
        lookup(6, shapes)
    with pytest.raises(ClassLookupError, match="not a class name"):
        lookup("n02124075", shapes)                                       # no wnids for this list
    with pytest.raises(ClassLookupError, match=r"'tabby' is not a class name of this model \(6 classes\)"):
        lookup("tabby", shapes)


def test_top_k_and_softmax():
    logits = np.array([1.0, 3.0, 2.0, 3.0], np.float32)
    p = imagenet.softmax(logits)
    assert p.dtype == np.float32 and abs(float(p.sum()) - 1) < 1e-6
    top = imagenet.top_k(p, ["a", "b", "c", "d"], k=3)
    assert [t[:2] for t in top] == [(1, "b"), (3, "d"), (2, "c")]          # ties keep index order
    assert len(imagenet.top_k(p, ["a", "b", "c", "d"], k=10)) == 4
    assert imagenet.display_name("Egyptian_cat") == "Egyptian cat"
