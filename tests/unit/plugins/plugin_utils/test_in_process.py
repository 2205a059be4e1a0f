# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a module may run in the task's worker, and every case that must take the module process."""
from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from ansible_collections.bakery.ami.plugins.plugin_utils import _in_process


class Templar:
    """Renders the one template the tests use, as the task's templar would."""

    def template(self, value):
        return {"{{ ansible_playbook_python }}": sys.executable}.get(value, value)


def case(**changes):
    """The arguments of fallback_reason for a task that may run in-process, with some changed."""
    args = dict(
        task=SimpleNamespace(resolved_action="bakery.ami.ami_find", async_val=0),
        connection=SimpleNamespace(transport="local"),
        play_context=SimpleNamespace(become=False),
        task_vars={"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        templar=Templar(),
        environment="",
    )
    args.update(changes)
    return args


def test_local_with_the_controllers_python_runs_in_process():
    assert _in_process.fallback_reason(**case()) is None
    assert _in_process.fallback_reason(**case(task_vars={"ansible_python_interpreter": sys.executable,
                                                         "bakery_ami_in_process": "yes"})) is None


@pytest.mark.parametrize("changes, reason", [
    ({"task_vars": {"ansible_python_interpreter": sys.executable, "bakery_ami_in_process": False}},
     "bakery_ami_in_process is false"),
    ({"task_vars": {"ansible_python_interpreter": sys.executable, "bakery_ami_in_process": "false"}},
     "bakery_ami_in_process is false"),
    ({"connection": SimpleNamespace(transport="ssh")}, "the connection is not local"),
    ({"connection": SimpleNamespace(transport="community.general.chroot")}, "the connection is not local"),
    ({"play_context": SimpleNamespace(become=True)}, "become is set"),
    ({"task": SimpleNamespace(resolved_action="bakery.ami.ami_find", async_val=60)}, "the task is async"),
    ({"environment": "AWS_PROFILE=other"}, "the task sets an environment"),
    ({"task": SimpleNamespace(resolved_action="ami_find", async_val=0)}, "the module has no collection name"),
    ({"task_vars": {"ansible_python_interpreter": "/usr/bin/python3.9"}},
     "the module's interpreter is /usr/bin/python3.9"),
])
def test_anything_it_would_not_reproduce_takes_the_module_process(changes, reason):
    assert reason in _in_process.fallback_reason(**case(**changes))


def test_without_an_interpreter_variable_the_configured_one_decides(monkeypatch):
    configured = {}
    monkeypatch.setattr(_in_process.C.config, "get_config_value",
                        lambda name, variables=None: configured[name])
    configured["INTERPRETER_PYTHON"] = "auto"  # discovery: never taken for the controller's Python
    assert "the module's interpreter is auto" in _in_process.fallback_reason(**case(task_vars={}))
    configured["INTERPRETER_PYTHON"] = sys.executable
    assert _in_process.fallback_reason(**case(task_vars={})) is None


def test_without_the_core_entry_point_only_the_module_process(monkeypatch):
    monkeypatch.setattr(_in_process, "_run_module", None)
    assert "no module entry point" in _in_process.fallback_reason(**case())


def test_module_names():
    assert _in_process.module_name("bakery.ami.ami_find") == "ansible_collections.bakery.ami.plugins.modules.ami_find"


def test_preload_imports_a_module_then_forgets_it_but_keeps_its_imports(monkeypatch):
    name = _in_process.module_name("bakery.ami.ami_cleanup")
    imported = []

    def import_module(python_name):
        imported.append(python_name)
        sys.modules[python_name] = SimpleNamespace()
        sys.modules[python_name + "_dependency"] = SimpleNamespace()

    monkeypatch.setattr(_in_process.importlib, "import_module", import_module)
    monkeypatch.delitem(sys.modules, name + "_dependency", raising=False)
    _in_process.preload("ami_cleanup")
    assert imported == [name]
    # run afresh as __main__ each time; what it imported stays for every worker
    assert name not in sys.modules and name + "_dependency" in sys.modules
    monkeypatch.delitem(sys.modules, name + "_dependency")


def test_preload_is_best_effort(monkeypatch):
    def broken(python_name):
        raise ImportError(f"no {python_name}")

    monkeypatch.setattr(_in_process.importlib, "import_module", broken)
    _in_process.preload("ami_find")  # nothing raised: the module reports it when it runs


def test_every_aws_module_has_the_in_process_action():
    from pathlib import Path  # pylint: disable=import-outside-toplevel

    plugins = Path(_in_process.__file__).resolve().parents[1]
    aws_modules = sorted(p.stem for p in (plugins / "modules").glob("ami_*.py")
                         if "AnsibleAWSModule" in p.read_text())
    with_action = sorted(p.stem for p in (plugins / "action").glob("ami_*.py")
                         if "InProcessModule" in p.read_text())
    assert aws_modules == with_action


def test_the_workers_inherit_ansibles_filters_and_tests_loaded():
    """Loaded once here, in the process the workers are forked from: a worker's first filter or test
    finds them instead of loading every plugin file again."""
    # pylint: disable=protected-access
    from ansible.plugins.loader import filter_loader, test_loader

    for loader in (filter_loader, test_loader):
        loader._cached_non_collection_wrappers.clear()
    _in_process.warm_templating()
    assert "ansible.builtin.combine" in filter_loader._cached_non_collection_wrappers
    assert "ansible.builtin.defined" in test_loader._cached_non_collection_wrappers


def test_the_workers_inherit_the_template_lexer_built(monkeypatch):
    """Built once here: a worker's first template (a task's arguments or condition, with Ansible's
    default settings) finds Jinja's lexer in the class-wide cache instead of compiling its regular
    expressions again."""
    # pylint: disable=protected-access,import-outside-toplevel
    from ansible._internal._templating import _jinja_bits
    from ansible.template import Templar, trust_as_template

    _jinja_bits.AnsibleEnvironment._lexer_cache.clear()
    _in_process.warm_templating()
    built = []
    real_init = _jinja_bits.AnsibleLexer.__init__

    def counting_init(self, *args, **kwargs):
        built.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(_jinja_bits.AnsibleLexer, "__init__", counting_init)
    assert Templar(variables={"regions": ["us-east-1"]}).template(trust_as_template("{{ regions | length }}")) == 1
    assert built == []


def test_what_the_import_loaded_is_left_out_of_garbage_collection():
    """gc.freeze() after the warm-up: the boto3 and EC2 model objects are not walked by any collection."""
    import gc

    assert gc.get_freeze_count() > 10000


def test_the_plan_action_warms_the_process_before_the_plan_runs():
    """The strategy imports bake_plan's action in ansible-playbook's main process before it forks the
    plan's worker: that import already holds boto3, the EC2 model and the frozen heap, so the plan's
    region check (botocore) and every later worker find them loaded. Checked in a fresh Python."""
    import os
    import subprocess

    probe = (
        "import gc, os, sys\n"
        "from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder\n"
        "_AnsibleCollectionFinder(paths=os.environ['ANSIBLE_COLLECTIONS_PATH'].split(':'))._install()\n"
        "import ansible_collections.bakery.ami.plugins.action.bake_plan\n"
        "print('botocore.session' in sys.modules, gc.get_freeze_count() > 10000)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, env=dict(os.environ))
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr
