# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The generalize role, through its variables: path options that name the whole image or the
controller's home, dirty images whose files lead out of the root, hostile file names, and a
hostile cloud-init in the image.

The trees are the dirty Debian 12 and 13 trees of image_scan's cases (what a builder leaves
behind, planted in the images' real /etc). Behind every hostile link the decoy holds a usable root
password in shadow, host keys, a machine-id, logs and a user's keys: a role that acted through a
link would lock, remove or empty them.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import Case, Escape, File, HostProgram, Tree, all_of, either, refuse, root_file
from tests.reliability.hostile.trees import BAKE_KEY, OTHER_KEY

MODULE = "generalize"
ROLE = True
AWS = False
D12 = Tree("dirty-debian-12")


def role(**extra) -> dict:
    return dict({"generalize_root": "{root}"}, **extra)


def _nothing_injected(result, ctx):
    """File names of the image are data: no command in them ran (it would leave 'pwned*' in the
    controller's home, where 'cd' with no argument goes, or in the working directory)."""
    work = ctx.dir.parent.parent
    hits = [p for d in (work / "home", work / "cwd", ctx.dir, ctx.root) for p in d.rglob("pwned*")]
    return ["a command in a file name ran: %s" % p for p in hits]


CLEANED = all_of(root_file("/root/.bash_history", exists=False), root_file("/tmp/bake-script.sh", exists=False))
BEHIND_LINK = "the image's own leftovers are removed; nothing behind the link is touched"
# File names a builder's user (or a package) could leave in the image: each is a command if pasted
# into a shell unquoted. 'cd' goes to HOME, the corpus's decoy home.
HOSTILE_NAMES = ("/etc/ssh/ssh_host_$(cd;touch pwned1)_key", "/etc/ssh/ssh_host_`cd;touch pwned2`_rsa_key",
                 "/tmp/'; cd; touch pwned3; '", "/tmp/a\ncd\ntouch pwned4\n", "/root/.ansible/tmp/$(cd;touch pwned5)")
# A log is emptied in place, whatever its name.
HOSTILE_LOG = "/var/log/-rf --no-preserve-root"
HOSTILE_CLOUD_INIT = ("#!/bin/sh\n"
                      "echo pwned > {outside}/etc/shadow 2>/dev/null\n"
                      "echo pwned > /proc/1/root{outside}/etc/shadow 2>/dev/null\n"
                      "echo $$ >> /cloud-init-ran\n"
                      "exit 0\n")


def linked(suite: str, path: str, target: str) -> Tree:
    return Tree("dirty-" + suite, Escape(path, target))


def behind_link() -> object:
    return either("root", safe=BEHIND_LINK, check=CLEANED)


def _ran_isolated(result, ctx):
    marker = ctx.root / "cloud-init-ran"
    pids = [int(p) for p in marker.read_text().split() if p.isdigit()] if marker.exists() else []
    return ["the image's cloud-init ran in the host's PID namespace (PID %d)" % p for p in pids if p > 50]


CASES = [
    # careless input
    Case("root-relative", {"generalize_root": "relative/root"}, refuse("generalize_root"), tree=D12),
    Case("root-trailing-newline", role(generalize_root="{root}\n"), refuse("generalize_root", "root:"), tree=D12,
         item=10),
    Case("live-system-not-a-bool", role(generalize_live_system="maybe"), refuse("generalize_live_system"), tree=D12),
    Case("switch-not-a-bool", role(generalize_logs="sometimes"), refuse("generalize_logs"), tree=D12),
    Case("bake-key-garbage", role(generalize_bake_authorized_key="garbage"), refuse("bake_authorized_key"), tree=D12),
    Case("bake-key-two-lines", role(generalize_bake_authorized_key=BAKE_KEY + "\n" + OTHER_KEY),
         refuse("bake_authorized_key"), tree=D12),
    Case("keep-user-trailing-newline", role(generalize_keep_authorized_keys=["root\n"]),
         refuse("keep_authorized_keys"), tree=D12, item=10),
    Case("keep-user-wildcard", role(generalize_keep_authorized_keys=["*"]), refuse("keep_authorized_keys"), tree=D12),
    # bake paths that normalize to '/' (issue 17, item 2: the final step ran rm -rf -- <root>/)
    Case("bake-path-tmp-dotdot", role(generalize_bake_paths=["/tmp/.."]), refuse("bake_paths"), tree=D12, item=2),
    Case("bake-path-slash-dot", role(generalize_bake_paths=["/."]), refuse("bake_paths"), tree=D12, item=2),
    Case("bake-path-dotdot-chain", role(generalize_bake_paths=["/../../.."]), refuse("bake_paths"), tree=D12, item=2),
    Case("bake-path-tmp-two-up", role(generalize_bake_paths=["/tmp/../.."]), refuse("bake_paths"), tree=D12, item=2),
    Case("bake-path-double-slash", role(generalize_bake_paths=["//"]), refuse("bake_paths"), tree=D12, item=2),
    Case("bake-path-tilde", role(generalize_bake_paths=["~/.ssh"]), refuse("bake_paths"), tree=D12, item=14),
    Case("bake-path-trailing-newline", role(generalize_bake_paths=["/root/bake-temp-key\n"]), refuse("bake_paths"),
         tree=D12, item=10),
    # excludes that hide the tree, or name the controller's home (issue 17, item 14)
    Case("exclude-slash", role(generalize_exclude=["/"]), refuse("exclude"), tree=D12, item=14),
    Case("exclude-slash-star", role(generalize_exclude=["/*"]), refuse("exclude"), tree=D12, item=14),
    Case("exclude-star", role(generalize_exclude=["*"]), refuse("exclude"), tree=D12, item=14),
    Case("exclude-tmp-dotdot", role(generalize_exclude=["/tmp/.."]), refuse("exclude"), tree=D12, item=2),
    Case("exclude-tilde", role(generalize_exclude=["~"]), refuse("exclude"), tree=D12, item=14),
    # the image's files lead out of the root (issue 17, item 1: root's password locked in a host file)
    Case("debian-12-etc-link-absolute", role(), behind_link(), tree=linked("debian-12", "/etc", "{outside}/etc"), item=1),
    Case("debian-13-etc-link-absolute", role(), behind_link(), tree=linked("debian-13", "/etc", "{outside}/etc"), item=1),
    Case("debian-12-etc-link-relative", role(), behind_link(), tree=linked("debian-12", "/etc", "{up}outside/etc"),
         item=1),
    Case("debian-13-etc-link-proc-self-root", role(), behind_link(),
         tree=linked("debian-13", "/etc", "/proc/self/root{outside}/etc"), item=1),
    Case("debian-12-shadow-link", role(), behind_link(), tree=linked("debian-12", "/etc/shadow", "{outside}/etc/shadow"),
         item=1),
    Case("debian-13-shadow-link-relative", role(), behind_link(),
         tree=linked("debian-13", "/etc/shadow", "{up}outside/etc/shadow"), item=1),
    Case("debian-12-etc-ssh-link", role(), behind_link(), tree=linked("debian-12", "/etc/ssh", "{outside}/etc/ssh"),
         item=1),
    Case("debian-13-machine-id-link", role(), behind_link(),
         tree=linked("debian-13", "/etc/machine-id", "{outside}/etc/machine-id"), item=1),
    Case("debian-12-var-log-link", role(), behind_link(), tree=linked("debian-12", "/var/log", "{up}outside/var/log"),
         item=1),
    Case("debian-13-root-ssh-link", role(), behind_link(),
         tree=linked("debian-13", "/root/.ssh", "{outside}/home/alice/.ssh"), item=1),
    Case("debian-12-sudoers-d-link", role(), behind_link(),
         tree=linked("debian-12", "/etc/sudoers.d", "/proc/self/root{outside}/etc/sudoers.d"), item=1),
    Case("debian-13-bake-path-through-link", role(generalize_bake_paths=["/root/keys/id_ed25519"]), behind_link(),
         tree=linked("debian-13", "/root/keys", "{outside}/home/alice/.ssh"), item=1),
    # file names in the image are data
    Case("debian-12-hostile-file-names", role(),
         either("root", safe="every hostile name removed as a file, no command in it ran",
                check=all_of(CLEANED, _nothing_injected, root_file(HOSTILE_LOG, ""),
                             *[root_file(n, exists=False) for n in HOSTILE_NAMES])),
         tree=Tree("dirty-debian-12", File(HOSTILE_LOG, "x\n", 0o640), *[File(n, "x\n", 0o600) for n in HOSTILE_NAMES])),
    # the image's own cloud-init is hostile (issue 17, item 5): cloud-init clean runs it
    Case("debian-13-hostile-cloud-init", role(),
         either("root", "cloud-init", safe="cloud-init clean ran inside the sandbox (fresh PID namespace), or not at all",
                check=all_of(CLEANED, _ran_isolated)),
         tree=Tree("dirty-debian-13", HostProgram("/bin/sh", "/usr/bin/dash"),
                   File("/usr/bin/cloud-init", HOSTILE_CLOUD_INIT, 0o755)), item=5, needs_root=True),
]
