# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_cloudinit: merging like cloud-init, planning the guard's drop-in, the audit, every
protection and every bad input, against hand-written configuration sets; the version-aware
parts (cloud-init's version, ssh_pwauth, schema keys, host key types) against fake image files
shaped like Debian 12 (cloud-init 22.4.2, OpenSSH 9.2) and Debian 13 (25.1.4, OpenSSH 10.0)."""

from __future__ import annotations

import json
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


def plan_guard(root, protect=None, settings=None, disable_modules=None, filename=c.DEFAULT_FILENAME, audit=True,
               customized_paths=None, allow_privileged_settings=False):
    """build_request and plan_request in one, for tests holding plain values."""
    return c.plan_request(c.build_request({
        "root": root, "protect": protect, "settings": settings, "disable_modules": disable_modules,
        "filename": filename, "audit": audit, "customized_paths": customized_paths,
        "allow_privileged_settings": allow_privileged_settings,
    }))


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
# (ssh_config keeps sshd's behaviour, not set_passwords' file: see the ssh_pwauth tests.)
PROTECTED = {
    "ssh_config": ("/etc/ssh/sshd_config.d/60-bake.conf", []),
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

    made = []

    def make(base="default", **dropins) -> Path:
        root = tmp_path / ("root%d" % len(made) if made else "root")
        made.append(root)
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


SSHD_CONFIG = "Include /etc/ssh/sshd_config.d/*.conf\n#PasswordAuthentication yes\nKbdInteractiveAuthentication no\n"


def write(root: Path, path: str, text: str) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def fake_cloud_init(root: Path, version: str, openssh: str | None = None, schema_keys=None,
                    datasources=("Ec2", "NoCloud", "None")) -> None:
    """Files of an installed cloud-init: version.py, dpkg status, its schema and datasources."""
    package = root / "usr/lib/python3/dist-packages/cloudinit"
    write(root, "/usr/bin/cloud-init", "#!/bin/sh\n")
    write(root, str(package.relative_to(root)) + "/version.py",
          '__VERSION__ = "%s"\n_PACKAGED_VERSION = "@@PACKAGED_VERSION@@"\n' % version)
    stanzas = ["Package: cloud-init\nStatus: install ok installed\nVersion: %s-1\n" % version]
    if openssh:
        stanzas.append("Package: openssh-server\nStatus: install ok installed\nVersion: 1:%s-1\n" % openssh)
    write(root, "/var/lib/dpkg/status", "\n".join(stanzas))
    keys = schema_keys if schema_keys is not None else sorted(
        {"preserve_hostname", "manage_etc_hosts", "manage_resolv_conf", "apt", "package_update",
         "package_upgrade", "package_reboot_if_required", "ntp", "growpart", "resize_rootfs", "ssh_pwauth",
         "ssh_deletekeys", "ssh_genkeytypes", "disable_root", "users", "runcmd", "write_files", "locale",
         "timezone", "hostname", "fqdn", "final_message", "cloud_init_modules", "cloud_config_modules",
         "cloud_final_modules", "bootcmd", "packages", "chpasswd", "yum_repos", "ssh_authorized_keys"})
    schema = {"$defs": {"base": {"properties": {key: {} for key in keys}}},
              "allOf": [{"$ref": "#/$defs/base"}]}
    write(root, str(package.relative_to(root)) + "/config/schemas/schema-cloud-config-v1.json", json.dumps(schema))
    for name in datasources:
        write(root, str(package.relative_to(root)) + "/sources/DataSource%s.py" % name, "")


# The two generations the project verifies, as fake image files.
GENERATIONS = {"bookworm": ("22.4.2", "9.2p1"), "trixie": ("25.1.4", "10.0p1")}


def apply(root: Path, **kwargs) -> c.Plan:
    plan = plan_guard(str(root), **kwargs)
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
    files, _warnings = c.read_configs(c.open_root(str(root)))
    # string order: "10_b.cfg" < "9_a.cfg"; cloud.cfg first; README, .bak and directories skipped
    assert [f.name for f in files] == ["cloud.cfg", "10_b.cfg", "9_a.cfg"]
    assert c.merge_all(f.config for f in files)["k"] == "9"


def test_later_drop_in_replaces_module_list_and_guard_uses_it(image):
    short = ["locale", ["timezone", "always"], "cc_ntp", "runcmd"]
    root = image(**{"50_custom.cfg": {"cloud_config_modules": short}})
    plan = plan_guard(str(root), disable_modules=["cc-Timezone", "ntp"])
    assert plan.content["cloud_config_modules"] == ["locale", "runcmd"]
    assert "cloud_init_modules" not in plan.content
    assert "cloud_final_modules" not in plan.content


def test_disable_modules_keeps_frequencies_and_writes_full_lists(image):
    root = image()
    plan = plan_guard(str(root), disable_modules=["timezone", "final_message", "mounts"])
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
        plan_guard(str(root), disable_modules=["ssh", "nosuchmodule"])
    assert tree_state(root) == before


def test_disable_modules_unchecked_when_the_image_sets_no_lists(image):
    # Without lists in the image's files cloud-init's built-in lists apply; nothing to check against.
    plan = plan_guard(str(image(base={"users": ["default"]})), disable_modules=["nosuchmodule"])
    assert any("nosuchmodule" in w for w in plan.warnings)
    assert not any(key in plan.content for key in c.MODULE_LISTS)


def test_later_conflicting_file_is_reported_and_wins(image):
    root = image(**{"99_zz_late.cfg": {"preserve_hostname": False, "apt": {"preserve_sources_list": False}},
                    "10_early.cfg": {"manage_etc_hosts": True}})
    plan = plan_guard(str(root), protect=["hostname", "apt_sources", "etc_hosts"])
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
    plan = plan_guard(str(root), protect=["hostname"])
    assert plan.conflicts == []


def test_later_file_replacing_parent_dict_is_a_conflict(image):
    root = image(**{"99_zz.cfg": {"network": "oops"}})
    plan = plan_guard(str(root), protect=["network"])
    assert plan.conflicts == [{"file": "/etc/cloud/cloud.cfg.d/99_zz.cfg", "key": "network.config",
                               "value": "oops", "guard_value": "disabled"}]


def test_own_filename_is_excluded_from_base(image):
    # an older guard drop-in that removed 'locale' must not hide it from the recomputed lists
    root = image(**{"99_bakery_guard.cfg": {"cloud_config_modules": ["runcmd"]}})
    plan = plan_guard(str(root), disable_modules=["timezone"])
    assert "locale" in plan.content["cloud_config_modules"]


# ------------------------------------------------------------------------------ protections


def test_protection_table_shape():
    assert len(PROTECTIONS) >= 14
    assert set(PROTECTED) <= set(PROTECTIONS)
    for name, entry in PROTECTIONS.items():
        assert entry["settings"] or entry["disable_modules"] or entry.get("derive"), name
        assert entry["description"] and entry["paths"], name
    for rule in FIRST_BOOT_EFFECTS:
        assert rule["acts"] in ("always", "if_true", "unless_true", "unless_false", "if_set",
                                "if_bool", "unless_in"), rule


@pytest.mark.parametrize("name", sorted(PROTECTED))
def test_every_protection_stops_its_modules(image, name):
    path, modules = PROTECTED[name]
    root = image(**{"50_vendor.cfg": VENDOR_CFG})
    customized = [path] if path else []

    unguarded = plan_guard(str(root), customized_paths=customized)
    assert not modules or set(modules) & modules_changing(unguarded), "fixture must make %s act" % name
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
    if "ssh_pwauth" in PROTECTIONS[name].get("derive", []):
        # the vendor file sets ssh_pwauth; the image's sshd has no PasswordAuthentication: yes
        assert written["ssh_pwauth"] is True and plan.effective["ssh_pwauth"] is True


def test_all_protections_together_leave_only_per_instance_identity(image):
    root = image(**{"50_vendor.cfg": VENDOR_CFG})
    write(root, "/etc/ssh/sshd_config", SSHD_CONFIG)
    plan = plan_guard(str(root), protect=sorted(PROTECTIONS))
    # what must still change per instance: SSH host keys and the launch key's authorized_keys;
    # set_passwords writes sshd's own value (the vendor file sets ssh_pwauth), overriding nothing
    assert modules_changing(plan) == {"ssh", "set_passwords"}
    files = {x["file"] for x in plan.first_boot_changes}
    assert "/etc/ssh/ssh_host_*_key" in files
    assert {"/root/.ssh/authorized_keys", "/home/debian/.ssh/authorized_keys"} <= files
    passwords = [x for x in plan.first_boot_changes if x["module"] == "set_passwords"]
    assert [(x["file"], x["value"], x["overrides"]) for x in passwords] == [
        ("/etc/ssh/sshd_config.d/50-cloud-init.conf", True, [])]


def test_packages_on_amazon_linux_sets_repo_upgrade(image):
    base = dict(BASE_CFG, system_info={"distro": "amazon"}, repo_upgrade="security")
    root = image(base=base)
    unguarded = plan_guard(str(root))
    assert any(x["key"] == "repo_upgrade" for x in unguarded.first_boot_changes)
    plan = plan_guard(str(root), protect=["packages"])
    assert plan.content["repo_upgrade"] == "none"
    assert not any(x["key"] == "repo_upgrade" for x in plan.first_boot_changes)


def test_packages_on_debian_does_not_write_repo_upgrade(image):
    plan = plan_guard(str(image()), protect=["packages"])
    assert "repo_upgrade" not in plan.content
    assert plan.content["package_upgrade"] is False


def test_distro_from_os_release_when_config_has_none(image):
    base = {k: v for k, v in BASE_CFG.items() if k != "system_info"}
    root = image(base=base)
    (root / "etc/os-release").write_text('NAME="Amazon Linux"\nID="amzn"\n')
    plan = plan_guard(str(root), protect=["packages"])
    assert plan.distro == "amazon"
    assert plan.content["repo_upgrade"] == "none"


def test_audit_expands_yum_repos_and_write_files(image):
    root = image(**{"50_x.cfg": {"yum_repos": {"a": {}, "b": {}},
                                 "write_files": [{"path": "/etc/motd", "content": "x"}]}})
    plan = plan_guard(str(root))
    files = {x["file"] for x in plan.first_boot_changes}
    assert {"/etc/yum.repos.d/a.repo", "/etc/yum.repos.d/b.repo", "/etc/motd"} <= files


def test_audit_frequency_override_and_disabled_module(image):
    root = image(**{"50_x.cfg": {"ntp": {"enabled": True}}})
    plan = plan_guard(str(root))
    ntp = [x for x in plan.first_boot_changes if x["module"] == "ntp"]
    assert ntp and all(x["frequency"] == "always" for x in ntp)
    plan = plan_guard(str(root), disable_modules=["ntp"])
    assert "ntp" not in modules_changing(plan)


def test_audit_off_returns_nothing(image):
    plan = plan_guard(str(image()), protect=["hostname"], audit=False, customized_paths=["/etc/hostname"])
    assert plan.first_boot_changes == [] and plan.unprotected == []


def test_unprotected_matches_overridden_dropins(image):
    root = image(**{"50_vendor.cfg": {"ssh_pwauth": False}})
    write(root, "/etc/ssh/sshd_config", SSHD_CONFIG)
    plan = plan_guard(str(root), customized_paths=["/etc/ssh/sshd_config.d/60-bake.conf", "/etc/motd"])
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
    again = plan_guard(str(root), protect=["growpart", "hostname"], settings={"ssh_deletekeys": True},
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
    plan = plan_guard(str(root), customized_paths=["/etc/hostname"])
    assert plan.changed is False and plan.after is None
    assert plan.unprotected == []  # the existing guard file counts
    assert tree_state(root) == before


def test_symlinked_confd_stays_inside_root(image, tmp_path):
    # the drop-in directory is a link inside the image: followed there, never out of the root
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
    ({"filename": ".hidden.cfg"}, "filename: must be at most 255 letters"),
    ({"filename": "x" * 300 + ".cfg"}, "filename: must be at most 255 letters"),
    ({"filename": "x\n.cfg"}, "filename: must be at most 255 letters"),
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
        plan_guard(str(root), **kwargs)
    assert tree_state(root) == before


def test_root_without_etc_cloud(tmp_path):
    (tmp_path / "etc").mkdir()
    with pytest.raises(c.GuardError, match=r"^root: .* has no /etc/cloud"):
        plan_guard(str(tmp_path), protect=["hostname"])
    with pytest.raises(c.GuardError, match=r"^root: .* is not a directory"):
        plan_guard(str(tmp_path / "missing"), protect=["hostname"])


def test_malformed_cloud_cfg_reports_file_and_line(image):
    root = image(base="#cloud-config\nusers:\n  - default\npreserve_hostname: [oops\nother: 1\n")
    before = tree_state(root)
    with pytest.raises(c.GuardError, match=r"^/etc/cloud/cloud\.cfg: line \d+, column \d+: malformed YAML"):
        plan_guard(str(root), protect=["hostname"])
    assert tree_state(root) == before


def test_malformed_drop_in_reports_its_line(image):
    root = image(**{"50_bad.cfg": "a: 1\nb: 2\n  c: 3\n"})
    with pytest.raises(c.GuardError) as info:
        plan_guard(str(root), protect=["hostname"])
    assert str(info.value).startswith("/etc/cloud/cloud.cfg.d/50_bad.cfg: line 3,")


def test_non_mapping_config_is_refused(image):
    root = image(**{"50_list.cfg": "- a\n- b\n"})
    with pytest.raises(c.GuardError, match=r"50_list\.cfg: line 1: the top level must be a mapping"):
        plan_guard(str(root), protect=["hostname"])


def test_guard_path_that_is_a_directory_is_refused(image):
    root = image()
    (root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").mkdir()
    with pytest.raises(c.GuardError, match="is not a regular file"):
        plan_guard(str(root), protect=["hostname"])


# ------------------------------------------------------------------------------ decoys outside


def decoy_state(top: Path) -> dict:
    """Hash-free identity of every entry of a decoy tree: bytes, inode, mode, mtime."""
    state = {}
    for path in sorted([top] + list(top.rglob("*"))):
        info = os.lstat(path)
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        state[str(path)] = (data, info.st_ino, info.st_mode, info.st_mtime_ns)
    return state


@pytest.mark.parametrize("link", ["absolute", "dotdot", "proc"])
def test_links_out_of_the_root_never_reach_outside(image, tmp_path, link):
    """cloud.cfg.d as a link to a directory outside the root (absolute, a ../ chain, or through
    /proc/self/root): read and written inside the root, the outside tree untouched."""
    root = image()
    outside = tmp_path / "outside"
    (outside / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    (outside / "etc/cloud/cloud.cfg.d/99_zz_outside.cfg").write_text("#cloud-config\npreserve_hostname: false\n")
    confd = root / "etc/cloud/cloud.cfg.d"
    confd.rmdir()
    target = {"absolute": str(outside / "etc/cloud/cloud.cfg.d"),
              "dotdot": "../../../" * 8 + str(outside / "etc/cloud/cloud.cfg.d").lstrip("/"),
              "proc": "/proc/self/root" + str(outside / "etc/cloud/cloud.cfg.d")}[link]
    confd.symlink_to(target)
    # where the link leads when resolved inside the root (as in a chroot): the drop-in goes there
    inside = root / ((str(outside).lstrip("/") if link != "proc" else "proc/self/root" + str(outside))
                     + "/etc/cloud/cloud.cfg.d")
    inside.mkdir(parents=True)
    before = decoy_state(outside)
    plan = plan_guard(str(root), protect=["hostname"])
    assert plan.conflicts == [] and "preserve_hostname" in plan.content  # the outside file was not read
    c.write_dropin(plan)
    assert decoy_state(outside) == before
    assert plan.path == str(inside / "99_bakery_guard.cfg")
    assert (inside / "99_bakery_guard.cfg").read_text() == plan.after


def test_a_link_at_the_dropin_path_is_refused(image, tmp_path):
    root = image()
    victim = tmp_path / "victim.cfg"
    victim.write_text("precious\n")
    (root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").symlink_to(victim)
    before = decoy_state(tmp_path / "victim.cfg")
    with pytest.raises(c.GuardError, match="filename: /etc/cloud/cloud.cfg.d/99_bakery_guard.cfg exists and is not"):
        plan_guard(str(root), protect=["hostname"])
    assert decoy_state(tmp_path / "victim.cfg") == before


def test_oversized_or_deep_image_files_fail_cleanly(image):
    root = image(**{"50_big.cfg": "#cloud-config\nfinal_message: '" + "x" * (c.MAX_CONFIG_BYTES + 10) + "'\n"})
    with pytest.raises(c.GuardError, match="50_big.cfg: larger than"):
        plan_guard(str(root), protect=["hostname"])
    root = image(base="#cloud-config\na: " + "[" * 200 + "]" * 200 + "\n")
    with pytest.raises(c.GuardError, match="cloud.cfg: nested more than"):
        plan_guard(str(root), protect=["hostname"])


# ------------------------------------------------------------------------------ the image's cloud-init


@pytest.mark.parametrize("suite", sorted(GENERATIONS))
def test_cloud_init_version_from_the_image_files(image, suite):
    root = image()
    fake_cloud_init(root, GENERATIONS[suite][0], GENERATIONS[suite][1])
    facts = c.ImageFacts(c.open_root(str(root)))
    assert facts.cloud_init.version == c.parse_version(GENERATIONS[suite][0])
    assert facts.cloud_init.source.endswith("/cloudinit/version.py")
    assert facts.cloud_init.binary == "/usr/bin/cloud-init"
    assert facts.openssh_version[:2] == {"bookworm": (9, 2), "trixie": (10, 0)}[suite]


def test_cloud_init_version_fallbacks(image):
    root = image()
    fake_cloud_init(root, "23.1.2")
    version_py = root / "usr/lib/python3/dist-packages/cloudinit/version.py"
    version_py.write_text('__VERSION__ = "23.1"\n_PACKAGED_VERSION = "23.1.2-0ubuntu0~22.04.1"\n')
    assert c.ImageFacts(c.open_root(str(root))).cloud_init.version == (23, 1, 2)  # the packaged one
    version_py.unlink()
    facts = c.ImageFacts(c.open_root(str(root)))
    assert (facts.cloud_init.version, facts.cloud_init.source) == ((23, 1, 2), "/var/lib/dpkg/status")
    (root / "var/lib/dpkg/status").unlink()
    (root / "usr/lib/python3.9/site-packages/cloud_init-22.2.2-py3.9.egg-info").mkdir(parents=True)
    facts = c.ImageFacts(c.open_root(str(root)))
    assert facts.cloud_init.version == (22, 2, 2)
    assert facts.cloud_init.source == "/usr/lib/python3.9/site-packages/cloud_init-22.2.2-py3.9.egg-info"


@pytest.mark.parametrize("text, version", [
    ("22.4.2", (22, 4, 2)), ("25.1", (25, 1, 0)), ("22.4.2-1+deb12u1", (22, 4, 2)), ("1:10.0p1-7", (10, 0, 0)),
    ("\u0662\u0662.4.2", None), ("22.\u0664", None), ("", None), (None, None), ("version", None), ("12345.1", None),
])
def test_parse_version_is_ascii_only(text, version):
    assert c.parse_version(text) == version


# ------------------------------------------------------------------------------ ssh_pwauth


def sshd_root(image, suite: str, vendor: dict | None, bake: str | None):
    root = image(**({"50_vendor.cfg": vendor} if vendor is not None else {}))
    fake_cloud_init(root, GENERATIONS[suite][0], GENERATIONS[suite][1])
    write(root, "/etc/ssh/sshd_config", SSHD_CONFIG)
    if bake is not None:
        write(root, "/etc/ssh/sshd_config.d/60-bake.conf", "PasswordAuthentication %s\n" % bake)
    return root


@pytest.mark.parametrize("suite", sorted(GENERATIONS))
def test_ssh_config_leaves_ssh_pwauth_unset_when_no_file_sets_it(image, suite):
    root = sshd_root(image, suite, None, "yes")
    plan = plan_guard(str(root), protect=["ssh_config"], customized_paths=["/etc/ssh/sshd_config.d/60-bake.conf"])
    assert "ssh_pwauth" not in plan.content and "ssh_pwauth" not in plan.after
    assert "set_passwords" not in modules_changing(plan)
    assert plan.unprotected == []


@pytest.mark.parametrize("suite", sorted(GENERATIONS))
@pytest.mark.parametrize("vendor, bake, expected", [
    (False, "yes", True), (True, "no", False), ("unchanged", "no", False), (False, None, True),
])
def test_ssh_config_writes_sshd_own_value_as_a_boolean(image, suite, vendor, bake, expected):
    root = sshd_root(image, suite, {"ssh_pwauth": vendor}, bake)
    custom = ["/etc/ssh/sshd_config.d/60-bake.conf"]
    unguarded = plan_guard(str(root), customized_paths=custom)
    if isinstance(vendor, bool) and vendor != expected:
        assert [u["module"] for u in unguarded.unprotected] == ["set_passwords"]
    plan = plan_guard(str(root), protect=["ssh_config"], customized_paths=custom)
    assert plan.content["ssh_pwauth"] is expected
    assert yaml.safe_load(plan.after)["ssh_pwauth"] is expected
    assert "unchanged" not in plan.after and "unchanged" not in plan.schema_text
    assert plan.unprotected == []
    changes = [x for x in plan.first_boot_changes if x["module"] == "set_passwords"]
    assert all(x["overrides"] == [] for x in changes)


def test_ssh_config_on_cloud_init_older_than_22_2_writes_unchanged(image):
    root = image(**{"50_vendor.cfg": {"ssh_pwauth": False}})
    fake_cloud_init(root, "22.1.1")
    plan = plan_guard(str(root), protect=["ssh_config"])
    assert plan.content["ssh_pwauth"] == "unchanged"
    assert "set_passwords" not in modules_changing(plan)


def test_sshd_effective_value_follows_includes_first_wins_and_skips_match(image):
    root = image()
    write(root, "/etc/ssh/sshd_config",
          "# c\nInclude sshd_config.d/*.conf /etc/ssh/extra.conf\nPasswordAuthentication yes\n")
    write(root, "/etc/ssh/sshd_config.d/10-a.conf", "Match User x\nPasswordAuthentication yes\n")
    write(root, "/etc/ssh/sshd_config.d/20-b.conf", "passwordauthentication=no\n")
    write(root, "/etc/ssh/sshd_config.d/30-c.conf", "PasswordAuthentication yes\n")
    write(root, "/etc/ssh/sshd_config.d/.hidden.conf", "PasswordAuthentication yes\n")
    write(root, "/etc/ssh/extra.conf", "Include /etc/ssh/extra.conf\n")  # a loop is bounded
    sshd = c.ImageFacts(c.open_root(str(root))).sshd
    assert (sshd.password_auth, sshd.source, sshd.includes_dconf) == (False, "/etc/ssh/sshd_config.d/20-b.conf", False)
    write(root, "/etc/ssh/sshd_config.d/20-b.conf", "# nothing\n")
    assert c.ImageFacts(c.open_root(str(root))).sshd.source == "/etc/ssh/sshd_config.d/30-c.conf"


def test_sshd_include_loop_is_bounded(image):
    root = image()
    write(root, "/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config\n")
    sshd = c.ImageFacts(c.open_root(str(root))).sshd
    assert sshd.password_auth is None and sshd.effective is True


def test_settings_ssh_pwauth_must_agree_with_ssh_config(image):
    root = sshd_root(image, "trixie", {"ssh_pwauth": False}, "no")
    with pytest.raises(c.GuardError, match=r"settings: ssh_pwauth=True contradicts protection 'ssh_config'"):
        plan_guard(str(root), protect=["ssh_config"], settings={"ssh_pwauth": True})
    assert plan_guard(str(root), protect=["ssh_config"], settings={"ssh_pwauth": False}).content["ssh_pwauth"] is False
    root = sshd_root(image, "trixie", None, "no")
    with pytest.raises(c.GuardError, match="which leaves it unset"):
        plan_guard(str(root), protect=["ssh_config"], settings={"ssh_pwauth": "unchanged"})


@pytest.mark.parametrize("suite", sorted(GENERATIONS))
def test_no_protection_writes_a_value_cloud_init_deprecates(image, suite):
    """Property over every protection, alone and all together, with a vendor file that makes
    every module act: the guard's own values are never a deprecated form (string ssh_pwauth,
    boolean growpart.mode)."""
    for protect in [[name] for name in sorted(PROTECTIONS)] + [sorted(PROTECTIONS)]:
        root_dir = image(**{"50_vendor.cfg": VENDOR_CFG})
        fake_cloud_init(root_dir, GENERATIONS[suite][0], GENERATIONS[suite][1])
        plan = plan_guard(str(root_dir), protect=protect)
        written = yaml.safe_load(plan.after)
        assert not isinstance(written.get("ssh_pwauth", True), str), protect
        assert written.get("growpart", {}).get("mode", "off") == "off", protect


# ------------------------------------------------------------------------------ system settings


def test_network_is_a_system_setting_kept_out_of_the_schema_document(image):
    root = image()
    fake_cloud_init(root, "25.1.4")
    plan = plan_guard(str(root), protect=["network", "hostname"],
                      settings={"datasource_list": ["Ec2", "None"], "manual_cache_clean": False,
                                "datasource": {"Ec2": {"timeout": 5, "max_wait": 10}}})
    assert yaml.safe_load(plan.after)["network"] == {"config": "disabled"}
    assert yaml.safe_load(plan.schema_text) == {"preserve_hostname": True}
    assert plan.schema_text.startswith("#cloud-config\n")


@pytest.mark.parametrize("settings, message", [
    ({"network": {"config": "enabled"}}, "settings.network: the guard writes only {config: disabled}"),
    ({"network": {"version": 2, "ethernets": {}}}, "settings.network: the guard writes only"),
    ({"datasource_list": []}, "settings.datasource_list: must be a list of 1 to 32"),
    ({"datasource_list": ["Ec2", "Ec2\n"]}, "settings.datasource_list: 'Ec2\\n' is not a datasource name"),
    ({"datasource_list": ["Ec2", "Ec2\x00"]}, "settings.datasource_list[1]: must not contain control"),
    ({"datasource_list": ["E\u0662c"]}, "settings.datasource_list: 'E\u0662c' is not a datasource name"),
    ({"datasource_list": ["Ec2", "../x"]}, "settings.datasource_list: '../x' is not a datasource name"),
    ({"datasource": {"Ec2": {"timeout": -1}}}, "settings.datasource.Ec2.timeout: must be a number"),
    ({"datasource": {"Ec2": "fast"}}, "settings.datasource.Ec2: must be a mapping"),
    ({"manual_cache_clean": "yes"}, "settings.manual_cache_clean: must be a bool"),
    ({"allow_userdata": 1}, "settings.allow_userdata: must be a bool"),
    ({"system_info": {"distro": "Debian!"}}, "settings.system_info.distro: must be a distribution name"),
    ({"system_info": {"colour": "red"}}, "settings.system_info: 'colour' is not a system_info key"),
    ({"system_info": {"network": {"renderers": ["magic"]}}}, "settings.system_info.network.renderers: must be"),
    ({"cloud_final_modules": [["final_message", "sometimes"]]}, "settings.cloud_final_modules: frequency"),
    ({"cloud_final_modules": ["bad name"]}, "settings.cloud_final_modules: 'bad name' is not a module name"),
    ({"repo_upgrade_exclude": [1]}, "settings.repo_upgrade_exclude: must be a list of non-empty strings"),
    ({"syslog_fix_perms": "root"}, "settings.syslog_fix_perms: must be user:group"),
])
def test_system_settings_are_checked_by_their_own_rules(image, settings, message):
    root = image()
    before = tree_state(root)
    with pytest.raises(c.GuardError) as info:
        plan_guard(str(root), settings=settings)
    assert info.value.msg.startswith(message), info.value.msg
    assert tree_state(root) == before


@pytest.mark.parametrize("suite", sorted(GENERATIONS))
def test_keys_unknown_to_the_image_schema_are_refused(image, suite):
    root = image()
    fake_cloud_init(root, GENERATIONS[suite][0])
    before = tree_state(root)
    with pytest.raises(c.GuardError, match=r"settings: 'preserve_hostnam' is neither a system setting the guard "
                                           r"knows .* nor a key of the image's cloud-init %s schema"
                                           % GENERATIONS[suite][0].replace(".", r"\.")):
        plan_guard(str(root), settings={"preserve_hostnam": True})
    with pytest.raises(c.GuardError, match=r"settings: datasource Azure2 not in the image's cloud-init"):
        plan_guard(str(root), settings={"datasource_list": ["Ec2", "Azure2"]})
    assert tree_state(root) == before


# ------------------------------------------------------------------------------ privileged settings


PRIVILEGED_EXAMPLES = {
    "users": [{"name": "ops", "plain_text_passwd": "secret", "sudo": "ALL=(ALL) NOPASSWD:ALL"}],
    "groups": ["admins"],
    "chpasswd": {"expire": False, "users": [{"name": "root", "password": "x"}]},
    "password": "hunter2",
    "runcmd": [["touch", "/x"]],
    "bootcmd": ["echo hi"],
    "write_files": [{"path": "/etc/x", "content": "y"}],
    "ssh_authorized_keys": ["ssh-ed25519 AAAA x"],
    "ssh_keys": {"rsa_private": "x"},
    "packages": ["nginx"],
    "yum_repos": {"x": {"baseurl": "http://example.invalid"}},
    "ca_certs": {"trusted": ["x"]},
    "phone_home": {"url": "http://example.invalid"},
    "mounts": [["/dev/xvdb", "/mnt"]],
    "power_state": {"mode": "reboot"},
    "output": {"all": "| tee -a /var/log/x"},
    "reporting": {"hook": {"type": "webhook", "endpoint": "http://example.invalid"}},
    "def_log_file": "/var/log/x.log",
}


@pytest.mark.parametrize("key", sorted(c.PRIVILEGED_KEYS))
def test_every_privileged_key_is_refused_and_nothing_is_written(image, key):
    root = image()
    before = tree_state(root)
    value = PRIVILEGED_EXAMPLES.get(key, ["x"])
    with pytest.raises(c.GuardError) as info:
        plan_guard(str(root), protect=["hostname"], settings={key: value})
    assert info.value.msg.startswith("settings: refused without allow_privileged_settings=true: %s (" % key), \
        info.value.msg
    assert tree_state(root) == before


@pytest.mark.parametrize("settings, refused", [
    ({"apt": {"sources": {"x": {"source": "deb http://example.invalid x main"}}}}, "apt.sources"),
    ({"apt": {"conf": "DPkg::Post-Invoke {\"touch /x\";};"}}, "apt.conf"),
    ({"ntp": {"enabled": True, "config": {"check_exe": "x"}}}, "ntp.config"),
    ({"datasource": {"Ec2": {"metadata_urls": ["http://example.invalid"]}}}, "datasource.Ec2.metadata_urls"),
    ({"system_info": {"default_user": {"name": "ops", "sudo": "ALL=(ALL) NOPASSWD:ALL"}}}, "system_info.default_user"),
    ({"system_info": {"paths": {"cloud_dir": "/tmp/x"}}}, "system_info.paths"),
    ({"disable_root": False}, "disable_root"),
    ({"vendor_data": {"enabled": True, "prefix": ["/bin/sh"]}}, "vendor_data.prefix"),
])
def test_privileged_sub_keys_and_values(image, settings, refused):
    root = image()
    with pytest.raises(c.GuardError, match=r"^settings: refused without allow_privileged_settings=true: %s \("
                                           % refused.replace(".", r"\.")):
        plan_guard(str(root), settings=settings)
    plan = plan_guard(str(root), settings=settings, allow_privileged_settings=True)
    assert plan.changed


@pytest.mark.parametrize("settings", [
    {"apt": {"preserve_sources_list": True}}, {"ntp": {"enabled": True, "servers": ["169.254.169.123"]}},
    {"datasource": {"Ec2": {"timeout": 5, "max_wait": 10}}}, {"disable_root": True},
    {"system_info": {"network": {"renderers": ["eni"]}}}, {"ssh_deletekeys": True, "final_message": "up\n"},
])
def test_harmless_settings_need_no_privilege(image, settings):
    assert plan_guard(str(image()), settings=settings).changed


def test_privileged_settings_allowed_explicitly(image):
    root = image()
    plan = apply(root, settings=dict(PRIVILEGED_EXAMPLES), allow_privileged_settings=True)
    assert yaml.safe_load((root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").read_text())["runcmd"] == [["touch", "/x"]]
    assert {"/etc/x", "(any file: commands)"} <= {x["file"] for x in plan.first_boot_changes}


# ------------------------------------------------------------------------------ bounds


DEEP: dict = {"G": 1}
for _level in range(40):
    DEEP = {"a": DEEP}


@pytest.mark.parametrize("settings, message", [
    ({"hostname": "a" * 254}, "settings.hostname: must be at most 253 characters, got 254"),
    ({"fqdn": ("a" * 63 + ".") * 4}, "settings.fqdn: must be at most 253 characters"),
    ({"hostname": "x" * 100000}, "settings.hostname: must be at most 253 characters, got 100000"),
    ({"hostname": "bad_host"}, "settings.hostname: must be a host name"),
    ({"hostname": "-lead"}, "settings.hostname: must be a host name"),
    ({"hostname": "a" * 64}, "settings.hostname: must be a host name"),
    ({"hostname": "h\u0661"}, "settings.hostname: must be a host name"),
    ({"hostname": 5}, "settings.hostname: must be a string"),
    ({"final_message": "up\x1b[2J"}, "settings.final_message: must not contain control characters"),
    ({"ntp": {"servers": ["a\x00b"]}}, "settings.ntp.servers[0]: must not contain control characters"),
    ({"bad\nkey": True}, "settings: keys must be non-empty and hold no control characters"),
    (DEEP, "settings.a.a.a"),
    ({"final_message": "x" * (c.MAX_SETTINGS_BYTES + 1)}, "settings: 65"),
])
def test_unbounded_settings_are_refused_before_anything_is_written(image, settings, message):
    root = image()
    before = tree_state(root)
    with pytest.raises(c.GuardError) as info:
        plan_guard(str(root), settings=settings)
    assert info.value.msg.startswith(message), info.value.msg
    assert tree_state(root) == before


@pytest.mark.parametrize("name", ["h", "web-01", "a" * 63, "ip-10-0-0-1.ec2.internal", ("a" * 63 + ".") * 3 + "a" * 61])
def test_valid_hostnames_pass_and_warn_about_sharing(image, name):
    plan = plan_guard(str(image()), settings={"hostname": name})
    assert plan.content["hostname"] == name
    assert any("share one hostname" in w for w in plan.warnings)


def test_hostname_protection_warns_that_instances_share_it(image):
    root = image()
    write(root, "/etc/hostname", "builder-7\n")
    plan = plan_guard(str(root), protect=["hostname"])
    assert any(w.startswith("protect: hostname keeps the baked /etc/hostname ('builder-7') on every instance")
               for w in plan.warnings)
    assert not any("hostname" in w for w in plan_guard(str(root), protect=["etc_hosts"]).warnings)


# ------------------------------------------------------------------------------ audit of the image's own files


def test_locale_the_image_already_has_is_not_a_change(image):
    root = image()
    write(root, "/etc/default/locale", "LANG=C.UTF-8\n")
    plan = plan_guard(str(root), customized_paths=["/etc/default/locale"])
    assert "locale" not in modules_changing(plan) and plan.unprotected == []
    root2 = image(**{"50_x.cfg": {"locale": "de_DE.UTF-8"}})
    plan = plan_guard(str(root2), customized_paths=["/etc/default/locale"])
    assert [u["module"] for u in plan.unprotected] == ["locale"]


def test_locale_is_written_when_the_image_has_none(image):
    plan = plan_guard(str(image()), customized_paths=["/etc/default/locale"])
    change = next(x for x in plan.first_boot_changes if x["module"] == "locale")
    assert change["value"] == "en_US.UTF-8" and "the image has none" in change["detail"]
    assert [u["path"] for u in plan.unprotected] == ["/etc/default/locale"]


def test_default_user_sudo_home_and_keys_are_audited(image):
    root = image(base=dict(BASE_CFG, system_info={"distro": "debian", "default_user": {
        "name": "debian", "sudo": ["ALL=(ALL) NOPASSWD:ALL"], "groups": ["sudo"]}}))
    write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    custom = ["/etc/sudoers.d/10-policy", "/home/debian", "/home/debian/.ssh/authorized_keys"]
    plan = plan_guard(str(root), customized_paths=custom)
    assert [(u["path"], u["module"]) for u in plan.unprotected] == [
        ("/etc/sudoers.d/10-policy", "users_groups"), ("/home/debian", "users_groups"),
        ("/home/debian/.ssh/authorized_keys", "ssh")]
    sudo = next(x for x in plan.first_boot_changes if x["file"] == "/etc/sudoers.d/90-cloud-init-users")
    assert "NOPASSWD:ALL" in sudo["detail"] and "no password asked" in sudo["detail"]
    guarded = plan_guard(str(root), protect=["default_user"], customized_paths=custom)
    assert [u["path"] for u in guarded.unprotected] == ["/home/debian/.ssh/authorized_keys"]
    # the user is not in the image and nothing creates it: the launch key would reach nobody
    assert any(w.startswith("default_user: the image has no user 'debian'") for w in guarded.warnings)


def test_existing_default_user_keys_go_to_its_home_and_no_warning(image):
    root = image()
    write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndebian:x:1000:1000::/srv/debian:/bin/sh\n")
    plan = plan_guard(str(root), protect=["default_user"])
    assert "/srv/debian/.ssh/authorized_keys" in {x["file"] for x in plan.first_boot_changes}
    assert not any(x["module"] == "users_groups" for x in plan.first_boot_changes)
    assert not any("default_user" in w for w in plan.warnings)


def test_network_audit_includes_the_persistent_net_rules(image):
    custom = ["/etc/udev/rules.d/70-persistent-net.rules"]
    plan = plan_guard(str(image()), customized_paths=custom)
    assert [u["module"] for u in plan.unprotected] == ["network_config"]
    guarded = plan_guard(str(image()), protect=["network"], customized_paths=custom)
    assert guarded.unprotected == []


@pytest.mark.parametrize("suite, expected", [("bookworm", {"rsa", "dsa", "ecdsa"}), ("trixie", {"rsa", "ecdsa"})])
def test_missing_host_key_types_are_generated_when_keys_are_kept(image, suite, expected):
    root = image(**{"50_x.cfg": {"ssh_deletekeys": False}})
    fake_cloud_init(root, GENERATIONS[suite][0], GENERATIONS[suite][1])
    write(root, "/etc/ssh/ssh_host_ed25519_key", "k\n")
    plan = plan_guard(str(root), customized_paths=["/etc/ssh/ssh_host_dsa_key", "/etc/ssh/ssh_host_ed25519_key"])
    generated = {x["value"] for x in plan.first_boot_changes if x["key"] == "ssh_genkeytypes"}
    assert generated == expected
    assert [u["path"] for u in plan.unprotected] == (["/etc/ssh/ssh_host_dsa_key"] if "dsa" in expected else [])


def test_dsa_is_not_generated_by_openssh_10_even_when_asked(image):
    root = image(**{"50_x.cfg": {"ssh_deletekeys": False, "ssh_genkeytypes": ["dsa", "ed25519"]}})
    fake_cloud_init(root, "22.4.2", "10.0p1")
    plan = plan_guard(str(root))
    assert {x["value"] for x in plan.first_boot_changes if x["key"] == "ssh_genkeytypes"} == {"ed25519"}


# ------------------------------------------------------------------------------ schema, in the sandbox


@pytest.fixture
def sandbox_host(monkeypatch):
    """A host where the sandbox can be built (root, util-linux unshare), whatever runs the test."""
    monkeypatch.setattr(c._sandbox.os, "geteuid", lambda: 0)
    monkeypatch.setattr(c._sandbox, "find_unshare", lambda: "/usr/bin/unshare")


def fake_runner(rc: int, out: str, err: str = "", calls: list | None = None):
    def run(argv, data=None, binary_data=False, environ_update=None):
        if calls is not None:
            calls.append({"argv": argv, "data": data, "env": environ_update})
        return rc, out, err
    return run


@pytest.mark.parametrize("suite", sorted(GENERATIONS))
def test_schema_runs_the_image_cloud_init_in_the_sandbox_from_stdin(image, sandbox_host, suite):
    root = image()
    fake_cloud_init(root, GENERATIONS[suite][0])
    plan = plan_guard(str(root), protect=["hostname", "network"])
    before = tree_state(root)
    calls: list = []
    assert c.validate_schema(plan, fake_runner(0, "Valid schema /dev/stdin\n", calls=calls)) == (True, [])
    argv = calls[0]["argv"]
    assert argv[0] == "/usr/bin/unshare" and "--net" in argv and "--pid" in argv and "--mount" in argv
    assert "chroot" not in argv
    assert argv[-4:] == ["/usr/bin/cloud-init", "schema", "--config-file", "/dev/stdin"]
    assert os.path.realpath(str(root)) in argv
    settings = json.loads(argv[argv.index(os.path.realpath(str(root))) + 1])
    assert settings["tmp_private"] is True and settings["env"]["PYTHONDONTWRITEBYTECODE"] == "1"
    assert 21 not in settings["keep"] and 18 not in settings["keep"]  # sys_admin, sys_chroot are dropped
    assert calls[0]["data"] == plan.schema_text and "network" not in calls[0]["data"]
    assert tree_state(root) == before  # nothing written into the image, not even /tmp


def test_schema_deprecations_become_warnings(image, sandbox_host):
    root = image()
    fake_cloud_init(root, "25.1.4")
    plan = plan_guard(str(root), settings={"ssh_pwauth": "no"})
    out = ("Cloud config schema deprecations: ssh_pwauth:  Changed in version 22.3. Use of non-boolean values "
           "for this field is deprecated.\nValid schema /dev/stdin\n")
    validated, warnings = c.validate_schema(plan, fake_runner(0, out))
    assert validated is True
    assert warnings == ["cloud-init 25.1.4 schema: deprecated: ssh_pwauth:  Changed in version 22.3. Use of "
                        "non-boolean values for this field is deprecated."]


@pytest.mark.parametrize("rc, out, err", [
    (1, "", "Error:\nCloud config schema errors: preserve_hostname: 7 is not of type 'boolean'\n"),
    (1, "Invalid user-data /dev/stdin\n", "Error: Cloud config schema errors: preserve_hostname: 7 is not of "
                                          "type 'boolean'\n\nError: Invalid schema: user-data\n\n"),
])
def test_schema_errors_fail_with_cloud_init_message(image, sandbox_host, rc, out, err):
    root = image()
    fake_cloud_init(root, "22.4.2")
    plan = plan_guard(str(root), settings={"preserve_hostname": 7})
    with pytest.raises(c.GuardError, match=r"settings: the drop-in fails cloud-init's schema \(cloud-init 22\.4\.2\): "
                                           r".*not of type 'boolean'"):
        c.validate_schema(plan, fake_runner(rc, out, err))


def test_schema_output_from_the_image_is_sanitized_and_bounded(image, sandbox_host):
    root = image()
    fake_cloud_init(root, "22.4.2")
    plan = plan_guard(str(root), settings={"preserve_hostname": True})
    with pytest.raises(c.GuardError) as info:
        c.validate_schema(plan, fake_runner(1, "", "Cloud config schema errors: \x1b[31m" + "x" * 100000))
    assert "\x1b" not in info.value.msg and len(info.value.msg) < 3000


def test_schema_unrunnable_is_a_warning(image, sandbox_host):
    root = image()
    fake_cloud_init(root, "22.4.2")
    plan = plan_guard(str(root), protect=["hostname"])
    validated, warnings = c.validate_schema(plan, fake_runner(125, "", "bakery sandbox: mount failed"))
    assert validated is False and "could not run cloud-init 22.4.2 schema (rc 125)" in warnings[-1]


def test_schema_not_run_without_a_sandbox(image, monkeypatch):
    root = image()
    fake_cloud_init(root, "22.4.2")
    monkeypatch.setattr(c._sandbox, "find_unshare", lambda: None)
    plan = plan_guard(str(root), protect=["hostname"])

    def never(*_args, **_kwargs):
        raise AssertionError("the image's cloud-init must not run outside the sandbox")

    validated, warnings = c.validate_schema(plan, never)
    assert validated is False and "unshare is not installed" in warnings[0] and "skipped" in warnings[0]


def test_schema_on_the_live_system_runs_directly(image, monkeypatch):
    root = image()
    fake_cloud_init(root, "22.4.2")
    plan = plan_guard(str(root), protect=["hostname"])
    monkeypatch.setattr(c._sandbox, "is_host_root", lambda _root: True)
    calls: list = []
    c.validate_schema(plan, fake_runner(0, "Valid cloud-config: /dev/stdin\n", calls=calls))
    assert calls[0]["argv"] == ["/usr/bin/cloud-init", "schema", "--config-file", "/dev/stdin"]
    assert calls[0]["env"]["LC_ALL"] == "C.UTF-8"


def test_schema_skipped_without_cloud_init(image):
    validated, warnings = c.validate_schema(plan_guard(str(image()), protect=["hostname"]), None)
    assert validated is False and "schema validation skipped" in warnings[0]


# ------------------------------------------------------------------------------ defaults


REPO = Path(__file__).resolve().parents[4]


def _protect_lists(data, found):
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("bake_cloudinit_protect", "cloudinit_protect") and isinstance(value, list):
                found.append(value)
            else:
                _protect_lists(value, found)
    elif isinstance(data, list):
        for item in data:
            _protect_lists(item, found)
    return found


def test_hostname_is_in_no_default_or_example_protection():
    from ansible_collections.bakery.ami.plugins.module_utils import _plan  # pylint: disable=import-outside-toplevel

    files = [REPO / "roles/cloudinit/defaults/main.yml"] + sorted((REPO / "examples").glob("*.yml"))
    lists = [_plan.OPTIONS["bake_cloudinit_protect"][1]]
    for path in files:
        lists += _protect_lists(yaml.safe_load(path.read_text()), [])
    assert len(lists) >= 5
    assert all(set(protect) <= set(PROTECTIONS) and "hostname" not in protect for protect in lists), lists


def test_unknown_modules_lists_the_named_modules_when_an_entry_names_none():
    # an entry that names no module (a number) used to break the sorting of the message
    error = c.unknown_modules({"cloud_config_modules": ["ntp", 5]}, ["timezone"])
    assert error == ("disable_modules: 'timezone' is in none of the image's module lists (cloud_init_modules, "
                     "cloud_config_modules, cloud_final_modules); the image runs: ntp")
