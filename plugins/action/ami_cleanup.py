# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bakery.ami.ami_cleanup runs in the task's worker on the controller when it can (plugin_utils/_in_process.py)."""
from __future__ import annotations

from ansible_collections.bakery.ami.plugins.plugin_utils._bytecode import cached_imports

with cached_imports():  # the collection's own files, their bytecode kept (plugin_utils/_bytecode.py)
    from ansible_collections.bakery.ami.plugins.plugin_utils._in_process import InProcessModule, preload

preload("ami_cleanup")

ActionModule = InProcessModule
