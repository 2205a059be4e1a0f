# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bakery.ami.bake_plan: validate every bake_* variable once and derive the bake's plan.

Runs in the controller's process. It gathers the play's bake_* variables (templated), the facts
of the controller the rules need (time, root, installed roles, rendered templates, the local
tools of a checkout) and returns the plan of plugins/module_utils/_plan.py as `bake`.
"""
from __future__ import annotations

import json
import os
import secrets
import string
import time

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import lookup_loader
from ansible.utils.collection_loader._collection_finder import _get_collection_role_path

from ansible_collections.bakery.ami.plugins.plugin_utils._bytecode import cached_imports

with cached_imports():  # the collection's own files, their bytecode kept (plugin_utils/_bytecode.py)
    from ansible_collections.bakery.ami.plugins.module_utils import _plan, _time, _validate
    from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
    from ansible_collections.bakery.ami.plugins.plugin_utils import _in_process, _sbom

NAME = "bakery.ami.bake_plan"

# The bake's AWS modules come right after its plan: their warm-up runs now, when the strategy imports
# this file in ansible-playbook's main process, before it forks the plan's worker, so that the
# plan's own look at botocore's regions finds botocore loaded, as every later worker does.
_in_process.warm()
LOCAL_TOOL = os.path.join("tools", "local_builder.py")


def _plain(value):
    """Ansible's tagged strings, lists and dicts as plain Python values."""
    return json.loads(json.dumps(value))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        # the bake's first moment (its report's marks.start): the plan is its first task
        started = time.time()
        result = super().run(tmp, task_vars)
        result["started"] = started
        del tmp  # not used
        task_vars = task_vars or {}
        scope = self._task.args.get("scope", "bake")
        if set(self._task.args) - {"scope"} or scope not in ("bake", "sweep"):
            result.update(failed=True, changed=False,
                          msg="%s: its only option is scope (bake or sweep); it reads the play's bake_* variables"
                              % NAME)
            return result
        try:
            given = {}
            for name in task_vars:
                if name.startswith("bake_") and name not in _plan.RUN_STATE:
                    given[name] = _plain(self._templar.template(task_vars[name]))
        except AnsibleError as exc:
            result.update(failed=True, changed=False, msg="bake variables: cannot be templated: %s" % exc)
            return result
        playbook_dir = task_vars.get("playbook_dir") or os.getcwd()
        try:
            context = _plan.Context(
                now=_time.now(),
                run_token="".join(secrets.choice(string.ascii_lowercase + string.digits) for _char in range(8)),
                is_root=os.geteuid() == 0,
                known_regions=_validate.known_regions(),
                cwd=os.environ.get("PWD") or os.getcwd(),
                cache_dir=os.environ.get("BAKERY_CACHE_DIR") or os.path.expanduser("~/.cache/bakery-ami"),
                role_exists=lambda role: self._role_path(role, playbook_dir) is not None,
                local_tools=self._local_tools(given, playbook_dir),
                rendered_templates=self._render_templates(given, task_vars) if scope == "bake" else {},
                role_path=lambda role: self._role_path(role, playbook_dir),
            )
            plan = _plan.build_plan(given, context) if scope == "bake" else _plan.build_sweep_plan(given, context)
            if scope == "bake" and plan["sbom"]["enabled"]:
                # refused before anything is made: the SBOM is made on the controller at the end
                _sbom.require_library("bake_sbom")
        except BakeryError as exc:
            result.update(failed=True, changed=False, msg=exc.msg)
            return result
        result.update(changed=False, bake=plan)
        warnings = _plan.unknown_variables(given) + (_plan.superseded(given) if scope == "bake" else [])
        if warnings:
            result["warnings"] = warnings
        return result

    @staticmethod
    def _role_path(role: str, playbook_dir: str):
        """The directory of a role given by name (role, namespace.collection.role) or path, the way
        include_role finds it; None when there is none."""
        if not isinstance(role, str) or not role:
            return None
        if "/" in role:
            path = role if os.path.isabs(role) else os.path.join(playbook_dir, role)
            return os.path.normpath(path) if os.path.isdir(os.path.join(path, "tasks")) else None
        if role.count(".") >= 2:
            found = _get_collection_role_path(role)
            return role if found is not None else None
        for base in [os.path.join(playbook_dir, "roles")] + list(C.DEFAULT_ROLES_PATH or []) + [playbook_dir]:
            if os.path.isdir(os.path.join(os.path.expanduser(base), role)):
                return role
        return None

    @staticmethod
    def _local_tools(given: dict, playbook_dir: str):
        """The checkout whose tools/ carry the embedded default (bake_builder: local), or None."""
        if given.get("bake_builder") != "local":
            return None
        if given.get("bake_local_tools_dir"):
            candidates = [given["bake_local_tools_dir"]]
        else:  # playbooks/ or tools/ansible/ of a checkout
            here = os.path.abspath(playbook_dir)
            candidates = [os.path.dirname(here), os.path.dirname(os.path.dirname(here))]
        for candidate in candidates:
            if isinstance(candidate, str) and os.path.isfile(os.path.join(candidate, LOCAL_TOOL)):
                return candidate
        return None

    def _render_templates(self, given: dict, task_vars: dict) -> dict:
        """Each template named by bake_files or bake_launch_config.files, rendered on the controller
        the way `lookup('ansible.builtin.template', name)` renders it."""
        names = []
        entries = list(given.get("bake_files") or []) if isinstance(given.get("bake_files"), list) else []
        launch = given.get("bake_launch_config")
        if isinstance(launch, dict) and isinstance(launch.get("files"), list):
            entries += launch["files"]
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("template"), str) and entry["template"]:
                names.append(entry["template"])
        if not names:
            return {}
        lookup = lookup_loader.get("ansible.builtin.template", loader=self._loader, templar=self._templar)
        rendered = {}
        for name in dict.fromkeys(names):
            try:
                rendered[name] = str(lookup.run([name], variables=task_vars)[0])
            except AnsibleError as exc:
                raise _plan.PlanError("bake_files: template %s cannot be rendered: %s" % (name, exc)) from exc
        return rendered
