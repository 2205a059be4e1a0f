# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the collection's AWS modules inside the controller's task worker instead of a new Python.

A module task normally starts a fresh interpreter that imports Python, Ansible, boto3 and the EC2
service model before its first call: about 0.67 s on a small machine, several times per bake, all
of it before CreateImage or after the last copy. These modules always run on the controller (the
bake's plays use the local connection with the controller's own Python), so the worker Ansible
forks for the task can run the very same module code itself, through the same entry point the
module wrapper uses, with the same arguments (check mode, diff, no_log, module_defaults included).

Each task gets its own freshly forked worker, so one module's state never reaches another's, as
with a process of its own. The strategy imports this file in ansible-playbook's main process
before it forks the first worker; importing boto3 and loading the EC2 model here, once, means
every worker starts with them, and so with Ansible's Jinja filters and tests, which every worker
would otherwise load again. All of it then stays out of the garbage collector's walks (gc.freeze),
here and in every worker.

Anything that the in-process path would not reproduce exactly falls back to the normal module
execution: another connection than local, another interpreter than the controller's, become,
async, a task environment, or `bakery_ami_in_process: false`.
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import sys

from ansible import constants as C
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.plugins.action.normal import ActionModule as _NormalAction
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible.vars.clean import remove_internal_keys

try:  # the entry point the module wrapper itself uses, and its argument encoding (ansible-core 2.19)
    from ansible.module_utils._internal._ansiballz._loader import run_module as _run_module
    from ansible.module_utils.common.json import Direction, get_module_encoder
except ImportError:  # pragma: no cover - a core without them: the normal module process only
    _run_module = None

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.plugin_utils._bytecode import cached_imports

display = Display()

# The variable that turns the in-process path off (a host or play var, or -e).
SWITCH = "bakery_ami_in_process"
# The serialization profile of modules that declare none (all of the collection's).
_PROFILE = "legacy"


def warm_templating() -> None:
    """Load Ansible's own Jinja filters and tests, and its template lexer, in this process, now.

    A worker templates every task's arguments and conditions; the first filter or test it meets
    makes it load all of Ansible's filter and test plugins (10-20 ms), and its first template makes
    it build Jinja's lexer (ten regular expressions compiled, 2-3 ms), again in the next
    task's worker, unless the process they are forked from holds them already. Best effort.
    """
    # pylint: disable=import-outside-toplevel
    from ansible.plugins.loader import filter_loader, test_loader
    from ansible.template import Templar, trust_as_template

    for loader, name in ((filter_loader, "ansible.builtin.combine"), (test_loader, "ansible.builtin.defined")):
        try:
            loader.get(name)
        except Exception:  # pylint: disable=broad-except
            pass
    try:
        # one template rendered with the default settings leaves the lexer in Jinja's class-wide cache
        Templar().template(trust_as_template("{{ 0 }}"))
    except Exception:  # pylint: disable=broad-except
        pass


_WARM = {"done": False}


def warm() -> None:
    """boto3, the EC2 model, Ansible's filters and tests and its template lexer, loaded here once (see above).

    What was loaded lives as long as the process: the cyclic garbage collector need not walk it
    again, neither here nor in the workers forked from here (whose walks would also copy the pages).
    """
    if _WARM["done"]:
        return
    _WARM["done"] = True
    _aws.warm_client_data(("ec2",))
    warm_templating()
    gc.freeze()


warm()


def module_name(fqcn: str) -> str:
    """The Python name of a collection's module ("bakery.ami.ami_find")."""
    namespace, collection, name = fqcn.split(".")
    return f"ansible_collections.{namespace}.{collection}.plugins.modules.{name}"


def preload(name: str) -> None:
    """Import the collection's module `name` and all it imports, in this process (see above).

    Only importing: a module runs main() as __main__ alone. Best effort, like warm_client_data:
    a module that cannot be imported reports why when it runs.
    """
    python_name = module_name(f"bakery.ami.{name}")
    try:
        with cached_imports():  # what the module imports of the collection's own files, their bytecode kept
            importlib.import_module(python_name)
    except Exception:  # pylint: disable=broad-except
        pass
    # what it imports stays; the module itself is run afresh as __main__ (runpy warns otherwise)
    sys.modules.pop(python_name, None)


def fallback_reason(task, connection, play_context, task_vars: dict, templar, environment: str) -> str | None:
    """Why this task must run the module the normal way, or None when it may run in-process."""
    if _run_module is None:
        return "this ansible-core has no module entry point to call"
    if task.resolved_action is None or task.resolved_action.count(".") != 2:
        return "the module has no collection name"
    if not boolean(templar.template(task_vars.get(SWITCH, True)), strict=False):
        return f"{SWITCH} is false"
    if getattr(connection, "transport", None) != "local":
        return "the connection is not local"
    if play_context.become:
        return "become is set"
    if task.async_val:
        return "the task is async"
    if environment:
        return "the task sets an environment"
    # the interpreter the module would run under: the host's variable, else the configured one
    # ("auto" and the like mean discovery, which is never taken for the controller's own Python)
    interpreter = task_vars.get("ansible_python_interpreter")
    if interpreter is None:
        interpreter = C.config.get_config_value("INTERPRETER_PYTHON", variables=task_vars)
    interpreter = str(templar.template(interpreter)).strip()
    if interpreter != sys.executable:
        return f"the module's interpreter is {interpreter}, not the controller's {sys.executable}"
    return None


def run_in_process(module_fqcn: str, json_params: bytes) -> str:
    """Run the module as its wrapper would, in this process; return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            _run_module(json_params=json_params, profile=_PROFILE, module_fqn=module_fqcn, modlib_path="", extensions={})
        except SystemExit:  # every module ends with exit_json or fail_json
            pass
    return out.getvalue()


class InProcessModule(_NormalAction):
    """The action of the collection's AWS modules: the module, run in the task's worker when it can."""

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        reason = fallback_reason(self._task, self._connection, self._play_context, task_vars, self._templar,
                                 self._compute_environment_string())
        if reason is not None:
            display.vvv(f"{self._task.resolved_action}: run as a module process ({reason})")
            return super().run(tmp, task_vars)

        # what the normal action does first (check mode support, the action's own arguments), then the
        # module with the arguments the normal action would send it
        result = ActionBase.run(self, tmp, task_vars)
        module_fqcn = self._task.resolved_action
        module_args = self._task.args.copy()
        self._update_module_args(module_fqcn, module_args, task_vars)
        encoder = get_module_encoder(_PROFILE, Direction.CONTROLLER_TO_MODULE)
        json_params = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=encoder).encode()
        display.vvv(f"{module_fqcn}: run in the task's worker process")
        printed = run_in_process(module_name(module_fqcn), json_params)
        data = self._parse_returned_data({"stdout": printed, "stderr": ""}, _PROFILE)
        data.pop("_ansible_suppress_tmpdir_delete", None)
        remove_internal_keys(data)
        return merge_hash(result, data)
