"""python -m exercises [--check N]: grade the exercises (see exercises/__init__.py)."""
import argparse
import os
import sys

from . import EXERCISES, mode
from .grade import grade


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m exercises", description=(
        "Grade the exercises in exercises/eNN_*.py against the engine, and name the next one to write. "
        "DEEPINSIDE_EXERCISES=reference answers each with the library's own implementation."))
    p.add_argument("--check", type=int, metavar="N", help="grade exercise N only and show what differs")
    args = p.parse_args(argv)
    try:
        which = mode()
    except ValueError as e:
        p.error(str(e))
    if args.check is not None and not 1 <= args.check <= len(EXERCISES):
        p.error(f"--check: no exercise {args.check}; they are numbered 1 to {len(EXERCISES)}")
    chosen = [EXERCISES[args.check - 1]] if args.check else EXERCISES
    print(f"exercises ({'the library' + chr(39) + 's answers' if which == 'reference' else 'your files'}):")
    results = {}
    for e in chosen:
        passed, message = grade(e.number)
        results[e.number] = passed
        status = "pass" if passed else ("not written" if message.startswith("not written") else "FAIL")
        print(f"  {e.number:2d}  {status:11s}  {e.module}.py  {e.title} ({e.section})")
        if args.check and message:
            print(f"\n{message}")
    todo = [e for e in chosen if not results[e.number]]
    if not args.check:
        print(f"{len(chosen) - len(todo)} of {len(chosen)} pass." + (
            f" Next: exercises/{todo[0].module}.py (python -m exercises --check {todo[0].number})" if todo else ""))
    return 0 if not todo else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:                          # the table piped into head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
