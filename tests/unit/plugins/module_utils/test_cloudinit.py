# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_cloudinit: merging like cloud-init, planning the guard's drop-in, the audit, every
protection and every bad input, against hand-written configuration sets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from ansible_collections.bakery.ami.plugins.module_utils import _cloudinit as c
from ansible_collections.bakery.ami.plugins.module_utils._cloudinit_protections import (
    FIRST_BOOT_EFFECTS,
    PROTECTIONS,
)

# A cloud.cfg in the shape of upstream's (modules of every distribution listed).
BASE_CFG = {
    "users": ["default"],
    "disable_root": True,
    "preserve_hostname": False,
    "cloud_init_modules": ["migrator", "seed_random", "bootcmd", "write-files", "growpart",
                           "resizefs", "disk_setup", "mounts", "set_hostname", "update_hostname",
                           "update_etc_hosts", "ca-certs", "rsyslog", "users-groups", "ssh"],
    "cloud_config_modules": ["ssh-import-id", "keyboard", "locale", "set-passwords",
                             "apt-configure", ["ntp", "always"], "timezone", "yum-add-repo",
                             "resolv_conf", "runcmd"],
    "cloud_final_modules": ["package-update-upgrade-install", "scripts-user", "final-message"],
    "system_info": {"distro": "debian", "default_user": {"name": "debian"}},
}

# A vendor drop-in that makes every protected module act, as images from providers do.
VENDOR_CFG = {
    "ssh_pwauth": False,
    "manage_etc_hosts": True,
    "manage_resolv_conf": True,
    "resolv_conf": {"nameservers": ["10.0.0.2"]},
    "apt": {"preserve_sources_list": False, "primary": [{"arches": ["default"], "uri": "http://example.invalid/debian"}]},
    "yum_repos": {"epel": {"baseurl": "http://example.invalid/epel", "name": "epel"}},
    "package_update": True,
    "package_upgrade": True,
    "ntp": {"enabled": True, "servers": ["169.254.169.123"]},
    "locale": "en_US.UTF-8",
    "timezone": "Europe/Paris",
    "growpart": {"mode": "auto"},
}

# For each protection: a customized path it must keep (or None) and modules it must stop.
PROTECTED = {
    "ssh_config": ("/etc/ssh/sshd_config.d/60-bake.conf", ["set_passwords"]),
    "hostname": ("/etc/hostname", ["set_hostname", "update_hostname"]),
    "etc_hosts": ("/etc/hosts", ["update_etc_hosts"]),
    "resolv_conf": ("/etc/resolv.conf", ["resolv_conf"]),
    "network": ("/etc/network/interfaces.d/50-cloud-init", ["network_config"]),
    "apt_sources": ("/etc/apt/sources.list", ["apt_configure"]),
    "yum_repos": ("/etc/yum.repos.d/epel.repo", ["yum_add_repo"]),
    "packages": (None, ["package_update_upgrade_install"]),
    "default_user": ("/etc/passwd", ["users_groups"]),
    "mounts": ("/etc/fstab", ["mounts"]),
    "ntp": ("/etc/chrony/chrony.conf", ["ntp"]),
    "locale": ("/etc/default/locale", ["locale"]),
    "timezone": ("/etc/timezone", ["timezone"]),
    "growpart": (None, ["growpart", "resizefs"]),
}


def write_cfg(root: Path, rel: str, data) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_text("#cloud-config\n" + yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def image(tmp_path):
    """image(**dropins) -> root with BASE_CFG as cloud.cfg and the given cloud.cfg.d files."""

    def make(base="default", **dropins) -> Path:
        root = tmp_path / "root"
        (root / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
        if base == "default":
            base = BASE_CFG
        if base is not None:
            write_cfg(root, "etc/cloud/cloud.cfg", base)
        for name, data in dropins.items():
            write_cfg(root, "etc/cloud/cloud.cfg.d/%s" % name.replace("__", "."), data)
        return root

    return make


def tree_state(root: Path) -> dict:
    state = {}
    for path in sorted(root.rglob("*")):
        info = os.lstat(path)
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        state[str(path.relative_to(root))] = (data, stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return state


def apply(root: Path, **kwargs) -> c.Plan:
    plan = c.plan_guard(str(root), **kwargs)
    if plan.changed:
        c.write_dropin(plan)
    return plan


def modules_changing(plan: c.Plan) -> set:
    return {change["module"] for change in plan.first_boot_changes}


# ------------------------------------------------------------------------------ merge logic


def test_merge_replaces_lists_entirely():
    assert c.merge({"a": [1, 2, 3]}, {"a": [9]}) == {"a": [9]}
    assert c.merge({"a": [1, 2, 3]}, {"a": []}) == {"a": []}


def test_merge_merges_dicts_recursively():
    lower = {"apt": {"preserve_sources_list": False, "primary": ["x"], "deep": {"a": 1, "b": 2}}}
    higher = {"apt": {"preserve_sources_list": True, "deep": {"b": 3}}}
    assert c.merge(lower, higher) == {"apt": {"preserve_sources_list": True, "primary": ["x"],
                                              "deep": {"a": 1, "b": 3}}}


def test_merge_scalars_null_and_type_changes_replace():
    assert c.merge({"a": 1, "b": "x"}, {"a": 2}) == {"a": 2, "b": "x"}
    assert c.merge({"a": 1}, {"a": None}) == {"a": None}
    assert c.merge({"a": {"x": 1}}, {"a": "flat"}) == {"a": "flat"}
    assert c.merge({"a": "flat"}, {"a": {"x": 1}}) == {"a": {"x": 1}}


def test_merge_does_not_alias_inputs():
    lower = {"a": {"b": [1]}}
    higher = {"c": {"d": [2]}}
    merged = c.merge(lower, higher)
    merged["a"]["b"].append(5)
    merged["c"]["d"].append(5)
    assert lower == {"a": {"b": [1]}} and higher == {"c": {"d": [2]}}


def test_merge_all_lowest_first():
    assert c.merge_all([{"a": 1, "l": [1]}, {"a": 2}, {"l": [3], "d": {"x": 1}}, {"d": {"y": 2}}]) == {
        "a": 2, "l": [3], "d": {"x": 1, "y": 2}}


def test_read_configs_sorted_drop_ins_only_cfg(image):
    root = image(**{"10_b.cfg": {"k": "10"}, "9_a.cfg": {"k": "9"}, "README": "k: readme",
                    "50_x.cfg.bak": {"k": "bak"}, "ab.cfg.d": "ignored"})
    (root / "etc/cloud/cloud.cfg.d/dir.cfg").mkdir()
    files, _warnings = c.read_configs(str(root))
    # string order: "10_b.cfg" < "9_a.cfg"; cloud.cfg first; README, .bak and directories skipped
    assert [f.name for f in files] == ["cloud.cfg", "10_b.cfg", "9_a.cfg"]
    assert c.merge_all(f.config for f in files)["k"] == "9"


def test_later_drop_in_replaces_module_list_and_guard_uses_it(image):
    short = ["locale", ["timezone", "always"], "cc_ntp", "runcmd"]
    root = image(**{"50_custom.cfg": {"cloud_config_modules": short}})
    plan = c.plan_guard(str(root), disable_modules=["cc-Timezone", "ntp"])
    assert plan.content["cloud_config_modules"] == ["locale", "runcmd"]
    assert "cloud_init_modules" not in plan.content
    assert "cloud_final_modules" not in plan.content


def test_disable_modules_keeps_frequencies_and_writes_full_lists(image):
    root = image()
    plan = c.plan_guard(str(root), disable_modules=["timezone", "final_message", "mounts"])
    expected_config = [e for e in BASE_CFG["cloud_config_modules"] if e != "timezone"]
    assert plan.content["cloud_config_modules"] == expected_config
    assert ["ntp", "always"] in plan.content["cloud_config_modules"]
    assert plan.content["cloud_final_modules"] == ["package-update-upgrade-install", "scripts-user"]
    assert "mounts" not in plan.content["cloud_init_modules"]
    assert len(plan.content["cloud_init_modules"]) == len(BASE_CFG["cloud_init_modules"]) - 1


def test_disable_unknown_module_is_refused_and_nothing_written(image):
    root = image()
    before = tree_state(root)
    with pytest.raises(c.GuardError, match=r"disable_modules: 'nosuchmodule' is in none of the image's module lists"):
        c.plan_guard(str(root), disable_modules=["ssh", "nosuchmodule"])
    assert tree_state(root) == before


def test_disable_modules_unchecked_when_the_image_sets_no_lists(image):
    # Without lists in the image's files cloud-init's built-in lists apply; nothing to check against.
    plan = c.plan_guard(str(image(base={"users": ["default"]})), disable_modules=["nosuchmodule"])
    assert any("nosuchmodule" in w for w in plan.warnings)
    assert not any(key in plan.content for key in c.MODULE_LISTS)


def test_later_conflicting_file_is_reported_and_wins(image):
    root = image(**{"99_zz_late.cfg": {"preserve_hostname": False, "apt": {"preserve_sources_list": False}},
                    "10_early.cfg": {"manage_etc_hosts": True}})
    plan = c.plan_guard(str(root), protect=["hostname", "apt_sources", "etc_hosts"])
    assert {(x["file"], x["key"]) for x in plan.conflicts} == {
        ("/etc/cloud/cloud.cfg.d/99_zz_late.cfg", "preserve_hostname"),
        ("/etc/cloud/cloud.cfg.d/99_zz_late.cfg", "apt.preserve_sources_list")}
    assert plan.effective["preserve_hostname"] is False
    assert plan.effective["apt.preserve_sources_list"] is False
    assert plan.effective["manage_etc_hosts"] is False  # the earlier file lost
    assert {"set_hostname", "update_hostname", "apt_configure"} <= modules_changing(plan)
    assert "update_etc_hosts" not in modules_changing(plan)
    assert any("99_zz_late.cfg" in w for w in plan.warnings)


def test_later_file_setting_same_value_is_no_conflict(image):
    root = image(**{"99_zz.cfg": {"preserve_hostname": True}})
    plan = c.plan_guard(str(root), protect=["hostname"])
    assert plan.conflicts == []


def test_later_file_replacing_parent_dict_is_a_conflict(image):
    root = image(**{"99_zz.cfg": {"network": "oops"}})
    plan = c.plan_guard(str(root), protect=["network"])
    assert plan.conflicts == [{"file": "/etc/cloud/cloud.cfg.d/99_zz.cfg", "key": "network.config",
                               "value": "oops", "guard_value": "disabled"}]


def test_own_filename_is_excluded_from_base(image):
    # an older guard drop-in that removed 'locale' must not hide it from the recomputed lists
    root = image(**{"99_bakery_guard.cfg": {"cloud_config_modules": ["runcmd"]}})
    plan = c.plan_guard(str(root), disable_modules=["timezone"])
    assert "locale" in plan.content["cloud_config_modules"]


# ------------------------------------------------------------------------------ protections


def test_protection_table_shape():
    assert len(PROTECTIONS) >= 14
    assert set(PROTECTED) <= set(PROTECTIONS)
    for name, entry in PROTECTIONS.items():
        assert entry["settings"] or entry["disable_modules"], name
        assert entry["description"] and entry["paths"], name
    for rule in FIRST_BOOT_EFFECTS:
        assert rule["acts"] in ("always", "if_true", "unless_true", "unless_false", "if_set",
                                "if_bool", "unless_in"), rule


@pytest.mark.parametrize("name", sorted(PROTECTED))
def test_every_protection_stops_its_modules(image, name):
    path, modules = PROTECTED[name]
    root = image(**{"50_vendor.cfg": VENDOR_CFG})
    customized = [path] if path else []

    unguarded = c.plan_guard(str(root), customized_paths=customized)
    assert set(modules) & modules_changing(unguarded), "fixture must make %s act" % name
    if path:
        assert [u["path"] for u in unguarded.unprotected] == [path]

    plan = apply(root, protect=[name], customized_paths=customized)
    assert plan.changed
    assert not set(modules) & modules_changing(plan)
    assert plan.unprotected == []
    written = yaml.safe_load((root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").read_text())
    for key in c.leaf_keys(PROTECTIONS[name]["settings"]):
        assert c.lookup(written, key) == c.lookup(PROTECTIONS[name]["settings"], key)
        assert plan.effective[key] == c.lookup(PROTECTIONS[name]["settings"], key)
    for module in PROTECTIONS[name]["disable_modules"]:
        names = {c.module_entry_name(e) for key in c.MODULE_LISTS for e in written.get(key, [])}
        assert module not in names


def test_all_protections_together_leave_only_per_instance_identity(image):
    root = image(**{"50_vendor.cfg": VENDOR_CFG})
    plan = c.plan_guard(str(root), protect=sorted(PROTECTIONS))
    # what must still change per instance: SSH host keys (and root's authorized_keys)
    assert modules_changing(plan) == {"ssh"}
    files = {x["file"] for x in plan.first_boot_changes}
    assert "/etc/ssh/ssh_host_*_key" in files


def test_packages_on_amazon_linux_sets_repo_upgrade(image):
    base = dict(BASE_CFG, system_info={"distro": "amazon"}, repo_upgrade="security")
    root = image(base=base)
    unguarded = c.plan_guard(str(root))
    assert any(x["key"] == "repo_upgrade" for x in unguarded.first_boot_changes)
    plan = c.plan_guard(str(root), protect=["packages"])
    assert plan.content["repo_upgrade"] == "none"
    assert not any(x["key"] == "repo_upgrade" for x in plan.first_boot_changes)


def test_packages_on_debian_does_not_write_repo_upgrade(image):
    plan = c.plan_guard(str(image()), protect=["packages"])
    assert "repo_upgrade" not in plan.content
    assert plan.content["package_upgrade"] is False


def test_distro_from_os_release_when_config_has_none(image):
    base = {k: v for k, v in BASE_CFG.items() if k != "system_info"}
    root = image(base=base)
    (root / "etc/os-release").write_text('NAME="Amazon Linux"\nID="amzn"\n')
    plan = c.plan_guard(str(root), protect=["packages"])
    assert plan.distro == "amazon"
    assert plan.content["repo_upgrade"] == "none"


def test_audit_expands_yum_repos_and_write_files(image):
    root = image(**{"50_x.cfg": {"yum_repos": {"a": {}, "b": {}},
                                 "write_files": [{"path": "/etc/motd", "content": "x"}]}})
    plan = c.plan_guard(str(root))
    files = {x["file"] for x in plan.first_boot_changes}
    assert {"/etc/yum.repos.d/a.repo", "/etc/yum.repos.d/b.repo", "/etc/motd"} <= files


def test_audit_frequency_override_and_disabled_module(image):
    root = image(**{"50_x.cfg": {"ntp": {"enabled": True}}})
    plan = c.plan_guard(str(root))
    ntp = [x for x in plan.first_boot_changes if x["module"] == "ntp"]
    assert ntp and all(x["frequency"] == "always" for x in ntp)
    plan = c.plan_guard(str(root), disable_modules=["ntp"])
    assert "ntp" not in modules_changing(plan)


def test_audit_off_returns_nothing(image):
    plan = c.plan_guard(str(image()), protect=["hostname"], audit=False, customized_paths=["/etc/hostname"])
    assert plan.first_boot_changes == [] and plan.unprotected == []


def test_unprotected_matches_overridden_dropins(image):
    root = image(**{"50_vendor.cfg": {"ssh_pwauth": True}})
    plan = c.plan_guard(str(root), customized_paths=["/etc/ssh/sshd_config.d/60-bake.conf", "/etc/motd"])
    assert [(u["path"], u["module"]) for u in plan.unprotected] == [
        ("/etc/ssh/sshd_config.d/60-bake.conf", "set_passwords")]


def test_acts_rules():
    assert c.acts({"key": "a", "acts": "if_bool"}, {"a": "unchanged"})[0] is False
    assert c.acts({"key": "a", "acts": "if_bool"}, {"a": "no"})[0] is True
    assert c.acts({"key": "a", "acts": "unless_in", "values": ["off", False]}, {"a": False})[0] is False
    assert c.acts({"key": "a", "acts": "unless_in", "values": ["off", False]}, {"a": "OFF"})[0] is False
    assert c.acts({"key": "a.b", "acts": "unless_in", "values": ["off"]}, {})[0] is True
    assert c.acts({"key": "a", "acts": "unless_false", "default": True}, {})[0] is True
    nested = {"key": "a", "acts": "if_set", "also": [{"key": "a.enabled", "acts": "unless_false", "default": True}]}
    assert c.acts(nested, {"a": {"enabled": False}})[0] is False


# ------------------------------------------------------------------------------ writing


def test_write_is_cloud_config_and_rerun_changes_nothing(image):
    root = image()
    plan = apply(root, protect=["hostname", "growpart"], settings={"ssh_deletekeys": True},
                 disable_modules=["locale"])
    text = (root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").read_text()
    assert text.startswith("#cloud-config\n")
    assert yaml.safe_load(text) == plan.content
    assert yaml.safe_load(text)["growpart"] == {"mode": "off"}  # 'off' quoted, not a bool
    mode = stat.S_IMODE(os.stat(root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").st_mode)
    assert mode == 0o644
    again = c.plan_guard(str(root), protect=["growpart", "hostname"], settings={"ssh_deletekeys": True},
                         disable_modules=["locale"])
    assert again.changed is False
    assert [p.name for p in (root / "etc/cloud/cloud.cfg.d").iterdir()] == ["99_bakery_guard.cfg"]


def test_write_keeps_mode_of_existing_file(image):
    root = image(**{"99_bakery_guard.cfg": {"old": 1}})
    path = root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg"
    os.chmod(path, 0o600)
    plan = apply(root, protect=["hostname"])
    assert plan.before.startswith("#cloud-config") and plan.changed
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "old" not in yaml.safe_load(path.read_text())


def test_custom_filename_and_missing_confd(tmp_path):
    root = tmp_path / "r"
    write_cfg(root, "etc/cloud/cloud.cfg", BASE_CFG)
    plan = apply(root, protect=["etc_hosts"], filename="95-keep.cfg")
    assert plan.display == "/etc/cloud/cloud.cfg.d/95-keep.cfg"
    assert (root / "etc/cloud/cloud.cfg.d/95-keep.cfg").is_file()


def test_nothing_to_manage_is_audit_only(image):
    root = image(**{"99_bakery_guard.cfg": {"preserve_hostname": True}})
    before = tree_state(root)
    plan = c.plan_guard(str(root), customized_paths=["/etc/hostname"])
    assert plan.changed is False and plan.after is None
    assert plan.unprotected == []  # the existing guard file counts
    assert tree_state(root) == before


def test_symlinked_confd_stays_inside_root(image, tmp_path):
    root = image()
    outside = tmp_path / "outside"
    outside.mkdir()
    confd = root / "etc/cloud/cloud.cfg.d"
    confd.rmdir()
    (root / "srv").mkdir()
    (root / "srv/confd").mkdir()
    confd.symlink_to("/srv/confd")
    plan = apply(root, protect=["hostname"])
    assert plan.path == str(root / "srv/confd/99_bakery_guard.cfg")
    assert (root / "srv/confd/99_bakery_guard.cfg").is_file()
    assert not list(outside.iterdir())


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("kwargs, message", [
    ({"protect": ["hostname", "nosuch"]}, "protect: unknown protection 'nosuch'"),
    ({"filename": "../evil.cfg"}, "filename: must be a plain file name without a path"),
    ({"filename": "sub/x.cfg"}, "filename: must be a plain file name without a path"),
    ({"filename": "x.conf"}, "filename: must end in .cfg"),
    ({"filename": "x.cfg.bak"}, "filename: must end in .cfg"),
    ({"filename": ".hidden.cfg"}, "filename: must be letters"),
    ({"filename": ""}, "filename: must be a plain file name"),
    ({"settings": {"repo_upgrade": "sometimes"}}, "settings.repo_upgrade: must be one of"),
    ({"settings": {"manual_cache_clean": "yes"}}, "settings.manual_cache_clean: must be a bool"),
    ({"settings": {"a": {1: "x"}}}, "settings.a: keys must be strings"),
    ({"settings": {"a": object()}}, "settings.a: object values cannot be written"),
    ({"protect": ["hostname"], "settings": {"preserve_hostname": False}},
     "settings: preserve_hostname=False contradicts protection 'hostname'"),
    ({"settings": {"cloud_config_modules": []}, "disable_modules": ["locale"]},
     "settings: cloud_config_modules cannot be set together with disable_modules"),
    ({"disable_modules": ["bad name"]}, "disable_modules: 'bad name' is not a cloud-init module name"),
    ({"customized_paths": ["etc/hosts"]}, "customized_paths: 'etc/hosts' is not an absolute path"),
    ({"protect": "hostname"}, "protect: must be a list"),
])
def test_bad_options_fail_and_write_nothing(image, kwargs, message):
    root = image()
    before = tree_state(root)
    with pytest.raises(c.GuardError, match="^" + message.replace("(", r"\(").replace(".", r"\.")
                       .replace("[", r"\[").replace("?", r"\?")):
        c.plan_guard(str(root), **kwargs)
    assert tree_state(root) == before


def test_root_without_etc_cloud(tmp_path):
    (tmp_path / "etc").mkdir()
    with pytest.raises(c.GuardError, match=r"^root: .* has no /etc/cloud"):
        c.plan_guard(str(tmp_path), protect=["hostname"])
    with pytest.raises(c.GuardError, match=r"^root: .* is not a directory"):
        c.plan_guard(str(tmp_path / "missing"), protect=["hostname"])


def test_malformed_cloud_cfg_reports_file_and_line(image):
    root = image(base="#cloud-config\nusers:\n  - default\npreserve_hostname: [oops\nother: 1\n")
    before = tree_state(root)
    with pytest.raises(c.GuardError, match=r"^/etc/cloud/cloud\.cfg: line \d+, column \d+: malformed YAML"):
        c.plan_guard(str(root), protect=["hostname"])
    assert tree_state(root) == before


def test_malformed_drop_in_reports_its_line(image):
    root = image(**{"50_bad.cfg": "a: 1\nb: 2\n  c: 3\n"})
    with pytest.raises(c.GuardError) as info:
        c.plan_guard(str(root), protect=["hostname"])
    assert str(info.value).startswith("/etc/cloud/cloud.cfg.d/50_bad.cfg: line 3,")


def test_non_mapping_config_is_refused(image):
    root = image(**{"50_list.cfg": "- a\n- b\n"})
    with pytest.raises(c.GuardError, match=r"50_list\.cfg: line 1: the top level must be a mapping"):
        c.plan_guard(str(root), protect=["hostname"])


def test_guard_path_that_is_a_directory_is_refused(image):
    root = image()
    (root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").mkdir()
    with pytest.raises(c.GuardError, match="is not a regular file"):
        c.plan_guard(str(root), protect=["hostname"])


# ------------------------------------------------------------------------------ schema


def _fake_cloud_init(root: Path) -> None:
    binary = root / "usr/bin/cloud-init"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\n")
    (root / "tmp").mkdir(exist_ok=True)


def test_schema_valid_runs_in_chroot_and_cleans_up(image):
    root = image()
    _fake_cloud_init(root)
    calls = []

    def run(argv, environ_update=None):
        calls.append(argv)
        inside = argv[-1]
        assert (root / inside.lstrip("/")).read_text() == "#cloud-config\na: 1\n"
        return 0, "Valid cloud-config: %s\n" % inside, ""

    assert c.validate_schema(str(root), "#cloud-config\na: 1\n", run) == (True, None)
    argv = calls[0]
    assert argv[1] == str(root) and argv[2:5] == ["/usr/bin/cloud-init", "schema", "--config-file"]
    assert argv[5].startswith("/tmp/.bakery-guard-")
    assert list((root / "tmp").iterdir()) == []


def test_schema_errors_fail_with_cloud_init_message(image):
    root = image()
    _fake_cloud_init(root)

    def run(argv, environ_update=None):
        return 1, "", "Error:\nCloud config schema errors: preserve_hostname: 7 is not of type 'boolean'\n"

    with pytest.raises(c.GuardError, match="settings: the drop-in fails cloud-init's schema: .*not of type 'boolean'"):
        c.validate_schema(str(root), "#cloud-config\npreserve_hostname: 7\n", run)
    assert list((root / "tmp").iterdir()) == []


def test_schema_unrunnable_is_a_warning(image):
    root = image()
    _fake_cloud_init(root)
    validated, warning = c.validate_schema(str(root), "#cloud-config\n", lambda argv, environ_update=None: (
        126, "", "chroot: failed to run command: Exec format error"))
    assert validated is False and "could not run cloud-init schema" in warning


def test_schema_skipped_without_cloud_init(image):
    validated, warning = c.validate_schema(str(image()), "#cloud-config\n", None)
    assert validated is False and "schema validation skipped" in warning
