# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The package inventory of a root: dpkg status parsing, rpm output, purls, refusals."""
from __future__ import annotations

import os

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _packages
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._packages import PackagesError

STATUS = """\
Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u10
Depends: libgcc-s1
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 This package includes shared versions of the standard C library.
Homepage: https://www.gnu.org/software/libc/libc.html

Package: bsdutils
Essential: yes
Status: install ok installed
Architecture: amd64
Source: util-linux (2.38.1-5)
Version: 1:2.38.1-5+deb12u3
Description: basic utilities from 4.4BSD-Lite

Package: old-removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Conffiles:
 /etc/old-removed.conf 0123456789abcdef0123456789abcdef

Package: broken-half
Status: install reinstreq half-installed
Architecture: amd64
Version: 2.0-1

Package: unpacked-only
Status: install ok unpacked
Architecture: all
Version: 3.0

Package: held
Status: hold ok installed
Architecture: all
Version: 0.5
Description: a held package is installed
"""


def tree(tmp_path, files: dict):
    for path, content in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            target.mkdir(exist_ok=True)
        else:
            target.write_text(content)
    return str(tmp_path)


DEBIAN = {"/etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
                             "VERSION_CODENAME=bookworm\n"}


def test_paragraphs_and_continuation_lines():
    paragraphs = _packages.parse_dpkg_status(STATUS)
    names = [p["Package"] for p in paragraphs]
    assert names == ["libc6", "bsdutils", "old-removed", "broken-half", "unpacked-only", "held"]
    description = paragraphs[0]["Description"]
    assert description.startswith("GNU C Library: Shared libraries\nContains the standard")
    assert description.endswith("shared versions of the standard C library.")
    assert paragraphs[0]["Homepage"] == "https://www.gnu.org/software/libc/libc.html", "a field after a continuation"
    assert paragraphs[2]["Conffiles"].strip() == "/etc/old-removed.conf 0123456789abcdef0123456789abcdef"


def test_only_installed_packages_with_their_source_and_purl():
    packages = _packages.dpkg_packages(STATUS, "debian", "bookworm")
    assert [p["name"] for p in packages] == ["bsdutils", "held", "libc6"]
    bsdutils, held, libc6 = packages
    assert bsdutils == {"name": "bsdutils", "version": "1:2.38.1-5+deb12u3", "arch": "amd64", "source": "util-linux",
                        "source_version": "2.38.1-5",
                        "purl": "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64&distro=bookworm"}
    assert libc6["source"] == "glibc" and libc6["source_version"] == "2.36-9+deb12u10"
    assert held["source"] == "held" and held["source_version"] == "0.5", "no Source: the package is its own source"


def test_crlf_trailing_paragraph_and_garbage_lines():
    text = "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\nArchitecture: all\r\nnot a field\r\n"
    assert [p["name"] for p in _packages.dpkg_packages(text)] == ["a"]
    assert _packages.dpkg_packages("") == []
    # a paragraph without a version is no package
    assert _packages.dpkg_packages("Package: b\nStatus: install ok installed\n") == []


def test_purl_agrees_with_packageurl():
    packageurl = pytest.importorskip("packageurl")
    for name, version, qualifiers in (("libc6", "2.36-9+deb12u10", {"arch": "amd64", "distro": "bookworm"}),
                                      ("bsdutils", "1:2.38.1-5+deb12u3", {"arch": "amd64", "distro": "bookworm"}),
                                      ("libstdc++6", "12.2.0-14", {"arch": "amd64"}),
                                      ("bash", "5.2.26-1.amzn2023.0.2", {"arch": "x86_64", "distro": "amzn-2023"})):
        ours = _packages.purl("deb", "debian", name, version, **qualifiers)
        theirs = packageurl.PackageURL(type="deb", namespace="debian", name=name, version=version,
                                       qualifiers=qualifiers).to_string()
        assert ours == theirs


def test_a_debian_root(tmp_path):
    root = tree(tmp_path, dict(DEBIAN, **{"/var/lib/dpkg/status": STATUS}))
    result = _packages.inventory(root)
    assert {k: v for k, v in result.items() if k != "packages"} == {
        "root": root, "distro": "debian", "distro_version": "12", "codename": "bookworm", "format": "deb", "count": 3}


def test_the_status_file_is_read_inside_the_root(tmp_path):
    """A status file that is a link out of the root is resolved inside it (as chroot would)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "status").write_text(STATUS)
    root = tmp_path / "root"
    tree(root, dict(DEBIAN, **{"/var/lib/dpkg": None}))
    os.symlink(str(outside / "status"), str(root / "var/lib/dpkg/status"))
    with pytest.raises(PackagesError, match="neither a dpkg status database"):
        _packages.inventory(str(root))


RPM_OUTPUT = ("bash\t0\t5.2.15\t1.amzn2023.0.2\tx86_64\tbash-5.2.15-1.amzn2023.0.2.src.rpm\n"
              "gpg-pubkey\t0\td832b7a8\t5e2c7a8c\t(none)\t(none)\n"
              "openssl-libs\t1\t3.0.8\t1.amzn2023.0.14\tx86_64\topenssl-3.0.8-1.amzn2023.0.14.src.rpm\n"
              "truncated line\n")
AMAZON = {"/etc/os-release": 'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nVERSION_ID="2023"\n'
                             'PRETTY_NAME="Amazon Linux 2023.6.20241010"\n', "/var/lib/rpm": None}


def test_an_rpm_root_through_the_hosts_rpm(tmp_path):
    root = tree(tmp_path, AMAZON)
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, RPM_OUTPUT, ""

    result = _packages.inventory(root, run=run, rpm_path="/usr/bin/rpm")
    assert calls[0][:3] == ["/usr/bin/rpm", "--root", root]
    assert result["format"] == "rpm" and result["count"] == 2
    bash, openssl = result["packages"]
    assert bash["purl"] == "pkg:rpm/amazon/bash@5.2.15-1.amzn2023.0.2?arch=x86_64&distro=amzn-2023"
    assert openssl["version"] == "1:3.0.8-1.amzn2023.0.14" and openssl["source"] == "openssl"
    assert openssl["purl"] == "pkg:rpm/amazon/openssl-libs@3.0.8-1.amzn2023.0.14?arch=x86_64&distro=amzn-2023&epoch=1"


def test_an_rpm_root_without_rpm_on_the_host_names_the_distro_and_what_is_missing(tmp_path):
    root = tree(tmp_path, AMAZON)
    with pytest.raises(PackagesError, match=r"Amazon Linux 2023.6.20241010\) keeps its packages in an rpm database.*"
                                            r"no rpm command: install rpm"):
        _packages.inventory(root, run=lambda argv: (0, "", ""), rpm_path=None)
    with pytest.raises(PackagesError, match=r"rpm could not read its database \(rc 1\): error: db5 error"):
        _packages.inventory(root, run=lambda argv: (1, "", "error: db5 error"), rpm_path="/usr/bin/rpm")


def test_a_root_of_no_known_system_and_a_missing_root(tmp_path):
    with pytest.raises(PackagesError, match="neither a dpkg status database"):
        _packages.inventory(tree(tmp_path, {"/etc/os-release": "ID=plan9\n"}))
    with pytest.raises(Exception, match="root: "):
        _packages.inventory(str(tmp_path / "absent"))
    with pytest.raises(Exception, match="root: must be an absolute path"):
        _packages.inventory("relative/root")


def test_build_request_checks_the_root_once(tmp_path):
    import dataclasses
    request = _packages.build_request({"root": str(tmp_path)}, rpm_path="/usr/bin/rpm")
    assert (request.root, request.image.root, request.rpm_path) == (str(tmp_path), os.path.realpath(str(tmp_path)), "/usr/bin/rpm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.rpm_path = None  # type: ignore[misc]
    with pytest.raises(PackagesError, match=r"^root: must be a path of at most 4095 characters"):
        _packages.build_request({"root": "/" + "a" * 5000})
    with pytest.raises(BakeryError, match=r"^root: must be an absolute path, got 'missing'"):
        _packages.build_request({"root": "missing"})
