# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_lock_release: release strings, and image trees whose files lead out of the root.

The trees are the Amazon Linux 2023 fixture, and the /etc of the Debian 12 and 13 images. The
decoy is an Amazon Linux 2023 /etc with its own /etc/dnf/vars/releasever: a module that follows a
link out of the root would read its os-release and rewrite its releasever.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import HUGE, NOT_YAML, Case, Escape, File, Link, Tree, accept, all_of, either, \
    refuse, root_file

MODULE = "ami_lock_release"
AWS = False
AL = Tree("al2023")
RELEASE = "2023.6.20241010"


def lock(release: str = RELEASE, **extra) -> dict:
    return dict({"root": "{root}", "release": release}, **extra)


def _skipped(result, ctx):
    return [] if result.get("skipped") or result.get("locked") is False and not result.get("changed") else \
        ["acted on the image (%r) although only the decoy behind a link is Amazon Linux" % result.get("msg")]


DEBIAN_READ_IN_ROOT = accept("the image's own os-release is read: Debian, skipped; nothing written",
                             all_of(_skipped, root_file("/etc/dnf/vars/releasever", exists=False)))
CONFINED = "the lock is written inside the root; the decoy's releasever is untouched"


def debian_with(suite: str, target: str) -> Tree:
    return Tree(suite, Link("/etc/os-release", target))


CASES = [
    # careless input
    Case("root-empty", {"root": "", "release": RELEASE}, refuse("root")),
    Case("root-missing", lock(root="{root}/no/such/dir"), refuse("root"), tree=AL),
    Case("root-is-a-file", lock(root="{file}"), refuse("root")),
    Case("release-empty", lock(""), refuse("release"), tree=AL),
    Case("release-malformed", lock("2023.x.bad"), refuse("release"), tree=AL),
    Case("release-traversal", lock("../../etc/passwd"), refuse("release"), tree=AL),
    Case("release-huge", lock("9" * 5000), refuse("release"), tree=AL),
    Case("launch-updates-not-a-choice", {"root": "{root}", "launch_updates": "sometimes"}, refuse("launch_updates"),
         tree=AL),
    Case("ami-name-unparsable", lock("source", ami_name="my-own-image"), refuse("ami_name"), tree=AL),
    Case("ami-name-huge", lock("source", ami_name=HUGE), refuse("ami_name"), tree=AL),
    Case("release-not-yaml", lock(NOT_YAML), refuse("release"), tree=AL),
    # non-ASCII digits and trailing newlines (issue 17, item 12: "2023.٦.20241010" was written)
    Case("release-arabic-indic-digit", lock("2023.٦.20241010"), refuse("release"), tree=AL, item=12),
    Case("release-fullwidth-year", lock("２０２３.6.20241010"), refuse("release"), tree=AL, item=12),
    Case("release-devanagari-date", lock("2023.6.२०२४१०१०"), refuse("release"), tree=AL, item=12),
    Case("release-trailing-newline", lock(RELEASE + "\n"), refuse("release"), tree=AL, item=10),
    Case("release-trailing-space", lock(RELEASE + " "), refuse("release"), tree=AL),
    Case("release-latest-newline", lock("latest\n"), refuse("release"), tree=AL, item=10),
    Case("release-injects-a-line", lock(RELEASE + "\nexclude=*"), refuse("release"), tree=AL),
    Case("ami-name-arabic-indic-digit", lock("source", ami_name="al2023-ami-2023.٦.20241010.0-kernel-6.1-x86_64"),
         refuse("ami_name"), tree=AL, item=12),
    Case("ami-name-trailing-newline", lock("source", ami_name="al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64\n"),
         refuse("ami_name"), tree=AL, item=10),
    Case("launch-updates-trailing-newline", {"root": "{root}", "launch_updates": "none\n"}, refuse("launch_updates"),
         tree=AL, item=10),
    Case("root-trailing-newline", lock(root="{root}\n"), refuse("root"), tree=AL, item=10),
    Case("root-relative", lock(root="root"), refuse("root"), tree=AL),
    # a root given through a link is that root
    Case("root-is-a-link", lock(root="{root_link}"),
         accept("the lock is written in the tree the link names", root_file("/etc/dnf/vars/releasever", RELEASE)),
         tree=AL),
    # files and directories of the image that lead out of it (issue 17, item 1)
    Case("etc-link-absolute", lock(), either("root", "releasever", safe=CONFINED),
         tree=Tree("al2023", Escape("/etc", "{outside}/etc")), item=1),
    Case("etc-link-relative-chain", lock(), either("root", "releasever", safe=CONFINED),
         tree=Tree("al2023", Escape("/etc", "{up}outside/etc")), item=1),
    Case("etc-link-proc-self-root", lock(), either("root", "releasever", safe=CONFINED),
         tree=Tree("al2023", Escape("/etc", "/proc/self/root{outside}/etc")), item=1),
    Case("dnf-vars-link-out", lock(), either("root", "releasever", safe=CONFINED),
         tree=Tree("al2023", Escape("/etc/dnf/vars", "{outside}/etc/dnf/vars")), item=1),
    Case("releasever-link-out", lock(), either("root", "releasever", safe=CONFINED),
         tree=Tree("al2023", Escape("/etc/dnf/vars/releasever", "{up}outside/etc/dnf/vars/releasever")), item=1),
    Case("releasever-link-out-unlock", lock("latest"), either("root", "releasever", safe=CONFINED),
         tree=Tree("al2023", Escape("/etc/dnf/vars/releasever", "{outside}/etc/dnf/vars/releasever")), item=1),
    Case("system-release-link-to-decoy", lock("source"),
         accept("the release is read from the image itself (its own system-release, 2023.6.20241010)",
                root_file("/etc/dnf/vars/releasever", RELEASE)),
         tree=Tree("al2023", File("{outside}/etc/system-release", "Amazon Linux release 2023.9.20991231 (Amazon Linux)\n"),
                   Link("/etc/system-release", "{outside}/etc/system-release"))),
    # Debian images whose os-release leads to the Amazon Linux decoy
    Case("debian-12-os-release-link-absolute", lock("source"), DEBIAN_READ_IN_ROOT,
         tree=debian_with("debian-12", "{outside}/etc/os-release"), item=1),
    Case("debian-13-os-release-link-absolute", lock("source"), DEBIAN_READ_IN_ROOT,
         tree=debian_with("debian-13", "{outside}/etc/os-release"), item=1),
    Case("debian-12-os-release-link-proc", lock("source"), DEBIAN_READ_IN_ROOT,
         tree=debian_with("debian-12", "/proc/self/root{outside}/etc/os-release"), item=1),
    Case("debian-13-os-release-link-relative", lock("source"), DEBIAN_READ_IN_ROOT,
         tree=debian_with("debian-13", "{up}outside/etc/os-release"), item=1),
]
