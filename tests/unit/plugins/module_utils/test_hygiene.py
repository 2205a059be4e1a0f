# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hygiene scanner on fixture trees: every planted item is found, nothing else is."""

from __future__ import annotations

import os
import re
import stat
import subprocess

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _hygiene as hygiene
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

BAKE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBakeBakeBakeBakeBakeBakeBakeBakeBakeBake0001 bakery-temp"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOther0002 alice@laptop"

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
admin:x:1000:1000:Builder:/home/admin:/bin/bash
alice:x:1001:1001::/srv/alice:/bin/zsh
deploy:x:1002:1002::/home/deploy:/bin/bash
"""

SHADOW = """\
root:$6$salt$hashhashhash:19700:0:99999:7:::
daemon:*:19700:0:99999:7:::
admin:!:19700:0:99999:7:::
"""


def write(root, path, content="x\n", mode=None):
    target = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(content)
    if mode is not None:
        os.chmod(target, mode)
    return target


def mkdir(root, path):
    target = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(target, exist_ok=True)
    return target


def base_tree(root):
    """What a clean image holds: nothing here may be reported."""
    write(root, "/etc/passwd", PASSWD)
    write(root, "/etc/shadow", SHADOW.replace("$6$salt$hashhashhash", "*"), mode=0o640)
    write(root, "/etc/machine-id", "", mode=0o444)
    os.makedirs(os.path.join(str(root), "var/lib/dbus"), exist_ok=True)
    os.symlink("/etc/machine-id", os.path.join(str(root), "var/lib/dbus/machine-id"))
    write(root, "/etc/ssh/sshd_config", "PermitRootLogin no\n")
    write(root, "/etc/ssh/ssh_config", "Host *\n")
    mkdir(root, "/etc/ssh/sshd_config.d")
    write(root, "/etc/sudoers.d/README", "keep\n")
    for home in ("/root", "/home/admin", "/srv/alice", "/home/deploy"):
        write(root, home + "/.bashrc", "alias ll='ls -l'\n")
        mkdir(root, home + "/.ssh")
    write(root, "/home/admin/.ssh/authorized_keys", "")  # empty: nothing to remove
    write(root, "/root/.ssh/authorized_keys", "# no keys\n\n")
    mkdir(root, "/tmp")
    mkdir(root, "/var/tmp")
    mkdir(root, "/var/lib/cloud/scripts/per-boot")
    write(root, "/var/lib/cloud/scripts/per-boot/10-app.sh", "#!/bin/sh\n")
    mkdir(root, "/var/lib/cloud/instances")
    mkdir(root, "/var/log/journal")
    mkdir(root, "/var/log/apt")
    write(root, "/var/log/apt/history.log", "")  # empty current log: fine
    write(root, "/var/log/wtmp", "")
    os.symlink("../../usr/share/doc/README.logs", os.path.join(str(root), "var/log/README"))
    mkdir(root, "/var/cache/apt/archives/partial")
    write(root, "/var/cache/apt/archives/lock", "")
    mkdir(root, "/var/lib/apt/lists/partial")
    write(root, "/var/lib/apt/lists/lock", "")
    mkdir(root, "/var/lib/dhcp")
    write(root, "/var/lib/dhcp/dhcpd.leases", "")  # a DHCP server's leases are not the client's
    mkdir(root, "/run")
    mkdir(root, "/etc/cloud/cloud.cfg.d")
    write(root, "/etc/cloud/cloud.cfg", "users: [default]\n")
    write(root, "/usr/share/doc/README.logs", "docs\n")
    write(root, "/etc/hostname", "localhost\n")
    write(root, "/etc/default/app", "# API_TOKEN=put-yours-here\nAPP_PASSWORD=$APP_PASSWORD_FROM_ENV\nLOG=info\n")
    write(root, "/etc/network/interfaces.d/lo", "auto lo\niface lo inet loopback\n")
    write(root, "/var/spool/cron/crontabs/.SEQ", "")
    mkdir(root, "/var/mail")
    mkdir(root, "/var/crash")
    write(root, "/root/.ssh/config", "Host *\n  IdentityFile ~/.ssh/id_ed25519\n")
    write(root, "/root/.ssh/id_ed25519.pub", OTHER_KEY + "\n")


def plant(root):
    """Dirty a clean tree the way a builder does; returns {(path, category)} of every planted item."""
    base_tree(root)
    expected = set()

    def add(category, path, content="secret\n", mode=None):
        write(root, path, content, mode)
        expected.add((path, category))

    # ssh_host_keys
    for kind in ("rsa", "ecdsa", "ed25519"):
        add("ssh_host_keys", f"/etc/ssh/ssh_host_{kind}_key", "PRIVATE\n", 0o600)
        add("ssh_host_keys", f"/etc/ssh/ssh_host_{kind}_key.pub", "PUBLIC\n")
    add("ssh_host_keys", "/etc/ssh/ssh_host_ed25519_key-cert.pub", "CERT\n")
    # authorized_keys (root, the builder user, a user whose home is outside /home, an orphan home)
    add("authorized_keys", "/root/.ssh/authorized_keys2", OTHER_KEY + "\n", 0o600)
    add("authorized_keys", "/srv/alice/.ssh/authorized_keys", "# alice\n" + OTHER_KEY + "\n", 0o600)
    add("authorized_keys", "/home/olduser/.ssh/authorized_keys", OTHER_KEY + "\n", 0o600)
    write(root, "/home/deploy/.ssh/authorized_keys", OTHER_KEY + "\n", 0o600)  # kept user (when asked)
    expected.add(("/home/deploy/.ssh/authorized_keys", "authorized_keys"))
    # the builder user's file holds the bake key: bake_traces (authorized_keys defers to it)
    add("bake_traces", "/home/admin/.ssh/authorized_keys",
        'no-port-forwarding,command="echo hi" ' + BAKE_KEY + "\n" + OTHER_KEY + "\n", 0o600)
    # shell_history of every user including root
    for home in ("/root", "/home/admin", "/srv/alice"):
        for name in (".bash_history", ".python_history", ".mysql_history", ".psql_history", ".lesshst",
                     ".viminfo", ".sh_history"):
            add("shell_history", f"{home}{'/'}{name}", "ls -l /secret\n")
    add("shell_history", "/srv/alice/.zsh_history", ": 1700000000:0;export TOKEN=abc\n")
    add("shell_history", "/root/.local/share/fish/fish_history", "- cmd: ls\n")
    # cloud_init_state
    add("cloud_init_state", "/var/lib/cloud/instances/i-0builder/user-data.txt", "#cloud-config\n")
    expected.discard(("/var/lib/cloud/instances/i-0builder/user-data.txt", "cloud_init_state"))
    expected.add(("/var/lib/cloud/instances/i-0builder", "cloud_init_state"))
    os.symlink("/var/lib/cloud/instances/i-0builder", os.path.join(str(root), "var/lib/cloud/instance"))
    expected.add(("/var/lib/cloud/instance", "cloud_init_state"))
    add("cloud_init_state", "/var/lib/cloud/data/instance-id", "i-0builder\n")
    add("cloud_init_state", "/var/lib/cloud/data/status.json", "{}\n")
    add("cloud_init_state", "/var/lib/cloud/sem/config_scripts_per_once.once", "")
    add("cloud_init_state", "/var/lib/cloud/handlers/some-handler", "")
    expected.discard(("/var/lib/cloud/handlers/some-handler", "cloud_init_state"))
    expected.add(("/var/lib/cloud/handlers/some-handler", "cloud_init_state"))
    add("cloud_init_state", "/var/log/cloud-init.log", "boot\n")
    add("cloud_init_state", "/var/log/cloud-init-output.log", "boot\n")
    add("cloud_init_state", "/run/cloud-init/instance-data.json", "{}\n")
    # cloud_init_seed
    add("cloud_init_seed", "/var/lib/cloud/seed/nocloud/meta-data", "instance-id: i-0builder\n")
    expected.discard(("/var/lib/cloud/seed/nocloud/meta-data", "cloud_init_seed"))
    expected.add(("/var/lib/cloud/seed/nocloud", "cloud_init_seed"))
    # machine_id
    add("machine_id", "/etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
    os.unlink(os.path.join(str(root), "var/lib/dbus/machine-id"))
    add("machine_id", "/var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n")
    add("machine_id", "/var/lib/systemd/random-seed", "RANDOM")
    add("machine_id", "/var/lib/systemd/credential.secret", "SECRET")
    # dhcp_leases: dhclient (Debian and Red Hat), NetworkManager, systemd-networkd, dhcpcd
    add("dhcp_leases", "/var/lib/dhcp/dhclient.eth0.leases", "lease {}\n")
    add("dhcp_leases", "/var/lib/dhcp/dhclient.leases", "lease {}\n")
    add("dhcp_leases", "/var/lib/dhclient/dhclient--eth0.lease", "lease {}\n")
    add("dhcp_leases", "/var/lib/NetworkManager/internal-0a1b-eth0.lease", "ADDRESS=10.0.0.5\n")
    add("dhcp_leases", "/var/lib/NetworkManager/secret_key", "KEY")
    add("dhcp_leases", "/run/systemd/netif/leases/2", "ADDRESS=10.0.0.5\n")
    add("dhcp_leases", "/var/lib/dhcpcd/eth0.lease", "LEASE")
    add("dhcp_leases", "/var/lib/dhcpcd/duid", "DUID")
    add("dhcp_leases", "/var/db/dhcpcd/eth0.lease6", "LEASE")
    # temp_files
    add("temp_files", "/tmp/bake-script.sh", "#!/bin/sh\n")
    add("temp_files", "/tmp/unpacked/secret.pem", "KEY")
    expected.discard(("/tmp/unpacked/secret.pem", "temp_files"))
    expected.add(("/tmp/unpacked", "temp_files"))
    add("temp_files", "/var/tmp/.hidden-download", "data")
    # logs
    add("logs", "/var/log/journal/0123456789abcdef0123456789abcdef/system.journal", "JOURNAL")
    expected.discard(("/var/log/journal/0123456789abcdef0123456789abcdef/system.journal", "logs"))
    expected.add(("/var/log/journal/0123456789abcdef0123456789abcdef", "logs"))
    add("logs", "/run/log/journal/0123/system.journal", "JOURNAL")
    expected.discard(("/run/log/journal/0123/system.journal", "logs"))
    expected.add(("/run/log/journal/0123", "logs"))
    for name in ("wtmp", "btmp", "lastlog", "faillog"):
        add("login_records", "/var/log/" + name, "\x07\0\0\0builder pts/0 10.0.0.1")
    for name in ("syslog", "messages", "auth.log", "secure", "dpkg.log",
                 "apt/term.log", "dnf.log", "yum.log", "audit/audit.log", "syslog.1", "messages-20240101",
                 "auth.log.2.gz", "installer/autoinstall-user-data"):
        add("logs", "/var/log/" + name, "Jan 1 builder sshd: Accepted publickey for admin\n")
    # package_caches
    add("package_caches", "/var/cache/apt/pkgcache.bin", "BIN")
    add("package_caches", "/var/cache/apt/srcpkgcache.bin", "BIN")
    add("package_caches", "/var/cache/apt/archives/curl_7.88_amd64.deb", "DEB")
    add("package_caches", "/var/cache/apt/archives/partial/vim_9.0_amd64.deb", "DEB")
    add("package_caches", "/var/lib/apt/lists/deb.example_dists_bookworm_InRelease", "LIST")
    add("package_caches", "/var/lib/apt/lists/partial/deb.example_dists_bookworm_main_Packages", "LIST")
    add("package_caches", "/var/cache/dnf/amazonlinux-1234/repodata/repomd.xml", "XML")
    expected.discard(("/var/cache/dnf/amazonlinux-1234/repodata/repomd.xml", "package_caches"))
    expected.add(("/var/cache/dnf/amazonlinux-1234", "package_caches"))
    add("package_caches", "/var/cache/dnf/expired_repos.json", "[]")
    add("package_caches", "/var/cache/yum/x86_64/2/amzn2-core/repomd.xml", "XML")
    expected.discard(("/var/cache/yum/x86_64/2/amzn2-core/repomd.xml", "package_caches"))
    expected.add(("/var/cache/yum/x86_64", "package_caches"))
    # cloud_init_sudoers
    add("cloud_init_sudoers", "/etc/sudoers.d/90-cloud-init-users", "admin ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    # root_password
    write(root, "/etc/shadow", SHADOW, mode=0o640)
    expected.add(("/etc/shadow", "root_password"))
    # bake_traces: a temporary private key the bake copied, Ansible's directories
    add("bake_traces", "/root/bake-temp-key", "PRIVATE", 0o600)
    add("bake_traces", "/root/.ansible/tmp/ansible-tmp-1/AnsiballZ_x.py", "code")
    expected.discard(("/root/.ansible/tmp/ansible-tmp-1/AnsiballZ_x.py", "bake_traces"))
    expected.add(("/root/.ansible", "bake_traces"))
    add("bake_traces", "/home/admin/.ansible/tmp/x", "code")
    write(root, "/home/admin/.ansible/collections/ansible_collections/README", "keep")
    expected.discard(("/home/admin/.ansible/tmp/x", "bake_traces"))
    expected.add(("/home/admin/.ansible/tmp", "bake_traces"))
    add("bake_traces", "/home/admin/.ansible_async/123.456", '{"stdout": "secret"}')
    expected.discard(("/home/admin/.ansible_async/123.456", "bake_traces"))
    expected.add(("/home/admin/.ansible_async", "bake_traces"))
    # ssh_user_files: private keys whatever their name, known_hosts
    add("ssh_user_files", "/root/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n", 0o600)
    add("ssh_user_files", "/srv/alice/.ssh/work.pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n", 0o600)
    add("ssh_user_files", "/home/admin/.ssh/keys/old", "PuTTY-User-Key-File-3: ssh-ed25519\n", 0o600)
    add("ssh_user_files", "/home/admin/.ssh/known_hosts", "github.com ssh-ed25519 AAAA\n")
    # credentials by name
    add("credentials", "/root/.aws/credentials", "[default]\naws_access_key_id = x\n")
    expected.discard(("/root/.aws/credentials", "credentials"))
    expected.add(("/root/.aws", "credentials"))
    add("credentials", "/srv/alice/.git-credentials", "https://u:p@example.com\n")
    add("credentials", "/home/admin/.docker/config.json", '{"auths": {"r.example": {"auth": "dTpw"}}}')
    write(root, "/home/deploy/.docker/config.json", '{"auths": {}, "credsStore": "pass"}')  # nothing stored
    add("credentials", "/home/admin/.npmrc", "//registry.example/:_authToken=abc\n")
    write(root, "/home/deploy/.npmrc", "registry=https://registry.example/\n")  # no token
    add("credentials", "/root/.netrc", "machine m login l password p\n", 0o600)
    add("credentials", "/home/admin/.kube/config", "users: []\n")
    # user_caches
    add("user_caches", "/root/.cache/pip/http/a/b", "CACHE")
    expected.discard(("/root/.cache/pip/http/a/b", "user_caches"))
    expected.add(("/root/.cache/pip", "user_caches"))
    add("user_caches", "/home/admin/.npm/_cacache/index", "CACHE")
    expected.discard(("/home/admin/.npm/_cacache/index", "user_caches"))
    expected.add(("/home/admin/.npm", "user_caches"))
    # network_config
    add("network_config", "/etc/network/interfaces.d/50-cloud-init", "auto eth0\niface eth0 inet dhcp\n")
    add("network_config", "/etc/netplan/50-cloud-init.yaml", "network: {version: 2}\n")
    add("network_config", "/etc/udev/rules.d/70-persistent-net.rules", 'ATTR{address}=="02:00:00:00:00:01"\n')
    add("network_config", "/etc/sysconfig/network-scripts/ifcfg-eth0", "DEVICE=eth0\nHWADDR=02:00:00:00:00:01\n")
    write(root, "/etc/sysconfig/network-scripts/ifcfg-eth1", "DEVICE=eth1\nBOOTPROTO=dhcp\n")  # no MAC: fine
    # hostname
    add("hostname", "/etc/hostname", "ip-10-0-0-5\n")
    # crash_data, cron_spool, mail_spool
    add("crash_data", "/var/crash/_usr_bin_app.0.crash", "ProblemType: Crash\n")
    add("crash_data", "/var/lib/systemd/coredump/core.app.0.zst", "CORE")
    add("cron_spool", "/var/spool/cron/crontabs/admin", "* * * * * /bin/true\n")
    add("cron_spool", "/var/spool/cron/root", "* * * * * /bin/true\n")
    add("cron_spool", "/var/spool/at/a0001", "#!/bin/sh\n")
    add("mail_spool", "/var/mail/admin", "From x\n")
    # passwd_backups, backup_files
    add("passwd_backups", "/etc/passwd-", PASSWD)
    add("passwd_backups", "/etc/shadow-", SHADOW, 0o640)
    add("backup_files", "/etc/ssh/sshd_config.bak", "PermitRootLogin yes\n")
    add("backup_files", "/etc/nginx/nginx.conf~", "x\n")
    add("backup_files", "/var/backups/group.bak", "x\n")
    add("backup_files", "/root/notes.orig", "x\n")
    # secrets: an application's own files (action review)
    add("secrets", "/etc/default/myapp", "# myapp\nAPI_TOKEN=0123456789abcdef\n", 0o640)
    add("secrets", "/opt/myapp/.env", "DB_PASSWORD=hunter2hunter2\n", 0o600)
    add("secrets", "/srv/tls/server.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", 0o600)
    return expected


def run_scan(root, **kwargs):
    kwargs.setdefault("bake_authorized_key", BAKE_KEY)
    kwargs.setdefault("bake_paths", ["/root/bake-temp-key"])
    return hygiene.scan(str(root), **kwargs)


def found(result):
    return {(f["path"], f["category"]) for f in result["findings"]}


def test_clean_tree_has_no_findings(tmp_path):
    base_tree(tmp_path)
    result = run_scan(tmp_path)
    assert result["findings"] == []
    assert result["clean"] is True
    assert set(result["counts"]) == set(hygiene.CATEGORY_NAMES)
    assert not any(result["counts"].values())


def test_every_planted_item_is_found_and_nothing_else(tmp_path):
    expected = plant(tmp_path)
    result = run_scan(tmp_path)
    assert found(result) - expected == set(), "reported but not planted"
    assert expected - found(result) == set(), "planted but not reported"
    assert result["clean"] is False
    for category in hygiene.CATEGORY_NAMES:
        assert result["counts"][category] == len([e for e in expected if e[1] == category]), category
        assert result["counts"][category] > 0, f"the fixture plants nothing for {category}"


def test_findings_carry_reason_action_and_host_path(tmp_path):
    plant(tmp_path)
    result = run_scan(tmp_path)
    by_path = {(f["path"], f["category"]): f for f in result["findings"]}
    machine_id = by_path[("/etc/machine-id", "machine_id")]
    assert machine_id["action"] == "truncate"
    assert machine_id["root_path"] == str(tmp_path / "etc/machine-id")
    assert by_path[("/var/log/syslog", "logs")]["action"] == "truncate"
    assert by_path[("/var/log/syslog.1", "logs")]["action"] == "remove"
    assert by_path[("/var/log/auth.log.2.gz", "logs")]["action"] == "remove"
    assert by_path[("/var/log/messages-20240101", "logs")]["action"] == "remove"
    assert by_path[("/etc/shadow", "root_password")]["action"] == "lock_password"
    assert by_path[("/home/admin/.ssh/authorized_keys", "bake_traces")]["action"] == "remove"
    assert all(f["reason"] for f in result["findings"])
    assert all(f["action"] in hygiene.ACTIONS for f in result["findings"])
    # report order follows the category table
    order = [hygiene.CATEGORY_NAMES.index(f["category"]) for f in result["findings"]]
    assert order == sorted(order)


@pytest.mark.parametrize("category", hygiene.CATEGORY_NAMES)
def test_a_category_switched_off_is_left_alone(tmp_path, category):
    expected = plant(tmp_path)
    others = [c for c in hygiene.CATEGORY_NAMES if c != category]
    result = run_scan(tmp_path, categories=others)
    assert category not in result["counts"]
    assert all(f["category"] != category for f in result["findings"])
    wanted = {e for e in expected if e[1] != category}
    if category == "bake_traces":
        # without bake_traces, the file holding the bake key is an ordinary authorized_keys finding
        wanted.add(("/home/admin/.ssh/authorized_keys", "authorized_keys"))
    # what the switched-off category would find is left alone on purpose: not a secrets finding either
    assert found(result) == wanted
    only = run_scan(tmp_path, categories=[category])
    assert {f["category"] for f in only["findings"]} == {category}


def test_keep_authorized_keys_users(tmp_path):
    plant(tmp_path)
    result = run_scan(tmp_path, keep_authorized_keys=["deploy", "admin"])
    paths = found(result)
    assert ("/home/deploy/.ssh/authorized_keys", "authorized_keys") not in paths
    assert ("/root/.ssh/authorized_keys2", "authorized_keys") in paths
    # the bake key is still a trace in a kept user's file, and only its lines go
    traces = {f["path"]: f for f in result["findings"] if f["category"] == "bake_traces"}
    assert traces["/home/admin/.ssh/authorized_keys"]["action"] == "remove_key"


def test_bake_key_matched_by_key_not_by_line(tmp_path):
    base_tree(tmp_path)
    bare = BAKE_KEY.split()[1]
    write(tmp_path, "/srv/alice/.ssh/authorized_keys", f"ssh-ed25519 {bare} other-comment\n")
    result = run_scan(tmp_path, categories=["bake_traces"])
    assert found(result) == {("/srv/alice/.ssh/authorized_keys", "bake_traces")}
    # without the bake key option, the same file is an ordinary authorized_keys finding
    result = run_scan(tmp_path, bake_authorized_key=None)
    assert found(result) == {("/srv/alice/.ssh/authorized_keys", "authorized_keys")}


def test_without_authorized_keys_category_bake_key_lines_only(tmp_path):
    plant(tmp_path)
    result = run_scan(tmp_path, categories=["bake_traces"])
    traces = {f["path"]: f["action"] for f in result["findings"]}
    assert traces["/home/admin/.ssh/authorized_keys"] == "remove_key"


def test_exclude_paths_and_patterns(tmp_path):
    plant(tmp_path)
    result = run_scan(tmp_path, exclude=["/var/log", "/tmp/*", "/etc/ssh/ssh_host_rsa_key"])
    paths = {p for p, _c in found(result)}
    assert not any(p.startswith(("/var/log/", "/tmp/")) for p in paths)
    assert "/etc/ssh/ssh_host_rsa_key" not in paths
    assert "/etc/ssh/ssh_host_rsa_key.pub" in paths
    assert "/var/tmp/.hidden-download" in paths


def test_machine_id_states(tmp_path):
    base_tree(tmp_path)
    assert run_scan(tmp_path, categories=["machine_id"])["clean"]
    write(tmp_path, "/etc/machine-id", "uninitialized\n")
    assert run_scan(tmp_path, categories=["machine_id"])["clean"]
    # a relative link to /etc/machine-id is fine too
    os.unlink(tmp_path / "var/lib/dbus/machine-id")
    os.symlink("../../../etc/machine-id", tmp_path / "var/lib/dbus/machine-id")
    assert run_scan(tmp_path, categories=["machine_id"])["clean"]
    os.unlink(tmp_path / "var/lib/dbus/machine-id")
    os.symlink("/elsewhere", tmp_path / "var/lib/dbus/machine-id")
    assert found(run_scan(tmp_path, categories=["machine_id"])) == {("/var/lib/dbus/machine-id", "machine_id")}


def test_root_password_states(tmp_path):
    base_tree(tmp_path)
    for field, dirty in (("*", False), ("!", False), ("!$6$x$y", False), ("", True), ("$6$x$y", True)):
        write(tmp_path, "/etc/shadow", f"root:{field}:19700:0:99999:7:::\n")
        assert run_scan(tmp_path, categories=["root_password"])["clean"] is (not dirty), field


def test_symlinks_are_never_followed_out_of_root(tmp_path):
    outside = tmp_path / "host"
    root = tmp_path / "image"
    # secrets on the "host" that a naive scanner would report through links in the image
    write(outside, "/home/victim/.bash_history", "host history\n")
    write(outside, "/etc/ssh/ssh_host_rsa_key", "HOST KEY\n")
    write(outside, "/var/log/host.log", "host log\n")
    base_tree(root)
    # absolute links resolve inside the image, relative ones are clamped at its root
    os.symlink(str(outside / "home/victim"), root / "home/escape")
    write(root, "/etc/passwd", PASSWD + f"victim:x:1003:1003::{outside}/home/victim:/bin/bash\n"
          + "climber:x:1004:1004::/../../../../../..%s/home/victim:/bin/bash\n" % outside)
    os.symlink("../../../../../../../../../../" + str(outside).lstrip("/") + "/var/log",
               root / "var/log/hostlogs")
    os.rename(root / "etc/ssh", root / "etc/ssh.real")
    os.symlink(str(outside / "etc/ssh"), root / "etc/ssh")
    result = run_scan(root)
    assert result["findings"] == [], result["findings"]
    assert all(f["root_path"].startswith(str(root)) for f in result["findings"])


def test_links_inside_root_are_followed_and_reported_canonically(tmp_path):
    base_tree(tmp_path)
    # /home -> /data/home (absolute link, resolved inside the image)
    os.makedirs(tmp_path / "data")
    os.rename(tmp_path / "home", tmp_path / "data/home")
    os.symlink("/data/home", tmp_path / "home")
    write(tmp_path, "/data/home/admin/.bash_history", "ls\n")
    # a history file that is itself a link: reported as the link, never read through
    os.symlink("/etc/shadow", tmp_path / "root/.bash_history")
    result = run_scan(tmp_path, categories=["shell_history"])
    assert found(result) == {("/data/home/admin/.bash_history", "shell_history"),
                             ("/root/.bash_history", "shell_history")}
    for finding in result["findings"]:
        assert finding["root_path"] == str(tmp_path) + finding["path"]
        assert not os.path.islink(os.path.dirname(finding["root_path"]))


def test_link_loops_do_not_hang(tmp_path):
    base_tree(tmp_path)
    os.symlink("/loop/b", tmp_path / "loopa")
    os.makedirs(tmp_path / "loop")
    os.symlink("/loopa", tmp_path / "loop/b")
    write(tmp_path, "/etc/passwd", PASSWD + "looper:x:1005:1005::/loopa/x:/bin/sh\n")
    assert run_scan(tmp_path)["clean"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_run_is_not_scanned_when_it_is_a_mount_point(tmp_path):
    base_tree(tmp_path)
    write(tmp_path, "/run/cloud-init/instance-data.json", "{}")
    write(tmp_path, "/run/utmp", "UTMP")
    assert found(run_scan(tmp_path, categories=["cloud_init_state", "login_records"])) == {
        ("/run/cloud-init/instance-data.json", "cloud_init_state"), ("/run/utmp", "login_records")}
    subprocess.run(["mount", "-t", "tmpfs", "bakery-test-run", str(tmp_path / "run")], check=True)
    try:
        write(tmp_path, "/run/cloud-init/instance-data.json", "{}")
        write(tmp_path, "/run/utmp", "UTMP")
        assert run_scan(tmp_path, categories=["cloud_init_state", "login_records"])["clean"]
    finally:
        subprocess.run(["umount", str(tmp_path / "run")], check=True)


def test_scan_reads_only(tmp_path):
    plant(tmp_path)

    def snapshot():
        state = {}
        for dirpath, dirnames, filenames in os.walk(tmp_path):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                content = None
                if stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as handle:
                        content = handle.read()
                state[path] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
        return state

    before = snapshot()
    run_scan(tmp_path)
    assert snapshot() == before


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"categories": ["ssh_host_keys", "nonsense"]}, "categories: unknown category 'nonsense'"),
        ({"categories": []}, "categories: select at least one category"),
        ({"keep_authorized_keys": ["a:b"]}, "keep_authorized_keys: must be user names"),
        ({"exclude": ["var/log"]}, "exclude: must be an absolute path inside the image"),
        ({"bake_authorized_key": "not a key"}, "bake_authorized_key: must be a public key line"),
        ({"bake_paths": ["relative/key"]}, "bake_paths: must be an absolute path inside the image"),
        ({"bake_paths": ["/"]}, "bake_paths: '/' resolves to '/', the whole image"),
    ],
)
def test_bad_inputs_name_the_option(tmp_path, kwargs, message):
    base_tree(tmp_path)
    with pytest.raises(BakeryError, match=re.escape(message)):
        run_scan(tmp_path, **kwargs)


def test_root_must_be_an_existing_directory(tmp_path):
    with pytest.raises(BakeryError, match="root: .* does not exist or is not a directory"):
        hygiene.scan(str(tmp_path / "missing"))
    with pytest.raises(BakeryError, match="root: must be an absolute path"):
        hygiene.scan("relative/root")


def test_key_blob():
    assert hygiene.key_blob(BAKE_KEY) == BAKE_KEY.split()[1]
    assert hygiene.key_blob('from="10.0.0.1",no-pty ' + BAKE_KEY) == BAKE_KEY.split()[1]
    assert hygiene.key_blob("ecdsa-sha2-nistp256 AAAAE2VjZHNh= c") == "AAAAE2VjZHNh="
    assert hygiene.key_blob("# comment") == ""
    assert hygiene.key_blob("ssh-rsa not*base64") == ""


def test_category_table_documents_every_category():
    for name, entry in hygiene.CATEGORIES.items():
        assert entry["finds"].strip() and entry["why"].strip(), name
        assert hasattr(hygiene.Scanner, name), name


def test_summary_names_counts(tmp_path):
    plant(tmp_path)
    text = hygiene.summary(run_scan(tmp_path, categories=["ssh_host_keys", "machine_id"]))
    assert text.startswith("11 findings under ")
    assert "ssh_host_keys (7)" in text and "machine_id (4)" in text


# --- the typed request ------------------------------------------------------------------------------

def test_build_request_checks_every_option_once_and_is_frozen(tmp_path):
    import dataclasses
    params = {name: spec.get("default") for name, spec in hygiene.ARGUMENT_SPEC.items()}
    params.update(root=str(tmp_path), categories=["machine_id", "all"], exclude=["/srv/data/"],
                  defer=["logs", "ssh_host_keys"], cloud_init_clean=False, fail_on_findings=True)
    request = hygiene.build_request(params, "/tmp/ansible_x_payload_y")
    assert request.root == str(tmp_path)
    assert request.options.root.root == os.path.realpath(str(tmp_path))
    assert request.options.categories == list(hygiene.CATEGORY_NAMES)
    assert request.options.exclude == ["/srv/data", "/tmp/ansible_x_payload_y"]
    assert request.defer == ("ssh_host_keys", "logs")  # table order
    assert (request.cloud_init_clean, request.fail_on_findings) == (False, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.defer = ()  # type: ignore[misc]


@pytest.mark.parametrize("override, message", [
    ({"categories": ["nope"]}, "categories: unknown category 'nope'"),
    ({"exclude": ["/"]}, "exclude: '/' resolves to '/'"),
    ({"defer": ["nope"]}, "categories: unknown category 'nope'"),
    ({"defer": "logs"}, "defer: must be a list, got 'logs'"),
    ({"content_max_files": 0}, "content_max_files: must be an integer from 1 to 1000000, got 0"),
    ({"root": "relative"}, "root: must be an absolute path, got 'relative'"),
])
def test_build_request_refuses_naming_the_option(tmp_path, override, message):
    params = dict({"root": str(tmp_path)}, **override)
    with pytest.raises(BakeryError) as caught:
        hygiene.build_request(params)
    assert caught.value.msg.startswith(message)


def test_build_request_own_payload_leaves_a_bad_exclude_to_its_rule(tmp_path):
    with pytest.raises(BakeryError, match=r"^exclude: must be a list, got '/srv'"):
        hygiene.build_request({"root": str(tmp_path), "exclude": "/srv"}, "/tmp/ansible_x_payload_y")
