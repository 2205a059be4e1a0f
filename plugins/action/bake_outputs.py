# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bakery.ami.bake_outputs: write the bake's report, launch user-data, manifest and SBOM on the controller.

The whole task runs in the controller's process: no module is transferred or run, and the files
are written on the controller whatever host the task targets. The logic lives in
plugin_utils/_outputs.py.
"""
from __future__ import annotations

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.bakery.ami.plugins.plugin_utils._bytecode import cached_imports

with cached_imports():  # the collection's own files, their bytecode kept (plugin_utils/_bytecode.py)
    from ansible_collections.bakery.ami.plugins.plugin_utils import _report
    from ansible_collections.bakery.ami.plugins.plugin_utils._outputs import (
        DEFAULT_MODE,
        OutputsError,
        bake_outputs,
    )

NAME = "bakery.ami.bake_outputs"

# Types are checked by _outputs (raw here), so that a number or a list given as a path, or a
# string given as a dict, is refused instead of converted.
ARGUMENT_SPEC = dict(
    report_path=dict(type="raw"),
    report=dict(type="raw"),
    user_data_path=dict(type="raw"),
    user_data=dict(type="raw"),
    manifest_path=dict(type="raw"),
    manifest_build=dict(type="raw"),
    sbom_path=dict(type="raw"),
    sbom=dict(type="raw"),
    mode=dict(type="raw", default=DEFAULT_MODE),
    bake=dict(type="raw"),
    results=dict(type="raw"),
    hook_report=dict(type="raw"),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # not used

        try:
            _validation, args = self.validate_argument_spec(ARGUMENT_SPEC)
        except AnsibleActionFail as exc:  # unknown options: name the task's action, not the plugin's file
            msg = getattr(exc, "message", None) or str(exc)
            result.update(failed=True, changed=False, msg=msg.replace("(%s)" % self._load_name, "(%s)" % NAME))
            return result
        derived = {}
        if args.get("bake") is not None:
            # the bake's own outputs: every file and its content from the plan and the results
            own = [name for name in ("report_path", "report", "user_data_path", "user_data", "manifest_path",
                                     "manifest_build", "sbom_path", "sbom") if args.get(name) is not None]
            if own or not isinstance(args["bake"], dict) or not isinstance(args.get("results") or {}, dict):
                result.update(failed=True, changed=False,
                              msg="bake: a plan (from bakery.ami.bake_plan) with results (a mapping) derives the "
                                  "files; it cannot be combined with %s" % ", ".join(own or ["results"]))
                return result
            try:
                derived = _report.outputs(args["bake"], args.get("results") or {}, args.get("hook_report") or {})
            except (KeyError, TypeError) as exc:
                result.update(failed=True, changed=False,
                              msg="bake: not a plan made by bakery.ami.bake_plan (missing %s)" % exc)
                return result
            args = dict({k: v for k, v in args.items() if k not in ("bake", "results", "hook_report")}, **derived)
        else:
            args = {k: v for k, v in args.items() if k not in ("bake", "results", "hook_report")}
        try:
            outcome = bake_outputs(args, check_mode=bool(self._task.check_mode), diff=bool(self._task.diff),
                                   max_diff_size=C.MAX_FILE_SIZE_FOR_DIFF)
        except OutputsError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        result.update(outcome)
        if derived:
            result.update(report=derived["report"], summary=_report.summary(derived["report"]))
        return result
