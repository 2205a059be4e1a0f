# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hygiene cleaner, the content rules, and the properties that must hold on hostile roots.

Hostile roots: a dirty image whose directories are links out of it (absolute, a ../ chain,
/proc/self/root/...) beside a dirty decoy tree that the host would reach through those links. After
scan and clean, the decoy is byte-, inode- and mode-identical, and the image's own files (where the
links resolve inside the root) are clean. The fixture is tests/fixtures/dirty_root.py, the same
leaks every tier plants.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.bakery.ami.plugins.module_utils import _hygiene as hygiene
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

from tests.fixtures import dirty_root

REPO = Path(__file__).resolve().parents[4]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the fixture sets owners (chown) and mounts need root")


def tree_state(top: Path) -> dict:
    """Every entry under top: type and mode, inode, owner, size, mtime, content hash or link target."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    extra = hashlib.sha256(handle.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            else:
                extra = None
            state[os.path.relpath(path, top)] = (st.st_mode, st.st_ino, st.st_uid, st.st_gid, st.st_size,
                                                 st.st_mtime_ns, extra)
    return state


def patterns_for(paths):
    """Each path, and the same path below any directory (canonical paths under a moved tree)."""
    return list(paths) + ["/*" + p for p in paths]


def clean_planted(root, planted, **kwargs):
    kwargs.setdefault("bake_paths", planted.bake_paths)
    kwargs.setdefault("remove_secret_files", patterns_for(planted.remove_secret_files))
    return hygiene.clean(str(root), **kwargs)


# --- hostile roots ---------------------------------------------------------------------------------

LINKED = ["/etc", "/etc/ssh", "/etc/default", "/root", "/root/.ssh", "/home", "/home/alice/.ssh", "/var/log",
          "/var/lib/cloud", "/var/spool/cron/crontabs", "/var/mail", "/var/tmp", "/opt", "/srv", "/var/crash"]
KINDS = ["absolute", "dotdot", "proc_self_root"]


def link_out(root: Path, decoy: Path, directory: str, kind: str) -> Path:
    """Move the image's directory to where the link will resolve inside the root, and put a link
    in its place that the host would follow to the decoy's directory of the same name."""
    target_host = str(decoy) + directory
    if kind == "absolute":
        target, resolved = target_host, target_host
    elif kind == "dotdot":
        target = "../" * (directory.count("/") + 12) + target_host.lstrip("/")
        resolved = target_host
    else:
        target = "/proc/self/root" + target_host
        resolved = target
    source = root / directory.lstrip("/")
    inside = root / resolved.lstrip("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    if source.exists():
        shutil.move(str(source), str(inside))
    else:
        inside.mkdir(parents=True)
    os.symlink(target, source)
    return inside


@needs_root
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("directory", LINKED)
def test_hostile_root_leaves_the_decoy_identical(tmp_path, directory, kind):
    decoy, root = tmp_path / "decoy", tmp_path / "image"
    dirty_root.plant(decoy)
    planted = dirty_root.plant(root)
    inside = link_out(root, decoy, directory, kind)
    before = tree_state(decoy)
    assert not hygiene.scan(str(root), bake_paths=planted.bake_paths)["clean"]
    result = clean_planted(root, planted)
    assert result["changed"] is True
    assert tree_state(decoy) == before, "the decoy outside the root changed"
    # every action and finding is a path inside the image, and the image's own copy was cleaned
    assert all(not f["root_path"].startswith(str(decoy)) for f in result["findings"])
    after = hygiene.scan(str(root), bake_paths=planted.bake_paths, remove_secret_files=patterns_for(
        planted.remove_secret_files))
    assert after["findings"] == [], after["findings"]
    for leak in planted.must_vanish():
        if leak.path.startswith(directory + "/"):
            moved = inside / leak.path[len(directory) + 1:]
            assert not moved.exists() or leak.after in ("emptied", "reset", "stripped"), leak
    assert tree_state(decoy) == before


@needs_root
def test_hostile_links_at_every_depth_at_once(tmp_path):
    decoy, root = tmp_path / "decoy", tmp_path / "image"
    dirty_root.plant(decoy)
    planted = dirty_root.plant(root)
    for directory, kind in (("/etc/ssh", "absolute"), ("/root/.ssh", "dotdot"), ("/var/log", "proc_self_root"),
                            ("/home/alice/.ssh", "proc_self_root"), ("/var/lib/cloud", "dotdot")):
        link_out(root, decoy, directory, kind)
    before = tree_state(decoy)
    clean_planted(root, planted)
    assert tree_state(decoy) == before


@needs_root
def test_a_naive_cleaner_would_be_caught(tmp_path, monkeypatch):
    """The property above fails when the cleaner writes through a host path (the old role's bug)."""
    decoy, root = tmp_path / "decoy", tmp_path / "image"
    dirty_root.plant(decoy)
    planted = dirty_root.plant(root)
    link_out(root, decoy, "/etc", "absolute")
    before = tree_state(decoy)

    def naive_write(self, path, data, mode=None, make_parents=True):
        # the old role: the file's usual name under the root, opened as a plain host path
        literal = "/etc/" + path.rsplit("/etc/", 1)[1]
        with open(self.root + literal, "wb") as handle:
            handle.write(data)
        return path

    monkeypatch.setattr(hygiene.ImageRoot, "write_bytes", naive_write)
    try:
        clean_planted(root, planted)
    except hygiene.HygieneError:
        pass  # the cleaner's own final scan may notice too (it depends on the filesystem under the test); the decoy tells
    assert tree_state(decoy) != before


# --- the cleaner ------------------------------------------------------------------------------------

@needs_root
def test_clean_removes_every_planted_secret_and_a_rerun_changes_nothing(tmp_path):
    planted = dirty_root.plant(tmp_path)
    result = clean_planted(tmp_path, planted)
    assert result["changed"] and result["remaining"] == [] and result["failed"] == []
    for leak in planted.must_vanish():
        hits = subprocess.run(["grep", "-rlaF", "--", leak.secret, str(tmp_path)], capture_output=True, text=True,
                              check=False)
        assert hits.stdout == "", (leak, hits.stdout)
    locked = [leak for leak in planted.leaks if leak.after == "locked"][0]
    hits = subprocess.run(["grep", "-rlaF", "--", locked.secret, str(tmp_path)], capture_output=True, text=True,
                          check=False)
    assert hits.stdout.split() == [str(tmp_path / "etc/shadow")]
    assert re.search(r"(?m)^root:!\$6\$" + re.escape(locked.secret), (tmp_path / "etc/shadow").read_text())
    assert (tmp_path / "etc/hostname").read_text() == "localhost\n"
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert stat.S_IMODE(os.stat(tmp_path / "etc/machine-id").st_mode) == 0o444
    assert stat.S_IMODE(os.stat(tmp_path / "var/log/auth.log").st_mode) == 0o640
    again = clean_planted(tmp_path, planted)
    assert again["changed"] is False and again["actions"] == []


@needs_root
def test_check_mode_changes_nothing_and_says_what_it_would_do(tmp_path):
    planted = dirty_root.plant(tmp_path)
    before = tree_state(tmp_path)
    result = clean_planted(tmp_path, planted, check_mode=True)
    assert tree_state(tmp_path) == before
    assert result["changed"] is True and result["check_mode"] is True
    planned = {(a["path"], a["category"]) for a in result["actions"]}
    assert planted.expected() <= planned | {("/etc/shadow", "root_password")}
    shadow = [d for d in result["diff"] if d.get("before_header") == "/etc/shadow"][0]
    locked = [leak for leak in planted.leaks if leak.after == "locked"][0]
    assert shadow["after"].startswith("root:!<hash>:") and locked.secret not in str(result["diff"])
    hostname = [d for d in result["diff"] if d.get("before_header") == "/etc/hostname"][0]
    assert hostname["after"] == "localhost\n"


@needs_root
def test_secrets_need_a_decision_before_anything_changes(tmp_path):
    planted = dirty_root.plant(tmp_path)
    before = tree_state(tmp_path)
    with pytest.raises(hygiene.HygieneError) as raised:
        hygiene.clean(str(tmp_path), bake_paths=planted.bake_paths)
    assert tree_state(tmp_path) == before
    message = raised.value.msg
    assert message.startswith("secrets: 5 file(s) hold secrets and are not the builder's own")
    for path in planted.remove_secret_files:
        assert path in message
    assert "keep_secret_files" in message and "remove_secret_files" in message
    assert not any(leak.secret in message for leak in planted.leaks)
    assert raised.value.result["changed"] is False
    assert {f["path"] for f in raised.value.result["review"]} == set(planted.remove_secret_files)


@needs_root
def test_kept_secret_files_ship_and_are_listed(tmp_path):
    planted = dirty_root.plant(tmp_path)
    keep = ["/opt/bakery-app/.env"]
    remove = [p for p in planted.remove_secret_files if p not in keep]
    result = hygiene.clean(str(tmp_path), bake_paths=planted.bake_paths, keep_secret_files=keep,
                           remove_secret_files=remove)
    assert (tmp_path / "opt/bakery-app/.env").exists()
    assert [k["path"] for k in result["kept_secret_files"]] == keep
    assert hygiene.scan(str(tmp_path), keep_secret_files=keep)["clean"]


@needs_root
def test_a_removal_that_would_cross_a_mount_fails_and_says_so(tmp_path):
    dirty_root.plant(tmp_path)
    mount_point = tmp_path / "tmp/mounted"
    mount_point.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "bakery-test", str(mount_point)], check=True)
    try:
        (mount_point / "file").write_text("on another filesystem\n")
        with pytest.raises(hygiene.HygieneError) as raised:
            hygiene.clean(str(tmp_path), categories=["temp_files"])
        assert "/tmp/mounted (remove failed: path: /tmp/mounted is a mount point" in raised.value.msg
        assert (mount_point / "file").read_text() == "on another filesystem\n"
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_deferred_categories_only_apply_to_the_running_system(tmp_path):
    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/ssh_host_rsa_key").write_text("KEY")
    result = hygiene.clean(str(tmp_path), categories=["ssh_host_keys"], defer=["ssh_host_keys"])
    assert result["deferred"] == [] and not (tmp_path / "etc/ssh/ssh_host_rsa_key").exists()


def test_defer_names_categories(tmp_path):
    with pytest.raises(hygiene.HygieneError, match="categories: unknown category 'keys'"):
        hygiene.clean(str(tmp_path), defer=["keys"])


# --- cloud-init clean ---------------------------------------------------------------------------------

def cloud_init_image(root: Path, version: str) -> None:
    for path, text in (("usr/bin/cloud-init", "#!/usr/bin/python3\n"),
                       ("usr/lib/python3/dist-packages/cloudinit/version.py", '__VERSION__ = "%s"\n' % version),
                       ("var/lib/cloud/instances/i-0abc/obj.pkl", "x"),
                       ("var/lib/cloud/seed/nocloud/user-data", "#cloud-config\n"),
                       ("etc/machine-id", "0123456789abcdef0123456789abcdef\n")):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    os.chmod(root / "usr/bin/cloud-init", 0o755)
    os.chmod(root / "etc/machine-id", 0o444)


@pytest.mark.parametrize("version,flags", [
    ("19.3", ["--logs", "--seed"]),
    ("22.2.2", ["--logs", "--seed"]),
    ("22.4.2", ["--logs", "--seed", "--machine-id"]),
    ("23.4", ["--logs", "--seed", "--machine-id", "--configs", "network"]),
    ("25.1.4", ["--logs", "--seed", "--machine-id", "--configs", "network"]),
])
def test_cloud_init_clean_gets_the_flags_of_the_images_version(tmp_path, version, flags):
    cloud_init_image(tmp_path, version)
    options = hygiene.validate(str(tmp_path))
    findings, excluded, scanner = hygiene._collect(options)  # pylint: disable=protected-access
    plan = hygiene.cloud_init_clean_plan(scanner, findings, excluded, True)
    assert plan["run"] and plan["argv"] == ["/usr/bin/cloud-init", "clean"] + flags
    assert plan["version"] == ".".join(version.split(".")[:2])


def test_cloud_init_clean_keeps_network_when_cloud_init_renders_none(tmp_path):
    cloud_init_image(tmp_path, "25.1")
    (tmp_path / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    (tmp_path / "etc/cloud/cloud.cfg.d/99-disable-network-config.cfg").write_text("network: {config: disabled}\n")
    (tmp_path / "etc/netplan").mkdir(parents=True)
    (tmp_path / "etc/netplan/50-cloud-init.yaml").write_text("network: {version: 2}\n")
    options = hygiene.validate(str(tmp_path))
    findings, excluded, scanner = hygiene._collect(options)  # pylint: disable=protected-access
    assert "--configs" not in hygiene.cloud_init_clean_plan(scanner, findings, excluded, True)["argv"]
    assert ("/etc/netplan/50-cloud-init.yaml", "network_config") not in {(f.path, f.category) for f in findings}


@pytest.mark.parametrize("text,disabled", [
    ("network: {config: disabled}\n", True),
    ("network:\n  config: disabled\n", True),
    ("network:\n  version: 2\n  config: 'disabled'\n", True),
    ("network:\n  config: {version: 2}\n", False),
    ("# network: {config: disabled}\n", False),
    ("datasource_list: [Ec2]\n", False),
])
def test_network_disabled_reads_cloud_init_system_config(tmp_path, text, disabled):
    (tmp_path / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    (tmp_path / "etc/cloud/cloud.cfg.d/90-x.cfg").write_text(text)
    scanner = hygiene.Scanner(hygiene.validate(str(tmp_path)))
    assert scanner.network_disabled() is disabled


@pytest.mark.parametrize("setup,reason", [
    (lambda r: (r / "var/lib/cloud/scripts/per-boot").mkdir(parents=True) or
     (r / "var/lib/cloud/scripts/per-boot/app.sh").write_text("#!/bin/sh\n"), "/var/lib/cloud/scripts holds files"),
    (lambda r: os.unlink(r / "usr/bin/cloud-init"), "the image has no /usr/bin/cloud-init"),
])
def test_cloud_init_clean_is_skipped_when_it_would_do_harm(tmp_path, setup, reason):
    cloud_init_image(tmp_path, "22.4")
    setup(tmp_path)
    options = hygiene.validate(str(tmp_path))
    findings, excluded, scanner = hygiene._collect(options)  # pylint: disable=protected-access
    plan = hygiene.cloud_init_clean_plan(scanner, findings, excluded, True)
    assert not plan["run"] and plan["reason"].startswith(reason)


def test_cloud_init_clean_is_skipped_when_an_excluded_path_is_one_it_removes(tmp_path):
    cloud_init_image(tmp_path, "22.4")
    options = hygiene.validate(str(tmp_path), exclude=["/var/lib/cloud/instances/i-0abc"])
    findings, excluded, scanner = hygiene._collect(options)  # pylint: disable=protected-access
    plan = hygiene.cloud_init_clean_plan(scanner, findings, excluded, True)
    assert not plan["run"] and "excluded paths that cloud-init clean would remove" in plan["reason"]


def test_cloud_init_clean_runs_sandboxed_and_machine_id_is_put_back(tmp_path, monkeypatch):
    """A root other than / runs the image's cloud-init through the sandbox (unshare, chroot); where
    cloud-init deleted /etc/machine-id (22.4, or no systemd running), an empty one comes back."""
    cloud_init_image(tmp_path, "22.4")
    calls = []

    def fake_run(argv, **kwargs):
        calls.append(argv)
        # what cloud-init 22.4 does with --logs --seed --machine-id
        shutil.rmtree(tmp_path / "var/lib/cloud")
        (tmp_path / "etc/machine-id").unlink()
        return 0, "", ""

    monkeypatch.setattr(hygiene.os, "geteuid", lambda: 0)
    result = hygiene.clean(str(tmp_path), run=fake_run)
    assert len(calls) == 1
    argv = calls[0]
    assert os.path.basename(argv[0]) == "unshare" and "--net" in argv and "--pid" in argv
    assert argv[-5:] == ["/usr/bin/cloud-init", "clean", "--logs", "--seed", "--machine-id"]
    assert str(tmp_path) in argv
    assert result["cloud_init_clean"]["machine_id_restored"] is True
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert stat.S_IMODE(os.stat(tmp_path / "etc/machine-id").st_mode) == 0o444
    assert result["remaining"] == []


def test_a_failed_cloud_init_clean_falls_back_to_file_by_file(tmp_path):
    cloud_init_image(tmp_path, "23.1")
    result = hygiene.clean(str(tmp_path), run=lambda argv, **kwargs: (1, "", "boom"))
    assert result["cloud_init_clean"]["rc"] == 1
    assert "cleaned file by file instead" in result["cloud_init_clean"]["reason"]
    assert not (tmp_path / "var/lib/cloud/instances/i-0abc").exists()
    assert (tmp_path / "etc/machine-id").read_text() == ""


# --- content rules ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,kind", [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n", "private key block"),
    ("x\n-----BEGIN EC PRIVATE KEY-----\n", "private key block (line 2)"),
    ("-----BEGIN ENCRYPTED PRIVATE KEY-----\n", "private key block"),
    ("PuTTY-User-Key-File-3: ssh-ed25519\n", "private key block"),
    ("key=AKIAABCDEFGHIJKLMNOP\nsecret=wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY1\n", "AWS access key ID with its secret"),
    ('{"aws_secret_access_key": "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY1"}', "AWS secret access key"),
    ("url=https://x-access-token:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com\n", "GitHub token"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz\n", "GitHub token"),
    ("CI_TOKEN: glpat-abcdefghij0123456789\n", "GitLab token"),
    ("bot=xoxb-1234567890-abcdefghijkl\n", "Slack token"),
    ("https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnop\n", "Slack webhook"),
    ("API_TOKEN=0123456789abcdef\n", "assignment to API_TOKEN (line 1)"),
    ("export DB_PASSWORD='hunter2hunter2'\n", "assignment to DB_PASSWORD"),
    ("PASSWORD=s3cr3t-value\n", "assignment to PASSWORD"),
    ('Environment="STRIPE_SECRET=sk_live_abc123"\n', "assignment to STRIPE_SECRET"),
    ("Environment=A=1 SENTRY_API_KEY=abcdef123456\n", "assignment to SENTRY_API_KEY"),
])
def test_secret_patterns_find(text, kind):
    reason = hygiene.secret_in(text.encode())
    assert reason is not None and reason.startswith(kind), reason


@pytest.mark.parametrize("text", [
    "# API_TOKEN=0123456789abcdef\n",                       # a comment
    "; PASSWORD=0123456789abcdef\n",
    "API_TOKEN=$API_TOKEN_FROM_VAULT\n",                    # a reference, not a value
    "DB_PASSWORD=${DB_PASSWORD}\n",
    "PASSWORD=changeme\n",                                  # placeholders
    "API_TOKEN=\n",
    "password = hunter2\n",                                 # not an env assignment
    "AKIAABCDEFGHIJKLMNOP with no secret nearby\n",
    "AKIAABCDEFGHIJKLMNOP 0123456789abcdef0123456789abcdef01234567\n",  # a hex digest is no secret key
    "-----BEGIN PUBLIC KEY-----\nMIIB\n",
    "-----BEGIN CERTIFICATE-----\nMIIB\n",
    "ghp_short\n",
])
def test_secret_patterns_do_not_find(text):
    assert hygiene.secret_in(text.encode()) is None


def test_files_a_package_installed_unchanged_are_skipped(tmp_path):
    key = b"-----BEGIN PRIVATE KEY-----\nMIIEexample\n-----END PRIVATE KEY-----\n"
    (tmp_path / "etc/ssl/private").mkdir(parents=True)
    (tmp_path / "etc/ssl/private/example.key").write_bytes(key)
    (tmp_path / "usr/share/doc/pkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/info").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/info/example:amd64.md5sums").write_text("%s  etc/ssl/private/example.key\n"
                                                                      % hashlib.md5(key).hexdigest())
    (tmp_path / "var/lib/dpkg/status").write_text("Package: other\nConffiles:\n /etc/other.conf %s\n"
                                                  % hashlib.md5(b"PASSWORD=from-the-package\n").hexdigest())
    (tmp_path / "etc/other.conf").write_text("PASSWORD=from-the-package\n")
    result = hygiene.scan(str(tmp_path), categories=["secrets"])
    assert result["clean"], result["findings"]
    assert result["content_scan"]["skipped_package_owned"] == 2
    assert result["content_scan"]["package_check"].startswith("dpkg")
    # changed after installation: reported
    (tmp_path / "etc/other.conf").write_text("PASSWORD=set-on-the-builder\n")
    assert [f["path"] for f in hygiene.scan(str(tmp_path), categories=["secrets"])["findings"]] == ["/etc/other.conf"]


def test_rpm_images_say_what_is_not_checked(tmp_path):
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    result = hygiene.scan(str(tmp_path), categories=["secrets"])
    assert result["content_scan"]["package_check"].startswith("none: the rpm database needs librpm")


def test_content_scan_skips_binaries_and_large_files(tmp_path):
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt/blob.bin").write_bytes(b"\0ELF" + b"-----BEGIN PRIVATE KEY-----")
    (tmp_path / "opt/big.env").write_bytes(b"API_TOKEN=0123456789abcdef\n" + b"x" * 4096)
    result = hygiene.scan(str(tmp_path), categories=["secrets"], content_max_file_size=1024)
    assert result["clean"]
    assert result["content_scan"]["skipped_binary"] == 1 and result["content_scan"]["skipped_large"] == 1
    assert hygiene.warnings(result) and "content_max_file_size=1024" in hygiene.warnings(result)[0]


# --- path options -------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", ["/", "/.", "/tmp/..", "/../..", "//", "/*", "/**", "/*/", "/?*", "/[a-z]*",
                                     "/[!.]*", "*", "~", "~/x", "relative", "/etc\n", "/etc\0"])
@pytest.mark.parametrize("option", ["exclude", "keep_secret_files", "remove_secret_files"])
def test_patterns_covering_the_image_or_outside_it_are_refused(tmp_path, option, pattern):
    with pytest.raises(BakeryError) as raised:
        hygiene.scan(str(tmp_path), **{option: [pattern]})
    assert raised.value.msg.startswith(option + ": ")


@pytest.mark.parametrize("pattern", ["/etc/*", "/var/log", "/var/log/app/*.log", "/home/*/.cache", "/opt/../srv",
                                     "/tmp/ansible_*_payload_*"])
def test_accepted_exclusions_never_hide_the_whole_image(tmp_path, pattern):
    """Whatever an accepted exclusion is, some planted leak outside it is still found."""
    planted = dirty_root.plant(tmp_path) if os.geteuid() == 0 else None
    if planted is None:
        pytest.skip("the fixture needs root")
    result = hygiene.scan(str(tmp_path), exclude=[pattern], bake_paths=planted.bake_paths)
    assert len(result["findings"]) > 30


@pytest.mark.parametrize("path", ["/", "/.", "/tmp/..", "/./", "//", "~/key", "key", "/tmp/key\n"])
def test_bake_paths_naming_the_whole_image_or_the_controller_are_refused(tmp_path, path):
    with pytest.raises(BakeryError) as raised:
        hygiene.scan(str(tmp_path), bake_paths=[path])
    assert raised.value.msg.startswith("bake_paths: ")


# --- documentation in step with the table -------------------------------------------------------------

def test_every_category_is_documented_everywhere():
    fragment = (REPO / "plugins/doc_fragments/hygiene.py").read_text()
    spec = yaml.safe_load((REPO / "roles/generalize/meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((REPO / "roles/generalize/defaults/main.yml").read_text())
    role_vars = yaml.safe_load((REPO / "roles/generalize/vars/main.yml").read_text())
    readme = (REPO / "roles/generalize/README.md").read_text()
    assert list(role_vars["__generalize_switches"]) == list(hygiene.CATEGORY_NAMES)
    for name in hygiene.CATEGORY_NAMES:
        assert '"V(%s): ' % name in fragment, name
        assert options["generalize_" + name]["type"] == "bool", name
        assert defaults["generalize_" + name] is True, name
        assert "| `%s` |" % name in readme, name
    for option in hygiene.ARGUMENT_SPEC:
        if option != "root":
            assert "\n  %s:\n" % option in fragment, option
