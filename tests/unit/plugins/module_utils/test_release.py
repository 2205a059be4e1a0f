# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _release as r

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "amazon_linux"


# ------------------------------------------------------------------------- release_from_ami_name


@pytest.mark.parametrize(
    "name,expected",
    [
        ("al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64", ("al2023", "2023.6.20241010")),
        ("al2023-ami-2023.6.20241010.0-kernel-6.1-arm64", ("al2023", "2023.6.20241010")),
        ("al2023-ami-2023.10.20251201.1-kernel-6.12-x86_64", ("al2023", "2023.10.20251201")),
        ("al2023-ami-2023.0.20230315.0-kernel-default-x86_64", ("al2023", "2023.0.20230315")),
        ("al2023-ami-minimal-2023.6.20241010.0-kernel-6.1-arm64", ("al2023-minimal", "2023.6.20241010")),
        ("amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2", ("al2", "2.0.20240131")),
        ("amzn2-ami-kernel-5.10-hvm-2.0.20240131.0-arm64-gp2", ("al2", "2.0.20240131")),
        ("amzn2-ami-minimal-hvm-2.0.20240131.0-x86_64-ebs", ("al2", "2.0.20240131")),
        ("amzn-ami-hvm-2018.03.0.20231218.0-x86_64-gp2", ("amzn", "2018.03")),
        ("amzn-ami-minimal-hvm-2018.03.0.20231218.0-x86_64-ebs", ("amzn", "2018.03")),
        ("amzn-ami-2018.03.0.20231218.0-x86_64-ebs", ("amzn", "2018.03")),
        ("amzn-ami-vpc-nat-2018.03.0.20231218.0-x86_64-ebs", ("amzn", "2018.03")),
        ("amzn-ami-hvm-2017.09.1.20180115-x86_64-gp2", ("amzn", "2017.09")),
        ("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801", ("ubuntu-24.04", "20240801")),
        ("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20240801", ("ubuntu-22.04", "20240801")),
        ("ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-20230207.1", ("ubuntu-20.04", "20230207.1")),
        ("ubuntu-minimal/images/hvm-ssd/ubuntu-jammy-22.04-amd64-minimal-20240801", ("ubuntu-22.04", "20240801")),
        ("ubuntu-pro-server/images/hvm-ssd/ubuntu-focal-20.04-amd64-pro-server-20240801",
         ("ubuntu-20.04", "20240801")),
        ("debian-12-amd64-20240717-1811", ("debian-12", "20240717-1811")),
        ("debian-11-arm64-20240717-1811", ("debian-11", "20240717-1811")),
        ("RHEL-9.4.0_HVM-20240423-x86_64-62-Hourly2-GP3", ("rhel-9", "9.4")),
        ("RHEL-8.10.0_HVM-20240327-arm64-2-Access2-GP3", ("rhel-8", "8.10")),
    ],
)
def test_release_from_ami_name(name, expected):
    assert r.release_from_ami_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        None,
        42,
        "web-base-20240101-x86_64",
        "al2023-ami-2023.6-kernel-6.1-x86_64",  # no date
        "al2023-ami-2023.6.20241340.0-kernel-6.1-x86_64",  # no such date
        "al2023-ami-ecs-hvm-2023.0.20241010-kernel-6.1-x86_64",  # ECS-optimized: its own versioning
        "amzn2-ami-ecs-hvm-2.0.20240131-x86_64-ebs",
        "amzn-ami-2018.03.20231218-amazon-ecs-optimized",
        "al2022-ami-2022.0.20220301.0-kernel-5.15-x86_64",  # preview, never lockable here
        "amzn-ami-hvm-2018.04.0.20231218.0-x86_64-gp2",  # no such release
        "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-2024",
        "my-al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64",
    ],
)
def test_release_from_ami_name_refuses_to_guess(name):
    assert r.release_from_ami_name(name) is None


ARABIC_SIX = "\u0666"


@pytest.mark.parametrize("name", [
    "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64\n",
    "al2023-ami-2023.%s.20241010.0-kernel-6.1-x86_64" % ARABIC_SIX,
    "amzn2-ami-hvm-2.0.2024013%s.0-x86_64-gp2" % ARABIC_SIX,
    "amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2\n",
    "amzn-ami-hvm-2018.03.0.20231218.0-x86_64-gp2\n",
    "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801\n",
    "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.0%s-amd64-server-20240801" % ARABIC_SIX,
    "debian-12-amd64-20240717-1811\n",
    "debian-1%s-amd64-20240717-1811" % ARABIC_SIX,
    "RHEL-9.4.0_HVM-20240423-x86_64-62-Hourly2-GP3\n",
    "RHEL-%s.4.0_HVM-20240423-x86_64-62-Hourly2-GP3" % ARABIC_SIX,
])
def test_release_from_ami_name_is_a_full_ascii_match(name):
    assert r.release_from_ami_name(name) is None


@pytest.mark.parametrize(
    "distro,generation",
    [("al2023", "al2023"), ("al2023-minimal", "al2023"), ("al2", "al2"), ("amzn", "amzn"), ("debian-12", None)],
)
def test_generation_of_distro(distro, generation):
    assert r.generation_of_distro(distro) == generation


# ------------------------------------------------------------------------- validate_release


@pytest.mark.parametrize(
    "generation,release",
    [("al2023", "2023.6.20241010"), ("al2023", "2023.0.20230315"), ("al2023", "2023.12.20261231"),
     ("amzn", "2018.03"), ("amzn", "2011.09"), ("amzn", "2016.09")],
)
def test_validate_release_accepts(generation, release):
    assert r.validate_release(generation, release) is None


@pytest.mark.parametrize(
    "generation,release,needle",
    [
        ("al2023", "2023.6", "2023.<minor>.<YYYYMMDD>"),
        ("al2023", "2023.6.20241010.0", "drop the trailing image build number"),
        ("al2023", "2023.6.20241301", "real date"),
        ("al2023", "2022.0.20220301", "2023.<minor>.<YYYYMMDD>"),
        ("al2023", "2018.03", "2023.<minor>.<YYYYMMDD>"),
        ("al2023", " 2023.6.20241010", "2023.<minor>.<YYYYMMDD>"),
        ("amzn", "2018.3", "YYYY.MM"),
        ("amzn", "2019.03", "2011.09 to 2018.03"),
        ("amzn", "2018.06", "YYYY.MM"),
        ("amzn", "2023.6.20241010", "YYYY.MM"),
        ("al2", "2.0.20240131", "no lockable releases"),
        ("al2023", "2023.\u0666.20241010", "2023.<minor>.<YYYYMMDD>"),
        ("al2023", "2023.6.2024101\u0660", "2023.<minor>.<YYYYMMDD>"),
        ("al2023", "2023.6.20241010\n", "2023.<minor>.<YYYYMMDD>"),
        ("amzn", "2018.03\n", "YYYY.MM"),
        ("amzn", "2018.0\u0663", "YYYY.MM"),
        ("amzn", "\u0662\u0660\u0661\u0668.03", "YYYY.MM"),
    ],
)
def test_validate_release_rejects(generation, release, needle):
    assert needle in r.validate_release(generation, release)


def test_a_release_is_the_whole_ascii_string():
    assert r.validate_release(r.AL2023, "2023.6.20241010") is None
    assert r.validate_release(r.AL2023, "2023.6.20241010\n") is not None
    assert r.validate_release(r.AL2023, "2023.\u0666.20241010") is not None


def test_installed_release_is_read_in_ascii_only(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID="amzn"\nVERSION_ID="2023"\nPRETTY_NAME="Amazon Linux 2023"\n')
    (tmp_path / "etc/system-release").write_text("Amazon Linux release 2023.\u0666.20241010 (Amazon Linux)\n")
    assert r.detect(str(tmp_path)).installed_release is None
    (tmp_path / "etc/system-release").write_text("Amazon Linux release 2023.6.20241010 (Amazon Linux)\n")
    assert r.detect(str(tmp_path)).installed_release == "2023.6.20241010"


def test_release_key_orders_numerically():
    releases = ["2023.10.20251201", "2023.9.20250930", "2023.6.20241010"]
    assert sorted(releases, key=r.release_key) == ["2023.6.20241010", "2023.9.20250930", "2023.10.20251201"]


# ------------------------------------------------------------------------- os-release, roots


def test_parse_os_release_quotes_comments_and_escapes():
    text = '# comment\nID="amzn"\nVERSION_ID=2023\nNAME=\'Amazon Linux\'\nPRETTY_NAME="A \\"b\\" \\$c"\nbad line\n'
    assert r.parse_os_release(text) == {
        "ID": "amzn", "VERSION_ID": "2023", "NAME": "Amazon Linux", "PRETTY_NAME": 'A "b" $c',
    }


def test_reads_follow_links_inside_the_root_only(tmp_path):
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib/os-release").write_text('ID=amzn\nVERSION_ID="2018.03"\n')
    os.symlink("/usr/lib/os-release", tmp_path / "etc/os-release")  # absolute: must not reach the host
    image = r.open_root(str(tmp_path))
    assert r.detect(image).generation == "amzn"
    assert r.host_path(image, "etc/new/file") == str(tmp_path / "etc/new/file")
    os.symlink("../../../../../../etc", tmp_path / "escape")
    assert r.host_path(image, "escape/passwd") == str(tmp_path / "etc/passwd")


def test_link_loops_are_refused(tmp_path):
    (tmp_path / "etc").mkdir()
    os.symlink("b", tmp_path / "etc/os-release")
    os.symlink("os-release", tmp_path / "etc/b")
    with pytest.raises(r.ReleaseLockError, match="too many levels"):
        r.detect(str(tmp_path))


@pytest.mark.parametrize(
    "tree,generation,installed",
    [("al2023", "al2023", "2023.6.20241010"), ("al2", "al2", None), ("amzn-2018.03", "amzn", "2018.03"),
     ("debian-12", None, None)],
)
def test_detect_fixture_trees(tree, generation, installed):
    identity = r.detect(str(FIXTURES / tree))
    assert identity.generation == generation
    assert identity.installed_release == installed


def test_detect_al2023_release_from_pretty_name_without_system_release(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "al2023", root, symlinks=True)
    (root / "etc/system-release").unlink()
    assert r.detect(str(root)).installed_release == "2023.6.20241010"


def test_detect_unknown_amazon_version_fails_loudly(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID="amzn"\nVERSION_ID="2025"\n')
    with pytest.raises(r.ReleaseLockError, match="VERSION_ID=2025"):
        r.detect(str(tmp_path))


def test_detect_uses_usr_lib_os_release_when_etc_has_none(tmp_path):
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_text('ID="amzn"\nVERSION_ID="2"\n')
    assert r.detect(str(tmp_path)).generation == "al2"


# ------------------------------------------------------------------------- yum.conf


YUM = "[main]\ncachedir=/var/cache\n# keep this comment\nreleasever=latest\nplugins=1\n\n[other]\nreleasever=9\n"


def test_set_yum_releasever_replaces_only_the_value():
    after = r.set_yum_releasever(YUM, "2018.03", "yum.conf")
    assert after == YUM.replace("releasever=latest", "releasever=2018.03")
    assert r.yum_releasever(after, "yum.conf") == "2018.03"


def test_set_yum_releasever_keeps_spacing_around_the_separator():
    text = "[main]\nreleasever = latest   \n"
    assert r.set_yum_releasever(text, "2018.03", "y") == "[main]\nreleasever = 2018.03   \n"


def test_set_yum_releasever_unchanged_text_is_returned_as_is():
    text = YUM.replace("latest", "2018.03")
    assert r.set_yum_releasever(text, "2018.03", "y") is text


def test_set_yum_releasever_adds_after_last_setting_when_commented_out():
    text = "[main]\ncachedir=/x\nretries=7\n\n#releasever=latest\n\n# trailing comment\n[other]\na=1\n"
    after = r.set_yum_releasever(text, "2018.03", "y")
    assert after == "[main]\ncachedir=/x\nretries=7\nreleasever=2018.03\n\n#releasever=latest\n\n# trailing comment\n[other]\na=1\n"
    assert r.yum_releasever(text, "y") is None


def test_set_yum_releasever_handles_missing_final_newline_and_crlf():
    assert r.set_yum_releasever("[main]\na=1", "2018.03", "y") == "[main]\na=1\nreleasever=2018.03\n"
    assert r.set_yum_releasever("[main]\r\na=1\r\n", "2018.03", "y") == "[main]\r\na=1\r\nreleasever=2018.03\r\n"


def test_set_yum_releasever_ignores_other_sections():
    assert r.yum_releasever("[main]\na=1\n[x]\nreleasever=9\n", "y") is None


@pytest.mark.parametrize(
    "text,needle",
    [
        ("cachedir=/x\n[main]\n", "before any [section] header"),
        ("[other]\na=1\n", "no [main] section"),
        ("", "no [main] section"),
        ("[main]\nthis is not a setting\n", "is not key=value"),
        ("[main]\nreleasever=latest\nreleasever=2018.03\n", "releasever set twice"),
        ("[main]\na=1\n[main]\nb=2\n", "a second [main]"),
        ("  indented=1\n[main]\n", "indented outside any section"),
    ],
)
def test_malformed_yum_conf(text, needle):
    with pytest.raises(r.ReleaseLockError) as info:
        r.set_yum_releasever(text, "2018.03", "/r/etc/yum.conf")
    assert str(info.value).startswith("/r/etc/yum.conf: malformed") and needle in str(info.value)


# ------------------------------------------------------------------------- cloud-init drop-in


def test_update_dropin_new_file_is_cloud_config():
    text = r.update_dropin(None, {"repo_releasever": "2018.03", "repo_upgrade": "security"})
    assert text.startswith("#cloud-config\n")
    assert "\nrepo_releasever: '2018.03'\n" in text and text.endswith("\nrepo_upgrade: security\n")


def test_update_dropin_changes_only_its_keys_and_is_stable():
    before = "#cloud-config\n# mine\nrepo_upgrade: none\nother: 1\n"
    after = r.update_dropin(before, {"repo_releasever": "2018.03"})
    assert after == before + "repo_releasever: '2018.03'\n"
    assert r.update_dropin(after, {"repo_releasever": "2018.03", "repo_upgrade": "none"}) == after
    assert r.update_dropin(after, {"repo_upgrade": "all"}) == after.replace("repo_upgrade: none", "repo_upgrade: all")


def test_update_dropin_reads_quoted_and_commented_values():
    before = '#cloud-config\nrepo_releasever: "2018.03"  # pinned\n'
    assert r.update_dropin(before, {"repo_releasever": "2018.03"}) == before


def test_later_dropin_conflicts_are_warned(tmp_path):
    directory = tmp_path / "etc/cloud/cloud.cfg.d"
    directory.mkdir(parents=True)
    (directory / "95_ecs.cfg").write_text("repo_upgrade: none\n")
    (directory / "10_early.cfg").write_text("repo_upgrade: all\n")  # sorts before ours: overridden by ours
    (directory / "99_same.cfg").write_text("repo_upgrade: security\n")
    warnings = r.later_dropin_conflicts(r.open_root(str(tmp_path)), {"repo_upgrade": "security"})
    assert len(warnings) == 1 and "95_ecs.cfg" in warnings[0] and "repo_upgrade: none" in warnings[0]
