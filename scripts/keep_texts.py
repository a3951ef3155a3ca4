#!/usr/bin/env python3
"""Keep parity's source texts from before a formatter runs, so that digests recorded over the
text (scheme `text`, models and feature tables recorded before parity recorded digest schemes)
still match the formatted code that has the same syntax tree (`parity.core.hashing`).

Run it around the formatter, with the project's Python:

    .venv/bin/python scripts/keep_texts.py before build/texts.json
    .venv/bin/ruff format lib
    .venv/bin/python scripts/keep_texts.py after build/texts.json

`after` writes the texts the formatter rewrote without changing their tree into
lib/parity/core/kept_texts.json.gz (commit it with the formatted code), and says how many
texts changed their tree (none, for a formatter alone): records over those are checked
against the new code, as a code change should be. Run it around the formatter alone, before
moving code between modules: a moved module's own text is not kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from parity.core import hashing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["before", "after"])
    parser.add_argument("texts", type=Path, help="where `before` keeps the texts for `after`")
    parser.add_argument("--package", default="parity")
    args = parser.parse_args(argv)
    if args.step == "before":
        args.texts.parent.mkdir(parents=True, exist_ok=True)
        args.texts.write_text(json.dumps(hashing.source_texts(args.package)))
        return 0
    before: dict[str, str | None] = json.loads(args.texts.read_text())
    lost = set(before) - set(hashing.source_texts(args.package))
    if lost:
        print(
            f"{len(lost)} texts changed their syntax tree: not kept, so records over them are refused",
            file=sys.stderr,
        )
    kept = hashing.kept_texts(before, args.package)
    folder = Path(hashing.__file__).parent
    hashing.write_kept_texts(kept, folder)
    print(f"kept {len(kept)} texts in {folder / hashing.KEPT_TEXTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
