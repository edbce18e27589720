"""The 1000 ILSVRC-2012 classes, and class look-up by index or name for any list of classes.

``imagenet_classes.json`` (beside this file) is Keras' ``imagenet_class_index.json``, byte for byte
(MD5 c2c37ea517e94d9795004a39431a14cb): ``{"0": ["n01440764", "tench"], ...}``. Index order is the
sorted order of the WordNet ids, as in every ILSVRC-trained model (Caffe, Keras, torchvision).

Names are Keras-style (``Egyptian_cat``, ``sports_car``) and not unique: 134 (the bird) and 517 (the
machine) are both ``crane``, 638 and 639 both ``maillot``. :func:`lookup` refuses such a name and
lists the indices to choose from.

    lookup("egyptian cat")         -> 285       (case-insensitive, spaces and underscores alike)
    lookup(281) / lookup("281")    -> 281
    lookup("n02123045")            -> 281       (a WordNet id: for the 1000 ImageNet classes, or given wnids)
    lookup("tabby, tabby cat")     -> 281       (WordNet's synonyms, as LOC_synset_mapping.txt lists them)
    lookup("tabby cat")            -> 281       (the one class whose name's words are all in it)
    lookup("circle", classes=["circle", "square", ...])   -> 0

An unknown name gets suggestions: the classes that share a word with it ('cat': Egyptian cat,
Persian cat, ...), then those spelt alike ('flamingoo': flamingo).
"""
import difflib
import functools
import json
import os
import re

import numpy as np

_FILE = os.path.join(os.path.dirname(__file__), "imagenet_classes.json")


class ClassLookupError(ValueError):
    """An unknown or ambiguous class name, or an index out of range."""


@functools.lru_cache(maxsize=1)
def _table():
    with open(_FILE, encoding="utf-8") as f:
        raw = json.load(f)
    return tuple((raw[str(i)][0], raw[str(i)][1]) for i in range(len(raw)))


def names():
    """The 1000 class names (Keras style), by index."""
    return [name for _, name in _table()]


def wnids():
    """The 1000 WordNet ids (``n01440764`` ...), by index."""
    return [wnid for wnid, _ in _table()]


def _key(name):
    return " ".join(str(name).replace("_", " ").split()).lower()


def _words(name):
    return set(re.findall(r"[a-z0-9]+", _key(name)))


def display_name(name):
    """'Egyptian_cat' -> 'Egyptian cat'."""
    return str(name).replace("_", " ")


def lookup(name_or_index, classes=None, wnid_list=None):
    """Index of a class given by index (int or digit string), name, WordNet id, a comma-separated list
    of synonyms (``"tabby, tabby cat"``), or a name with more words than the class's (``"tabby cat"``).

    Parameters
    ----------
    name_or_index : int or str
    classes : list of str, optional    the model's class names (default: the 1000 ImageNet names)
    wnid_list : list of str, optional  WordNet ids (default: ImageNet's, when the classes are its 1000)

    Raises ClassLookupError (a ValueError) for an index out of range, an unknown name (with the
    classes that share a word with it or are spelt alike), or a name several classes share (listing
    their indices).
    """
    if classes is None:
        classes = names()
    if wnid_list is None and len(classes) == 1000 and list(classes) == names():
        wnid_list = wnids()
    n = len(classes)
    if isinstance(name_or_index, (bool, np.bool_)):
        raise ClassLookupError(f"class {name_or_index!r}: give an index or a name")
    if isinstance(name_or_index, (int, np.integer)) or str(name_or_index).strip().lstrip("-").isdigit():
        index = int(str(name_or_index).strip())
        if not 0 <= index < n:
            raise ClassLookupError(f"class index {index} is out of range: this model has {n} classes (0-{n - 1})")
        return index
    text = str(name_or_index)
    if wnid_list is not None and text.strip() in wnid_list:
        return list(wnid_list).index(text.strip())
    keys = [_key(c) for c in classes]
    synonyms = [_key(part) for part in text.split(",") if part.strip()] or [_key(text)]
    hits = sorted({i for i, k in enumerate(keys) if k in synonyms})               # the name itself
    if not hits:                                                                 # its words cover one name
        words = set().union(*map(_words, synonyms))
        hits = [i for i, c in enumerate(classes) if _words(c) and _words(c) <= words]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        shown = {display_name(classes[i]) for i in hits}
        which = f"{', '.join(repr(display_name(classes[i])) for i in hits)}; " if len(shown) > 1 else ""
        raise ClassLookupError(f"{text!r} is ambiguous: {', '.join(map(str, hits))} ({which}give the index instead)")
    hint = ", ".join(f"{display_name(classes[i])!r} ({i})" for i in _suggestions(synonyms, classes, keys))
    raise ClassLookupError(f"{text!r} is not a class name of this model ({n} classes)"
                           + (f"; did you mean {hint}?" if hint else ""))


def _suggestions(synonyms, classes, keys, limit=6):
    """Indices of the classes that share the most words with the query, then those spelt alike."""
    words = set().union(*map(_words, synonyms))
    shared = [(len(_words(c) & words), i) for i, c in enumerate(classes)]
    picks = [i for count, i in sorted(shared, key=lambda t: (-t[0], t[1])) if count][:limit]
    for key in synonyms:
        for close in difflib.get_close_matches(key, keys, n=3, cutoff=0.75):
            index = keys.index(close)
            if index not in picks:
                picks.append(index)
    return picks[:limit]


def top_k(scores, classes, k=5):
    """[(index, name, score)] for the k largest scores of one row (k is clipped to the class count)."""
    scores = np.asarray(scores).ravel()
    k = max(1, min(int(k), scores.size))
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(i), classes[i], float(scores[i])) for i in order]


def softmax(logits, axis=-1):
    """Numerically stable softmax of a NumPy array (keeps its dtype)."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
