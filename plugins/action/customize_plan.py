# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bakery.ami.customize_plan: what a bake level puts into the image and what it leaves to launch.

The customize role's plan when the role is used on its own (the bake passes the same plan, made by
bakery.ami.bake_plan from the same Python in plugins/module_utils/_customize.py). Runs in the
controller's process; templates are rendered on the controller.
"""
from __future__ import annotations

import json

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import lookup_loader

from ansible_collections.bakery.ami.plugins.plugin_utils._bytecode import cached_imports

with cached_imports():  # the collection's own files, their bytecode kept (plugin_utils/_bytecode.py)
    from ansible_collections.bakery.ami.plugins.module_utils import _customize
    from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

NAME = "bakery.ami.customize_plan"
ARGUMENT_SPEC = dict(
    level=dict(type="str", default="full"),
    packages=dict(type="list", elements="str", default=[]),
    files=dict(type="raw", default=[]),
    services=dict(type="list", elements="str", default=[]),
    launch_config=dict(type="raw", default={}),
    option_prefix=dict(type="str", default="customize_"),
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
        except AnsibleActionFail as exc:
            result.update(failed=True, changed=False, msg=getattr(exc, "message", None) or str(exc))
            return result
        args = json.loads(json.dumps(args))
        prefix = args["option_prefix"]
        files = args["files"] or []
        launch = args["launch_config"] or {}
        try:
            _customize.check_files(prefix + "files", files)
            _customize.check_launch_config(prefix + "launch_config", launch)
            names = [e["template"] for e in files + list(launch.get("files") or []) if e.get("template")]
            templates = {}
            if names:
                lookup = lookup_loader.get("ansible.builtin.template", loader=self._loader, templar=self._templar)
                for name in dict.fromkeys(names):
                    try:
                        templates[name] = str(lookup.run([name], variables=task_vars or {})[0])
                    except AnsibleError as exc:
                        raise _customize.CustomizeError("%sfiles: template %s cannot be rendered: %s"
                                                        % (prefix, name, exc)) from exc
            plan = _customize.plan(args["level"], args["packages"], files, args["services"], launch, templates,
                                   option_prefix=prefix)
        except BakeryError as exc:
            result.update(failed=True, changed=False, msg=exc.msg)
            return result
        result.update(changed=False, plan=plan)
        return result
