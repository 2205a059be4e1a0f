# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bytecode caching for the collection's own Python on the controller.

Ansible's collection loader compiles a collection file from its source on every import and never
keeps the bytecode, in ansible-playbook's process and in every worker. The bake's plugins import
about thirty of the collection's module_utils and plugin_utils files in the controller's process,
nearly all of it before the bake's first AWS call: 0.15-0.2 s of compiling per bake on a small
machine, every time. Python's own source loader keeps the bytecode in __pycache__ beside the
source (when it may write there, and unless PYTHONDONTWRITEBYTECODE is set) and reuses it while the
source is unchanged.

The collection's plugins import their own files inside cached_imports(): for that time only, a
finder ahead of Ansible's hands the plain files of plugins/module_utils and plugins/plugin_utils to
Python's source loader, and what those import of each other goes the same way. No package, nothing
of another collection, nothing Ansible loads as a plugin; anything else, or a file the source
loader would not take, is left to Ansible's loader. The finder leaves sys.meta_path as it found
it, so no other code's imports ever pass through it.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys

# the packages whose plain files are imported through Python's source loader
PACKAGES = (
    "ansible_collections.bakery.ami.plugins.module_utils",
    "ansible_collections.bakery.ami.plugins.plugin_utils",
)


class CachedSourceFinder(importlib.abc.MetaPathFinder):
    """Finds the plain .py files of PACKAGES with Python's source loader (and so its bytecode cache).

    Python's file finder is asked directly: the path finder would hand a collection's directory to
    the path hook Ansible installs, which answers with Ansible's loader again.
    """

    def __init__(self) -> None:
        self._finders: dict = {}

    def _finder(self, directory: str):
        if directory not in self._finders:
            loader = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
            self._finders[directory] = importlib.machinery.FileFinder(directory, loader)
        return self._finders[directory]

    def find_spec(self, fullname, path=None, target=None):
        package, _dot, name = fullname.rpartition(".")
        if package not in PACKAGES or not path or not name:
            return None
        for directory in path:
            spec = self._finder(directory).find_spec(fullname, target)
            if spec is None:
                continue
            if spec.submodule_search_locations is not None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
                return None
            return spec
        return None


@contextlib.contextmanager
def cached_imports():
    """Within: the collection's own files (see above) are imported with their bytecode kept."""
    finder = CachedSourceFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
