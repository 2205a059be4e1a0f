# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The generalize role on a real Debian 12 root, then a real cloud-init first boot of the result.

A fresh root is booted once as the builder (cloud-init makes host keys, the default user with the
bake's key, its sudoers file and an instance record), dirtied further the way a builder is
(histories, machine-id, leases, caches, temp files, logs, a temporary private key, a root password),
then the role runs through community.general's chroot connection - the connection the bake uses
for the embedded default - with the root's /run a tmpfs and Ansible's remote_tmp in it, so that
nothing Ansible writes for itself lands in the image. image_scan then finds nothing, and a second
first boot with a new instance-id behaves as the first boot of a new instance.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tools.rootfs import harness

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BUILDER_ID = "i-0builder0000000001"
NEW_ID = "i-0second0000000002"
BUILDER_MACHINE_ID = "0123456789abcdef0123456789abcdef"

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is needed for the bake key")


def _load_hygiene():
    # The scanner has no Ansible imports: load it straight from the file, as the module would run it.
    path = REPO_ROOT / "plugins" / "module_utils" / "_hygiene.py"
    spec = importlib.util.spec_from_file_location("bakery_hygiene_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hygiene = _load_hygiene()


def collections_path() -> str:
    base = Path(tempfile.gettempdir()) / ("bakery-ami-firstboot-" + hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12])
    link = base / "ansible_collections" / "bakery" / "ami"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT)
    return str(base)


def keypair(tmp_path: Path, name: str) -> str:
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return (tmp_path / (name + ".pub")).read_text().strip()


def user_data(public_key: str) -> str:
    return "#cloud-config\nssh_authorized_keys:\n  - %s\n" % public_key


def tree_state(root: Path) -> dict:
    """Every entry under root (mounts excluded): type, mode, owner, size, mtime, content hash or link."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not os.path.ismount(os.path.join(dirpath, d))]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    extra = hashlib.sha256(handle.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            else:
                extra = None
            state[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, extra)
    return state


def write(root: Path, path: str, content: str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    os.chmod(target, mode)


def dirty_like_a_builder(root: Path) -> set:
    """What a builder does after its first boot; returns {(path, category)} image_scan must report."""
    planted = set()

    def add(category, path, content="builder was here\n", mode=0o644, found=None):
        write(root, path, content, mode)
        planted.add((found or path, category))

    add("shell_history", "/home/debian/.bash_history", "sudo -i\nexport AWS_SECRET_ACCESS_KEY=abc\n", 0o600)
    add("shell_history", "/home/debian/.lesshst", ".less-history-file:\n")
    add("shell_history", "/root/.bash_history", "apt-get install -y nginx\n", 0o600)
    add("shell_history", "/root/.python_history", "import secrets\n", 0o600)
    add("machine_id", "/etc/machine-id", BUILDER_MACHINE_ID + "\n", 0o444)
    add("machine_id", "/var/lib/dbus/machine-id", BUILDER_MACHINE_ID + "\n")
    add("dhcp_leases", "/var/lib/dhcp/dhclient.eth0.leases", "lease { fixed-address 10.0.0.5; }\n")
    add("package_caches", "/var/cache/apt/pkgcache.bin", "BIN")
    add("package_caches", "/var/cache/apt/srcpkgcache.bin", "BIN")
    add("package_caches", "/var/cache/apt/archives/nginx_1.22_amd64.deb", "DEB")
    add("package_caches", "/var/lib/apt/lists/deb.example_dists_bookworm_InRelease", "LIST")
    add("temp_files", "/tmp/provision.sh", "#!/bin/sh\ncurl -H 'Authorization: x' ...\n", 0o755)
    add("temp_files", "/var/tmp/payload/app.tgz", "TGZ", found="/var/tmp/payload")
    add("logs", "/var/log/syslog", "builder sshd[1]: Accepted publickey for debian from 10.0.0.1\n")
    add("logs", "/var/log/auth.log", "builder sudo: debian : COMMAND=/bin/sh\n", 0o640)
    add("logs", "/var/log/journal/%s/system.journal" % BUILDER_MACHINE_ID, "JOURNAL",
        found="/var/log/journal/" + BUILDER_MACHINE_ID)
    add("bake_traces", "/root/.ssh/bake_id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0o600)
    shadow = root / "etc/shadow"
    lines = shadow.read_text().splitlines()
    lines = ["root:$6$builder$0123456789abcdef:19700:0:99999:7:::" if line.startswith("root:") else line for line in lines]
    shadow.write_text("\n".join(lines) + "\n")
    planted.add(("/etc/shadow", "root_password"))
    return planted


def run_role(root: Path, tmp_path: Path, role_vars: dict, check: bool = False) -> subprocess.CompletedProcess:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"image": {
        "ansible_host": str(root),
        "ansible_connection": "community.general.chroot",
        "ansible_python_interpreter": "/usr/bin/python3",
        # /run is a tmpfs while mounted(): Ansible's own files never land in the image
        "ansible_remote_tmp": "/run/bakery-ansible",
    }}}}))
    playbook = tmp_path / "generalize.yml"
    # AnsiballZ unpacks each module in the system temp dir: point it at the tmpfs /run as well, or
    # check mode would still touch /tmp's mtime (with a file created and removed by Ansible itself).
    playbook.write_text("- name: Generalize the builder\n  hosts: image\n  gather_facts: false\n"
                        "  environment:\n    TMPDIR: /run\n"
                        "  roles:\n    - role: bakery.ami.generalize\n")
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(role_vars))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_HOST_KEY_CHECKING="false",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_PIPELINING="true")
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), "-e", "@" + str(extra)]
    if check:
        cmd.append("--check")
    with harness.mounted(root):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    return proc


def recap_changed(proc: subprocess.CompletedProcess) -> int:
    for line in proc.stdout.splitlines():
        if line.startswith("image") and "changed=" in line:
            return int(line.split("changed=")[1].split()[0])
    raise AssertionError("no recap in:\n" + proc.stdout[-3000:])


def host_keys(root: Path) -> dict:
    return {p.name: p.read_text() for p in sorted((root / "etc/ssh").glob("ssh_host_*"))}


def builder(fresh_root: Path, tmp_path: Path):
    bake_key = keypair(tmp_path, "bake")
    harness.first_boot(fresh_root, BUILDER_ID, "builder", user_data=user_data(bake_key))
    # what the builder boot made
    assert host_keys(fresh_root), "the builder boot generated no host keys"
    assert (fresh_root / "var/lib/cloud/instances" / BUILDER_ID).is_dir()
    assert bake_key.split()[1] in (fresh_root / "home/debian/.ssh/authorized_keys").read_text()
    assert (fresh_root / "etc/sudoers.d/90-cloud-init-users").exists()
    planted = dirty_like_a_builder(fresh_root)
    role_vars = {"generalize_bake_authorized_key": bake_key, "generalize_bake_paths": ["/root/.ssh/bake_id_ed25519"]}
    return bake_key, planted, role_vars


def test_generalize_then_first_boot_as_a_new_instance(fresh_root, tmp_path):
    root = fresh_root
    bake_key, planted, role_vars = builder(root, tmp_path)
    builder_keys = host_keys(root)
    scan_args = {"bake_authorized_key": bake_key, "bake_paths": ["/root/.ssh/bake_id_ed25519"]}

    dirty = hygiene.scan(str(root), **scan_args)
    found = {(f["path"], f["category"]) for f in dirty["findings"]}
    assert planted - found == set(), "planted but not found"
    for category in ("ssh_host_keys", "cloud_init_state", "cloud_init_seed", "cloud_init_sudoers", "bake_traces"):
        assert dirty["counts"][category] > 0, category
    assert ("/home/debian/.ssh/authorized_keys", "bake_traces") in found

    # check mode changes nothing (Ansible's remote_tmp is on the tmpfs /run)
    before = tree_state(root)
    checked = run_role(root, tmp_path, role_vars, check=True)
    assert recap_changed(checked) > 0
    assert tree_state(root) == before, "check mode changed the tree"

    run_role(root, tmp_path, role_vars)
    clean = hygiene.scan(str(root), **scan_args)
    assert clean["findings"] == [], clean["findings"]
    assert (root / "etc/machine-id").read_text() == ""
    assert stat.S_IMODE(os.stat(root / "etc/machine-id").st_mode) == 0o444
    assert not (root / "var/lib/dbus/machine-id").exists()
    assert (root / "var/log/auth.log").exists() and stat.S_IMODE(os.stat(root / "var/log/auth.log").st_mode) == 0o640
    assert not (root / "root/.ansible").exists()
    assert [line for line in (root / "etc/shadow").read_text().splitlines() if line.startswith("root:")][0] \
        .startswith("root:!$6$builder$")

    # a rerun changes nothing
    assert recap_changed(run_role(root, tmp_path, role_vars)) == 0

    # the first boot of a new instance
    new_key = keypair(tmp_path, "launch")
    harness.first_boot(root, NEW_ID, "web1", user_data=user_data(new_key))
    new_keys = host_keys(root)
    assert {n for n in new_keys if n.endswith("_key")} >= {"ssh_host_ed25519_key", "ssh_host_rsa_key", "ssh_host_ecdsa_key"}
    for name, content in new_keys.items():
        assert builder_keys.get(name) != content, "host key %s survived into the new instance" % name
    instances = sorted(p.name for p in (root / "var/lib/cloud/instances").iterdir())
    assert instances == [NEW_ID], instances
    assert os.readlink(root / "var/lib/cloud/instance") == "/var/lib/cloud/instances/" + NEW_ID
    log = (root / "var/log/cloud-init.log").read_text()
    assert NEW_ID in log and BUILDER_ID not in log
    authorized = (root / "home/debian/.ssh/authorized_keys").read_text()
    assert new_key.split()[1] in authorized and bake_key.split()[1] not in authorized
    assert (root / "etc/sudoers.d/90-cloud-init-users").exists()
    # cloud-init does not write /etc/machine-id, and this image has no systemd: the empty file is
    # what systemd turns into a new id on a real first boot. systemd-machine-id-setup (from the host,
    # on the image's root) does what PID 1 does there.
    assert (root / "etc/machine-id").read_text() == ""
    if shutil.which("systemd-machine-id-setup"):
        subprocess.run(["systemd-machine-id-setup", "--root", str(root)], check=True, capture_output=True)
        machine_id = (root / "etc/machine-id").read_text().strip()
        assert len(machine_id) == 32 and machine_id != BUILDER_MACHINE_ID


def test_categories_switched_off_are_left_alone(fresh_root, tmp_path):
    root = fresh_root
    bake_key, _planted, role_vars = builder(root, tmp_path)
    keep = ["ssh_host_keys", "shell_history", "logs", "machine_id"]
    kept_before = harness.snapshot_files(root, [
        "etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_rsa_key.pub", "home/debian/.bash_history",
        "root/.bash_history", "var/log/syslog", "var/log/dpkg.log", "etc/machine-id", "var/lib/dbus/machine-id",
        "var/log/journal/%s/system.journal" % BUILDER_MACHINE_ID,
    ])
    assert all(kept_before.values()), kept_before
    role_vars.update({"generalize_" + category: False for category in keep})
    run_role(root, tmp_path, role_vars)
    assert harness.snapshot_files(root, list(kept_before)) == kept_before
    scan_args = {"bake_authorized_key": bake_key, "bake_paths": ["/root/.ssh/bake_id_ed25519"]}
    others = [c for c in hygiene.CATEGORY_NAMES if c not in keep]
    assert hygiene.scan(str(root), categories=others, **scan_args)["findings"] == []
    left = hygiene.scan(str(root), categories=keep, **scan_args)["counts"]
    assert all(left[category] > 0 for category in keep), left
