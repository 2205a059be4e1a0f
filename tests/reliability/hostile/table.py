# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The case table of README.md in this directory, made from the cases files.

    python -m tests.reliability.hostile.table            print the table
    python -m tests.reliability.hostile.table --write    rewrite it in README.md

test_bad_input.py checks that README.md holds the table of the cases as they are.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tests.reliability.hostile import corpus

README = Path(__file__).resolve().with_name("README.md")
BEGIN = "<!-- case table: python -m tests.reliability.hostile.table --write -->"
END = "<!-- end of case table -->"


def _plant(plant) -> str:
    kind = type(plant).__name__.lower()
    if getattr(plant, "mirror", False):
        kind = "link with mirror"
    return "%s %s" % (kind, plant.path)


def _answer(case: corpus.Case) -> str:
    expect = case.expect
    named = " or ".join("`%s`" % o for o in expect.options)
    if expect.kind == "refuse":
        return "refused, naming %s" % named
    if expect.kind == "accept":
        return "**accepted**: %s" % expect.safe
    return "refused naming %s, or **accepted**: %s" % (named, expect.safe) if named else \
        "refused, or **accepted**: %s" % expect.safe


def counts(specs: dict) -> str:
    rows = ["| module | cases | accepted or either | items of issue 17 |", "|---|---|---|---|"]
    for module, spec in sorted(specs.items()):
        items = sorted({c.item for c in spec.cases if c.item})
        rows.append("| %s | %d | %d | %s |" % (module, len(spec.cases), sum(c.expect.kind != "refuse" for c in spec.cases),
                                               ", ".join(map(str, items))))
    rows.append("| **total** | **%d** | | |" % sum(len(s.cases) for s in specs.values()))
    return "\n".join(rows)


def table(specs: dict) -> str:
    parts = [counts(specs)]
    for module, spec in sorted(specs.items()):
        rows = ["### %s" % module, "", "| case | item | tree | right answer |", "|---|---|---|---|"]
        for case in spec.cases:
            tree = case.tree.base if case.tree else ""
            if case.tree and case.tree.plants:
                tree += " + " + ", ".join(_plant(p) for p in case.tree.plants)
            rows.append("| %s | %s | %s | %s |" % (case.id, case.item or "", tree.replace("|", "\\|"),
                                                   _answer(case).replace("|", "\\|")))
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def section(specs: dict) -> str:
    return "%s\n\n%s\n\n%s" % (BEGIN, table(specs), END)


def in_readme() -> str:
    text = README.read_text()
    return text[text.index(BEGIN):text.index(END) + len(END)]


def main(argv: list) -> int:
    specs = corpus.load()
    if "--write" in argv:
        text = README.read_text()
        README.write_text(text[:text.index(BEGIN)] + section(specs) + text[text.index(END) + len(END):])
    else:
        print(table(specs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
