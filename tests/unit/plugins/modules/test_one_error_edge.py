# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Every module has one ``except BakeryError`` at its edge, and no other handler.

The cores raise BakeryError subclasses (AWS errors included: BakeryAWSError is one); a module that
catches anything else, or catches in several places, hides a failure mode the cores should name.
The documentation-only modules of action plugins (no code) have no handler at all.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

MODULES = pathlib.Path(__file__).resolve().parents[4] / "plugins" / "modules"


def handlers(tree: ast.AST) -> list:
    return [node for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler)]


def has_code(tree: ast.Module) -> bool:
    """Whether the file is a module with code (a main()), not the documentation of an action plugin."""
    return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


def problems(source: str) -> list:
    tree = ast.parse(source)
    found = handlers(tree)
    if not has_code(tree):
        return [f"line {h.lineno}: a module without main() catches something" for h in found]
    if len(found) != 1:
        return [f"{len(found)} except handlers (lines {', '.join(str(h.lineno) for h in found) or 'none'}); "
                "one `except BakeryError` at the edge is the rule"]
    caught = found[0].type
    if not (isinstance(caught, ast.Name) and caught.id == "BakeryError"):
        return [f"line {found[0].lineno}: the handler catches {ast.unparse(caught) if caught else 'everything'}, not BakeryError"]
    return []


@pytest.mark.parametrize("path", sorted(MODULES.glob("*.py")), ids=lambda p: p.stem)
def test_a_module_has_one_except_bakery_error(path):
    assert problems(path.read_text()) == []


def test_the_modules_with_code_are_checked():
    checked = [p.stem for p in MODULES.glob("*.py") if has_code(ast.parse(p.read_text()))]
    assert {"ami_create", "ami_prune", "ami_copy", "ami_find", "cloudinit_guard"} <= set(checked)


@pytest.mark.parametrize(
    "source,fragment",
    [
        ("def main():\n    try:\n        pass\n    except BakeryError as e:\n        pass\n    try:\n        pass\n"
         "    except BakeryError as e:\n        pass\n", "2 except handlers"),
        ("def main():\n    try:\n        pass\n    except BakeryError:\n        pass\n    except OSError:\n        pass\n",
         "2 except handlers"),
        ("def main():\n    try:\n        pass\n    except OSError:\n        pass\n", "catches OSError, not BakeryError"),
        ("def main():\n    try:\n        pass\n    except:\n        pass\n", "catches everything"),
        ("def main():\n    pass\n", "0 except handlers"),
        ("try:\n    import yaml\nexcept ImportError:\n    pass\n", "without main() catches"),
    ],
)
def test_the_guard_refuses(source, fragment):
    assert any(fragment in problem for problem in problems(source))
