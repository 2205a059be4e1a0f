# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The trees a case runs on: an image root, and the decoy outside it that its hostile links reach.

Image trees are small: the unit fixtures of Amazon Linux, and for Debian 12 and 13 the real /etc
and os-release of the harness's debootstrap images (about 700 files, 1.2 MB), optionally with
what a builder leaves behind planted in them ("dirty"). A case adds its own plants on top (links
out of the root, files with hostile names).

The decoy is a tree beside the root made to attract any module that follows a link out of it: an
/etc with a usable root password in shadow, SSH host keys, a machine-id, cloud-init configuration,
an Amazon Linux os-release, and a home whose user has a private key, authorized_keys and a
history. Every case has its own decoy, so a change is pinned to the case that made it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.reliability.conftest import FIXTURES

BAKE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBakeBakeBakeBakeBakeBakeBakeBakeBakeBake0001 bakery-temp"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOther0002 alice@laptop"
# An OpenSSH private key as it looks on disk (the body is not a usable key).
PRIVATE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
               "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
               "QyNTUxOQAAACBkZWNveWRlY295ZGVjb3lkZWNveWRlY295ZGVjb3kAAAAAAAAAAAAAAAAA\n"
               "-----END OPENSSH PRIVATE KEY-----\n")
AL2023_OS_RELEASE = ('NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n'
                     'PLATFORM_ID="platform:al2023"\nPRETTY_NAME="Amazon Linux 2023.6.20241010"\n')
DECOY_ROOT_HASH = "$6$decoysalt$DecoyHashThatMustNeverBeLockedDecoyHashThatMustNeverBeLocked0"

# Debian suites of the harness (tools/rootfs) and the files a small tree takes from their images.
DEBIAN = {"debian-12": "bookworm", "debian-13": "trixie"}
DEBIAN_MEMBERS = ("./etc", "./usr/lib/os-release")

# What a builder leaves behind (image path, content, mode): planted in the dirty trees.
BUILDER_LEFTOVERS = (
    ("/etc/ssh/ssh_host_ed25519_key", PRIVATE_KEY, 0o600),
    ("/etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostHostHost root@builder\n", 0o644),
    ("/root/.ssh/authorized_keys", "no-pty %s\n" % BAKE_KEY, 0o600),
    ("/root/.bash_history", "export TOKEN=builder-token\n", 0o600),
    ("/root/bake-temp-key", PRIVATE_KEY, 0o600),
    ("/var/lib/cloud/instances/i-0builder/obj.pkl", "builder was here\n", 0o600),
    ("/var/lib/cloud/data/instance-id", "i-0builder\n", 0o644),
    ("/var/log/cloud-init.log", "builder was here\n", 0o644),
    ("/etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444),
    ("/var/lib/dhcp/dhclient.eth0.leases", "lease { }\n", 0o644),
    ("/tmp/bake-script.sh", "#!/bin/sh\n", 0o755),
    ("/var/log/syslog", "builder was here\n", 0o640),
    ("/etc/sudoers.d/90-cloud-init-users", "admin ALL=(ALL) NOPASSWD:ALL\n", 0o440),
)


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def make_decoy(outside: Path) -> Path:
    """The decoy tree at outside (see the module's docstring)."""
    files = {
        "etc/shadow": ("root:%s:19700:0:99999:7:::\nalice:%s:19700:0:99999:7:::\n" % (DECOY_ROOT_HASH, DECOY_ROOT_HASH),
                       0o640),
        "etc/passwd": ("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n", 0o644),
        "etc/hostname": ("decoy-host\n", 0o644),
        "etc/machine-id": ("fedcba9876543210fedcba9876543210\n", 0o444),
        "etc/os-release": (AL2023_OS_RELEASE, 0o644),
        "etc/system-release": ("Amazon Linux release 2023.6.20241010 (Amazon Linux)\n", 0o644),
        "etc/dnf/vars/awsregion": ("us-east-1\n", 0o644),
        "etc/dnf/vars/releasever": ("2023.5.20240708\n", 0o644),
        "etc/ssh/ssh_host_ed25519_key": (PRIVATE_KEY, 0o600),
        "etc/ssh/ssh_host_ed25519_key.pub": ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDecoyHost root@decoy\n", 0o644),
        "etc/sudoers.d/90-cloud-init-users": ("alice ALL=(ALL) NOPASSWD:ALL\n", 0o440),
        "etc/cloud/cloud.cfg": ("preserve_hostname: false\nmanage_etc_hosts: true\n", 0o644),
        "etc/cloud/cloud.cfg.d/zz-decoy.cfg": ("manage_etc_hosts: true\npreserve_hostname: false\n", 0o644),
        "home/alice/.ssh/id_ed25519": (PRIVATE_KEY, 0o600),
        "home/alice/.ssh/authorized_keys": (OTHER_KEY + "\n", 0o600),
        "home/alice/.bash_history": ("aws configure set aws_secret_access_key decoy\n", 0o600),
        "tmp/decoy-download.tar": ("decoy\n", 0o644),
        "var/log/syslog": ("decoy log line\n", 0o640),
        "var/lib/cloud/data/instance-id": ("i-0decoy\n", 0o644),
    }
    for rel, (text, mode) in files.items():
        write(outside / rel, text, mode)
    (outside / "home" / "alice" / ".ssh").chmod(0o700)
    return outside


def make_controller_home(home: Path) -> Path:
    """The controller's home during a corpus run (HOME): '~' in an option lands here."""
    write(home / ".ssh" / "id_ed25519", PRIVATE_KEY, 0o600)
    write(home / ".ssh" / "authorized_keys", OTHER_KEY + "\n", 0o600)
    write(home / ".bash_history", "controller history\n", 0o600)
    (home / ".ssh").chmod(0o700)
    return home


# -- image trees ----------------------------------------------------------------------------------

def _extract_debian(dest: Path, suite: str) -> None:
    from tools.rootfs import harness  # pylint: disable=import-outside-toplevel

    tarball = harness.ensure_image(suite=suite)
    dest.mkdir(parents=True)
    proc = subprocess.run(["tar", "--numeric-owner", "-xpf", str(tarball), "-C", str(dest)] + list(DEBIAN_MEMBERS),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("extracting %s from %s failed: %s" % (DEBIAN_MEMBERS, tarball, proc.stderr))
    for rel in ("root", "home", "tmp", "var/tmp", "var/log", "var/lib/cloud"):
        (dest / rel).mkdir(parents=True, exist_ok=True)
    (dest / "root").chmod(0o700)
    (dest / "tmp").chmod(0o1777)


def plant_leftovers(root: Path) -> None:
    """What a builder leaves behind, and a usable root password."""
    for path, text, mode in BUILDER_LEFTOVERS:
        write(root / path.lstrip("/"), text, mode)
    shadow = root / "etc" / "shadow"
    lines = shadow.read_text().splitlines(True) if shadow.exists() else ["root:*:19700:0:99999:7:::\n"]
    lines = ["root:$6$builder$BuilderHash:19700:0:99999:7:::\n" if line.startswith("root:") else line for line in lines]
    write(shadow, "".join(lines), 0o640)


class Bases:
    """The base trees of one session, built once and copied for each case."""

    def __init__(self, store: Path):
        self.store = store
        self._made: dict = {}

    def get(self, name: str) -> Path:
        if name not in self._made:
            path = self.store / name
            if name.startswith("dirty-"):
                shutil.copytree(self.get(name[len("dirty-"):]), path, symlinks=True)
                plant_leftovers(path)
            elif name in DEBIAN:
                _extract_debian(path, DEBIAN[name])
            elif name == "empty":
                path.mkdir(parents=True)
            else:
                shutil.copytree(FIXTURES / name, path, symlinks=True)
            self._made[name] = path
        return self._made[name]

    def copy(self, name: str, dest: Path) -> Path:
        shutil.copytree(self.get(name), dest, symlinks=True)
        return dest


def remove_path(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def relative_up(case_dir: Path, link: Path) -> str:
    """The '../' chain from the directory holding link up to case_dir."""
    return os.path.relpath(case_dir, link.parent) + "/"
