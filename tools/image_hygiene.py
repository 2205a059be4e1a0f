# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's hygiene scanner (plugins/module_utils/_hygiene.py) for tools, tests and benches.

Not shipped with the collection. The scanner imports its siblings as
``ansible_collections.bakery.ami.plugins.module_utils``; this makes that name point at this checkout
(without a collections directory on disk) and returns the module:

    from tools import image_hygiene
    result = image_hygiene.load().scan("/srv/root")

``python -m tools.image_hygiene ROOT [--exclude PATTERN ...]`` prints the scan as JSON and exits 1
when the root is not clean.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_NAME = "ansible_collections.bakery.ami"


def _package(name: str, path: list) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = path  # type: ignore[attr-defined]
    sys.modules[name] = module
    parent, _dot, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def load():
    """plugins/module_utils/_hygiene.py of this checkout, importable under its collection name."""
    if _NAME not in sys.modules:
        try:
            importlib.import_module("ansible_collections")
        except ImportError:
            _package("ansible_collections", [])
        if "ansible_collections.bakery" not in sys.modules:
            _package("ansible_collections.bakery", [])
        _package(_NAME, [str(REPO_ROOT)])
    return importlib.import_module(_NAME + ".plugins.module_utils._hygiene")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.image_hygiene", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--categories", default="all", help="comma-separated categories (default all)")
    args = parser.parse_args(argv)
    hygiene = load()
    try:
        result = hygiene.scan(args.root, categories=args.categories.split(","), exclude=args.exclude)
    except hygiene.BakeryError as exc:
        print(exc.msg, file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0 if result["clean"] else 1


if __name__ == "__main__":
    sys.exit(main())
