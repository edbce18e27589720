"""Per class: does the network that made a class model, and an independent classifier, see the class? (dev tool)

    python experiments/judge_class_models.py out/cm_default out/cm_paper --independent out/independent.pt

Each DIR is the --out of ``scripts/class_model.py --save-npy`` (its preset read from the folder's
class_model_*.npy and the script's own picture rule: the default preset's pictures as they are, the
others stretched). Both networks judge the picture a person sees (uint8), not the raw array.
"""
import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]     # scripts/class_model.py (its picture rule), the library

import class_model as script  # noqa: E402  (scripts/class_model.py)
import independent_classifier  # noqa: E402  (beside this file)
from models import vgg  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dirs", nargs="+")
    p.add_argument("--independent", help="a file of experiments/independent_classifier.py")
    p.add_argument("--weights", default=str(ROOT / "weights" / "shapes_vgg.h5"),
                   help="the network that made the pictures (default: the shipped one)")
    p.add_argument("--preset", nargs="+", help="the preset of each dir (default: 'paper' if the name says so)")
    args = p.parse_args()
    model = vgg.load(args.weights)
    for k, d in enumerate(args.dirs):
        preset = args.preset[k] if args.preset else ("paper" if "paper" in d else "default")
        files = sorted(Path(d).glob("class_model_*.npy"), key=lambda f: int(re.findall(r"_(\d+)_", f.name)[0]))
        classes = [int(re.findall(r"_(\d+)_", f.name)[0]) for f in files]
        pictures = np.stack([script.picture_of(np.load(f), model, preset)[0] for f in files])
        shipped = [script.verdict(model, pic) for pic in pictures]
        other = independent_classifier.judge(args.independent, pictures) if args.independent else [None] * len(files)
        print(f"{d} ({preset}):")
        print(f"  {'class':10s} {'shipped':10s} {'independent':10s}")
        for c, s, o in zip(classes, shipped, other):
            print(f"  {model.classes[c]:10s} {model.classes[s]:10s} {model.classes[o] if o is not None else '-':10s}")
        print(f"  own class: shipped {sum(c == s for c, s in zip(classes, shipped))}/{len(files)}, independent "
              f"{sum(c == o for c, o in zip(classes, other)) if args.independent else '-'}/{len(files)}")


if __name__ == "__main__":
    main()
