# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The root-confined file layer: whatever links the image holds, nothing outside it is read,
written or removed. Each hostile tree has a decoy directory beside the root; every operation on
every path of the tree leaves the decoy byte-, inode- and mode-identical."""
from __future__ import annotations

import hashlib
import os
import stat

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _image_root
from ansible_collections.bakery.ami.plugins.module_utils._image_root import ImageRoot, RootError


def digest(tree) -> dict:
    """path -> (kind, mode, inode, content hash or link target) of everything under tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(tree)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                what = "link:" + os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as handle:
                    what = hashlib.sha256(handle.read()).hexdigest()
            else:
                what = "dir"
            out[os.path.relpath(full, str(tree))] = (what, stat.S_IMODE(st.st_mode), st.st_ino)
    return out


def make_decoy(base):
    decoy = base / "decoy"
    (decoy / "etc").mkdir(parents=True)
    (decoy / "etc" / "shadow").write_text("root:$6$hostsecret:19000:0:99999:7:::\n")
    (decoy / "etc" / "hostname").write_text("host\n")
    (decoy / "home" / "user" / ".ssh").mkdir(parents=True)
    (decoy / "home" / "user" / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    return decoy


# The ways an image can point outside itself; each is planted as <root>/etc and as a deeper link.
def hostile_links(decoy):
    return {
        "absolute": str(decoy / "etc"),
        "relative-chain": "../" * 12 + str(decoy / "etc").lstrip("/"),
        "proc-self-root": "/proc/self/root" + str(decoy / "etc"),
        "dotdot": "..",
    }


@pytest.fixture
def image(tmp_path):
    root = tmp_path / "root"
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "log" / "syslog").write_text("log\n")
    (root / "home").mkdir()
    decoy = make_decoy(tmp_path)
    return root, decoy


@pytest.mark.parametrize("kind", ["absolute", "relative-chain", "proc-self-root", "dotdot"])
def test_no_operation_through_a_hostile_etc_reaches_outside(image, kind):
    root, decoy = image
    os.symlink(hostile_links(decoy)[kind], str(root / "etc"))
    (root / "home" / "user").symlink_to(str(decoy / "home" / "user"))
    before = digest(decoy)
    img = ImageRoot(str(root))
    paths = ["/etc/shadow", "/etc/hostname", "/etc", "/home/user/.ssh/id_rsa", "/home/user/.ssh", "/home/user"]
    for path in paths:
        img.lstat(path)
        img.stat(path)
        img.read_bytes(path)
        img.read_bytes(path, follow_last=True)
        img.entries(path)
        list(img.walk(path))
        img.truncate(path)
        try:
            img.write_text(path + "-new", "written\n")
        except RootError:
            pass
        try:
            img.write_text(path, "written\n")
        except RootError:
            pass
        img.remove(path)
    assert digest(decoy) == before


def test_links_resolve_inside_the_root_like_a_chroot(tmp_path):
    root = tmp_path / "root"
    (root / "real" / "etc").mkdir(parents=True)
    (root / "real" / "etc" / "shadow").write_text("inside\n")
    os.symlink("/real/etc", str(root / "etc"))
    os.symlink("../../../../../../real", str(root / "up"))
    img = ImageRoot(str(root))
    assert img.read_text("/etc/shadow") == "inside\n"
    assert img.lstat("/etc/shadow").path == "/real/etc/shadow"
    assert img.lstat("/up/etc/shadow").path == "/real/etc/shadow"
    assert img.lstat("/etc").path == "/etc"  # the last component is not followed
    assert img.stat("/etc").path == "/real/etc"


def test_writes_land_on_the_resolved_path_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    os.symlink("/real", str(root / "etc"))
    img = ImageRoot(str(root))
    assert img.write_text("/etc/new/file.cfg", "x\n") == "/real/new/file.cfg"
    assert (root / "real" / "new" / "file.cfg").read_text() == "x\n"
    assert stat.S_IMODE((root / "real" / "new").stat().st_mode) == 0o755


def test_write_replaces_a_final_link_instead_of_writing_through_it(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    os.symlink(str(outside), str(root / "etc" / "motd"))
    ImageRoot(str(root)).write_text("/etc/motd", "new\n")
    assert outside.read_text() == "keep\n"
    assert not (root / "etc" / "motd").is_symlink()
    assert (root / "etc" / "motd").read_text() == "new\n"


def test_write_keeps_mode_and_owner_of_an_existing_file(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "shadow").write_text("a\n")
    os.chmod(str(root / "etc" / "shadow"), 0o640)
    ImageRoot(str(root)).write_text("/etc/shadow", "b\n")
    assert stat.S_IMODE((root / "etc" / "shadow").stat().st_mode) == 0o640
    ImageRoot(str(root)).write_text("/etc/shadow", "c\n", mode=0o600)
    assert stat.S_IMODE((root / "etc" / "shadow").stat().st_mode) == 0o600
    assert not [p for p in (root / "etc").iterdir() if p.name.startswith(".bakery-")]


@pytest.mark.parametrize("path", ["/", "/.", "/tmp/..", "//", "/a/../", "/./.", "/tmp/../../.."])
def test_paths_that_are_the_whole_image_are_refused(tmp_path, path):
    with pytest.raises(RootError, match="opt: .* resolves to '/'"):
        _image_root.check_path_option(path, "opt")
    (tmp_path / "keep").write_text("x")
    with pytest.raises(RootError):
        ImageRoot(str(tmp_path)).remove(path)
    assert (tmp_path / "keep").exists()


@pytest.mark.parametrize("path", ["~", "~/x", "relative/x", "", "/etc/\nshadow", "/etc/sha\0dow", 7, None])
def test_path_options_that_are_not_absolute_image_paths_are_refused(path):
    with pytest.raises(RootError, match="^opt: "):
        _image_root.normalize_path(path, "opt")


def test_remove_deletes_links_not_their_targets_and_trees_without_following(tmp_path):
    root = tmp_path / "root"
    (root / "tmp" / "deep").mkdir(parents=True)
    decoy = make_decoy(tmp_path)
    os.symlink(str(decoy), str(root / "tmp" / "deep" / "to-decoy"))
    os.symlink(str(decoy / "etc" / "shadow"), str(root / "tmp" / "shadow-link"))
    before = digest(decoy)
    img = ImageRoot(str(root))
    assert img.remove("/tmp")
    assert not (root / "tmp").exists()
    assert digest(decoy) == before


def test_remove_of_a_very_deep_tree_does_not_exhaust_the_stack(tmp_path):
    root = tmp_path / "root"
    deep = root / "tmp"
    deep.mkdir(parents=True)
    fd = os.open(str(deep), os.O_RDONLY)
    try:
        for _level in range(1500):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)
    assert ImageRoot(str(root)).remove("/tmp")
    assert not deep.exists()


def test_link_loops_are_an_error_naming_the_option(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("/b", str(root / "a"))
    os.symlink("/a", str(root / "b"))
    with pytest.raises(RootError, match="^root: too many levels"):
        ImageRoot(str(root)).stat("/a/x")


def test_walk_never_follows_links_and_reports_canonical_paths(tmp_path):
    root = tmp_path / "root"
    (root / "home" / "u").mkdir(parents=True)
    (root / "home" / "u" / "f").write_text("x")
    decoy = make_decoy(tmp_path)
    os.symlink(str(decoy), str(root / "home" / "u" / "out"))
    os.symlink("/home", str(root / "homes"))
    seen = [e.path for e in ImageRoot(str(root)).walk("/homes")]
    assert seen == ["/home/u", "/home/u/f", "/home/u/out"]


def test_truncate_never_writes_through_a_link(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.write_text("keep")
    os.symlink(str(outside), str(root / "etc" / "machine-id"))
    assert ImageRoot(str(root)).truncate("/etc/machine-id") is False
    assert outside.read_text() == "keep"


def test_a_symlinked_root_is_the_directory_it_names(tmp_path):
    real = tmp_path / "real"
    (real / "etc").mkdir(parents=True)
    (real / "etc" / "x").write_text("y")
    (tmp_path / "link").symlink_to(real)
    img = ImageRoot(str(tmp_path / "link"))
    assert img.root == str(real)
    assert img.read_text("/etc/x") == "y"


@pytest.mark.parametrize("root", ["relative", "", None, "/no/such/dir", "/etc/\n"])
def test_bad_roots_are_refused_naming_the_option(root):
    with pytest.raises(RootError, match="^root: "):
        ImageRoot(root)
