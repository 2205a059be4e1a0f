# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_packages: root options that are not an image, and images whose package database or
os-release leads out of the root.

The trees are the /etc of the Debian 12 image with a dpkg status database planted, and the Amazon
Linux 2023 fixture. Behind every hostile link is the decoy: a module that followed a link out of
the root would list what the decoy holds (its shadow or hostname) instead of the image's packages.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import HUGE, NOT_YAML, Case, Escape, File, Link, Tree, accept, refuse

MODULE = "image_packages"
AWS = False
MINIMUM = 14
AL = Tree("al2023")
STATUS = ("Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u10\n\n"
          "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\n"
          "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9\n")
PLANTED = File("/var/lib/dpkg/status", STATUS)


def debian(*plants) -> Tree:
    return Tree("debian-12", *plants)


def listing(*names: str):
    """The image's own packages are listed, nothing else."""
    def check(result, ctx):
        found = [p.get("name") for p in result.get("packages") or []]
        return [] if found == list(names) else ["lists %s, the image holds %s" % (found, list(names))]
    return check


def listed_from_the_root(*names: str):
    return accept("the image's own database is read (a link resolved inside the root)", listing(*names))


CASES = [
    # careless input
    Case("root-missing", {"root": "{root}/no/such/dir"}, refuse("root"), tree=AL),
    Case("root-empty", {"root": ""}, refuse("root")),
    Case("root-is-a-file", {"root": "{file}"}, refuse("root")),
    Case("root-relative", {"root": "relative/dir"}, refuse("root")),
    Case("root-huge", {"root": "/" + HUGE}, refuse("root")),
    Case("root-not-yaml", {"root": NOT_YAML}, refuse("root")),
    Case("root-trailing-newline", {"root": "{root}\n"}, refuse("root"), tree=debian(PLANTED), item=10),
    # '~' is the controller's home: no image there
    Case("root-tilde", {"root": "~"}, refuse("root"), item=14),
    Case("unknown-option", {"root": "{root}", "colour": "red"}, refuse("colour"), tree=debian(PLANTED)),
    # images that are not Debian or RPM, or whose rpm database this host cannot read
    Case("no-package-database", {"root": "{root}"}, refuse("root"), tree=debian()),
    Case("rpm-database-without-rpm", {"root": "{root}"}, refuse("root"),
         tree=Tree("al2023", File("/var/lib/rpm/rpmdb.sqlite", "not a database\n"))),
    # a plain image, and one whose status file holds garbage
    Case("debian-status", {"root": "{root}"}, listed_from_the_root("base-files", "libc6"), tree=debian(PLANTED)),
    Case("status-garbage", {"root": "{root}"}, listed_from_the_root(),
         tree=debian(File("/var/lib/dpkg/status", "\x01\x02 not dpkg\n:::\nPackage\n"))),
    # links out of the root (issue 17, item 1): resolved inside it, as a chroot would
    Case("status-link-to-host-shadow", {"root": "{root}"}, listed_from_the_root(),
         tree=debian(Escape("/var/lib/dpkg/status", "{outside}/etc/shadow")), item=1),
    # the decoy's /etc holds no status file: inside the root the link leads to no database
    # without the attacker's copy inside: a module that followed the link would read the host's
    # passwd as an (empty) status database and succeed; inside the root there is none
    Case("status-link-to-host-passwd", {"root": "{root}"}, refuse("root"),
         tree=debian(Link("/var/lib/dpkg/status", "{outside}/etc/passwd")), item=1),
    Case("dpkg-directory-link-to-host", {"root": "{root}"}, refuse("root"),
         tree=debian(Escape("/var/lib/dpkg", "{outside}/etc")), item=1),
    Case("os-release-link-to-host", {"root": "{root}"}, listed_from_the_root("base-files", "libc6"),
         tree=debian(PLANTED, Escape("/etc/os-release", "{outside}/etc/os-release")), item=1),
]
