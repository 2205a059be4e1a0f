# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The generalize role on real Debian 12 and 13 roots, the archive that ships, and a real first boot.

A fresh root is booted once as the builder (cloud-init makes host keys, the default user with the
bake's key, its sudoers file and an instance record), then dirtied with tests/fixtures/dirty_root.py
(52 leaks over every category, each with its own random secret: keys, credentials, tokens in
crontabs and env files, mail, crash reports, backups, the builder's network config and hostname...).
The role runs through community.general's chroot connection - the connection the bake uses for the
embedded default. Then:
- image_scan flagged every planted leak before, and finds nothing after;
- the root is archived as the local bake archives it (tools/local_builder.py, which scans it
  first) and no planted secret appears in any member of the tar, names included (root's locked
  hash, the one kept on purpose, only in /etc/shadow); the archive's extracted tree scans clean;
- a first boot with a new instance-id and hostname behaves as the first boot of a new instance,
  and the instance has its own hostname.
Every test runs on both suites (tests/firstboot/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.fixtures import dirty_root
from tools import image_hygiene, local_builder
from tools.rootfs import harness

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BUILDER_ID = "i-0builder0000000001"
NEW_ID = "i-0second0000000002"

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is needed for the bake key")

hygiene = image_hygiene.load()


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
            state[os.path.relpath(path, root)] = (st.st_mode, st.st_ino, st.st_uid, st.st_gid, st.st_size,
                                                  st.st_mtime_ns, extra)
    return state


def run_role(root: Path, tmp_path: Path, role_vars: dict, check: bool = False,
             expect_failure: bool = False) -> subprocess.CompletedProcess:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"image": {
        "ansible_host": str(root),
        "ansible_connection": "community.general.chroot",
        "ansible_python_interpreter": "/usr/bin/python3",
        # /run is a tmpfs while mounted(): were Ansible to write anything for itself, not into the image
        "ansible_remote_tmp": "/run/bakery-ansible",
    }}}}))
    playbook = tmp_path / "generalize.yml"
    playbook.write_text("- name: Generalize the builder\n  hosts: image\n  gather_facts: false\n"
                        "  environment:\n    TMPDIR: /run\n"
                        "  roles:\n    - role: bakery.ami.generalize\n"
                        "  post_tasks:\n    - name: Show the report\n      ansible.builtin.debug:\n"
                        "        msg: \"REPORT {{ generalize_report | to_json }}\"\n")
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(role_vars))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_HOST_KEY_CHECKING="false",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_PIPELINING="true")
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), "-e", "@" + str(extra)]
    if check:
        cmd.append("--check")
    with harness.mounted(root):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200, check=False)
    if expect_failure:
        assert proc.returncode != 0, proc.stdout[-4000:]
    else:
        assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    return proc


def report(proc: subprocess.CompletedProcess) -> dict:
    for line in proc.stdout.splitlines():
        if '"msg": "REPORT ' in line:
            return json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"][len("REPORT "):])
    raise AssertionError("no report in:\n" + proc.stdout[-3000:])


def recap_changed(proc: subprocess.CompletedProcess) -> int:
    for line in proc.stdout.splitlines():
        if line.startswith("image") and "changed=" in line:
            return int(line.split("changed=")[1].split()[0])
    raise AssertionError("no recap in:\n" + proc.stdout[-3000:])


def host_keys(root: Path) -> dict:
    return {p.name: p.read_text() for p in sorted((root / "etc/ssh").glob("ssh_host_*"))}


def builder(root: Path, tmp_path: Path):
    """Boot the root as the builder, then leave what a builder leaves; returns the key, the
    fixture's manifest and the role's variables."""
    bake_key = keypair(tmp_path, "bake")
    harness.first_boot(root, BUILDER_ID, "builder", user_data=user_data(bake_key))
    assert host_keys(root), "the builder boot generated no host keys"
    assert (root / "var/lib/cloud/instances" / BUILDER_ID).is_dir()
    assert bake_key.split()[1] in (root / "home/debian/.ssh/authorized_keys").read_text()
    assert (root / "etc/sudoers.d/90-cloud-init-users").exists()
    planted = dirty_root.plant(root)
    role_vars = {"generalize_bake_authorized_key": bake_key, "generalize_bake_paths": planted.bake_paths,
                 "generalize_remove_secret_files": planted.remove_secret_files}
    return bake_key, planted, role_vars


def scan_args(bake_key: str, planted) -> dict:
    return {"bake_authorized_key": bake_key, "bake_paths": planted.bake_paths}


def secrets_in_archive(archive: Path, leaks) -> dict:
    """{secret: [member names holding it]} over every member's bytes and name."""
    wanted = {leak.secret.encode(): [] for leak in leaks}
    with tarfile.open(archive) as tar:
        for member in tar:
            data = member.name.encode() + b"\0" + member.linkname.encode()
            if member.isfile():
                data += tar.extractfile(member).read()
            for secret, hits in wanted.items():
                if secret in data:
                    hits.append(member.name)
    return {secret.decode(): hits for secret, hits in wanted.items() if hits}


def test_generalize_then_archive_then_first_boot_as_a_new_instance(fresh_root, suite, tmp_path):
    root = fresh_root
    bake_key, planted, role_vars = builder(root, tmp_path)
    builder_keys = host_keys(root)
    assert len(planted.leaks) >= 30 and len(planted.categories) >= 15

    dirty = hygiene.scan(str(root), **scan_args(bake_key, planted))
    found = {(f["path"], f["category"]) for f in dirty["findings"]}
    assert planted.expected() - found == set(), "planted but not found"
    for category in ("ssh_host_keys", "cloud_init_state", "cloud_init_seed", "cloud_init_sudoers", "bake_traces"):
        assert dirty["counts"][category] > 0, category
    assert ("/home/debian/.ssh/authorized_keys", "bake_traces") in found

    # check mode changes nothing, not even a mtime
    before = tree_state(root)
    checked = run_role(root, tmp_path, role_vars, check=True)
    assert recap_changed(checked) > 0
    assert tree_state(root) == before, "check mode changed the tree"

    # without a decision on the application's secret files, the role stops before any change
    refused = run_role(root, tmp_path, dict(role_vars, generalize_remove_secret_files=[]), expect_failure=True)
    assert "secrets: 5 file(s) hold secrets" in refused.stdout
    assert tree_state(root) == before, "a refused run changed the tree"

    done = report(run_role(root, tmp_path, role_vars))
    assert done["finished"] is True and done["final_step"] == []
    assert done["root"] == str(root), "the module ran on the host, on the chroot's directory"
    assert done["cloud_init_clean"]["run"] is True and done["cloud_init_clean"]["rc"] == 0, done["cloud_init_clean"]
    assert done["cloud_init_clean"]["version"] == harness.SUITES[suite]["cloud_init"]
    clean = hygiene.scan(str(root), **scan_args(bake_key, planted))
    assert clean["findings"] == [], clean["findings"]
    assert (root / "etc/machine-id").read_text() in ("", "uninitialized\n")
    assert stat.S_IMODE(os.stat(root / "etc/machine-id").st_mode) == 0o444
    assert (root / "etc/hostname").read_text() == "localhost\n"
    assert stat.S_IMODE(os.stat(root / "var/log/auth.log").st_mode) == 0o640
    assert not (root / "root/.ansible").exists()
    # a rerun changes nothing
    assert recap_changed(run_role(root, tmp_path, role_vars)) == 0

    # the root as the local bake archives it: scanned first, then tarred
    cache = tmp_path / "cache"
    info = local_builder.archive(root, str(cache), "ami-0123456789abcdef0",
                                 {"hygiene": {"categories": ["all"], "exclude": []}})
    assert info["scan"]["clean"] is True
    archive = Path(info["archive"])
    left = secrets_in_archive(archive, planted.leaks)
    locked = [leak for leak in planted.leaks if leak.after == "locked"][0]
    assert left.pop(locked.secret, None) == ["./etc/shadow"]
    assert left == {}, "planted secrets in the archive: %s" % left
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(archive), "-C", str(extracted)], check=True)
    assert hygiene.scan(str(extracted))["findings"] == []
    shutil.rmtree(extracted)
    archive.unlink()

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
    # the instance has its own name, not the builder's
    assert (root / "etc/hostname").read_text().strip() == "web1"
    # cloud-init does not write /etc/machine-id, and this image has no systemd: the empty file is
    # what systemd turns into a new id on a real first boot. systemd-machine-id-setup (from the host,
    # on the image's root) does what PID 1 does there.
    if shutil.which("systemd-machine-id-setup"):
        subprocess.run(["systemd-machine-id-setup", "--root", str(root)], check=True, capture_output=True)
        machine_id = (root / "etc/machine-id").read_text().strip()
        assert len(machine_id) == 32 and machine_id not in {leak.secret for leak in planted.leaks}


def test_categories_switched_off_are_left_alone(fresh_root, tmp_path):
    root = fresh_root
    bake_key, planted, role_vars = builder(root, tmp_path)
    keep = ["ssh_host_keys", "shell_history", "logs", "machine_id", "hostname"]
    kept = [leak.path for leak in planted.leaks if leak.category in keep]
    kept += ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key.pub", "/var/log/dpkg.log"]
    kept_before = harness.snapshot_files(root, kept)
    assert all(kept_before.values()), kept_before
    role_vars.update({"generalize_" + category: False for category in keep})
    run_role(root, tmp_path, role_vars)
    assert harness.snapshot_files(root, kept) == kept_before
    others = [c for c in hygiene.CATEGORY_NAMES if c not in keep]
    assert hygiene.scan(str(root), categories=others, **scan_args(bake_key, planted))["findings"] == []
    left = hygiene.scan(str(root), categories=keep, **scan_args(bake_key, planted))["counts"]
    assert all(left[category] > 0 for category in keep), left


def test_the_images_cloud_init_runs_sandboxed(fresh_root, tmp_path):
    """A replaced /usr/bin/cloud-init that escapes a plain chroot through /proc/<pid>/root (the root
    is mounted with proc, as the local builder mounts it) writes nothing outside the root when the
    role runs it; the same program run as the old role did (chroot) does."""
    root = fresh_root
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    escape = decoy / "escaped"
    (root / "usr/bin/cloud-init").unlink()
    # /proc/<pid>/root of a host process (PID 1, and this test's own process, which shares our
    # mount namespace) is the host's root, seen from a chroot whose /proc is the host's
    (root / "usr/bin/cloud-init").write_text(
        "#!/bin/sh\nfor pid in 1 %d; do echo 'the image wrote this' > /proc/$pid/root%s; done\nexit 0\n"
        % (os.getpid(), escape))
    os.chmod(root / "usr/bin/cloud-init", 0o755)
    (root / "var/lib/cloud/instances/i-0abc").mkdir(parents=True)
    (root / "var/lib/cloud/instances/i-0abc/obj.pkl").write_text("state")
    before = tree_state(decoy)
    done = report(run_role(root, tmp_path, {}))
    assert done["cloud_init_clean"]["run"] is True and done["cloud_init_clean"]["rc"] == 0
    assert not escape.exists() and tree_state(decoy) == before, "the image's cloud-init wrote outside the root"
    assert not (root / "var/lib/cloud/instances/i-0abc").exists()
    # the check is sharp: run as plain host root in a chroot, the same program escapes
    with harness.mounted(root):
        subprocess.run(["chroot", str(root), "/usr/bin/cloud-init", "clean"], check=True, capture_output=True)
    assert escape.read_text() == "the image wrote this\n"
    escape.unlink()
