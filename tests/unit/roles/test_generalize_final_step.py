"""The generalize role's final step: the script rendered from final_step.sh.j2, run by sh on a scratch tree.

File names in an image are data: whatever characters a deferred path holds, the script acts on that
path alone and never runs any part of it.
"""

from __future__ import annotations

import pathlib
import shlex
import subprocess

import jinja2
import pytest

TEMPLATE = pathlib.Path(__file__).resolve().parents[3] / "roles" / "generalize" / "templates" / "final_step.sh.j2"
KEY_BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAIBakeKey+/0123456789abcdefghijklmnopqrstuv="
HOSTILE_NAMES = [
    "plain",
    "with space",
    "quote'single",
    'quote"double',
    "$(touch PWNED)",
    "`touch PWNED`",
    "semi;touch PWNED",
    "-rf",
    "new\nline",
    "star*",
]


def render(items, key_blob=KEY_BLOB) -> str:
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["quote"] = lambda value: shlex.quote(str(value))
    return env.from_string(TEMPLATE.read_text()).render(__generalize_last=items, __generalize_key_blob=key_blob)


def run(script: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], cwd=cwd, capture_output=True, text=True, check=False)


def tree(root: pathlib.Path) -> set:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_each_action_touches_its_path_alone_and_runs_nothing_of_it(tmp_path, name):
    work = tmp_path / "work"
    work.mkdir()
    gone = work / f"gone-{name}"
    gone.mkdir()
    (gone / "inside").write_text("x")
    emptied = work / f"log-{name}"
    emptied.write_text("a record\n")
    keys = work / f"keys-{name}"
    keys.write_text(f"ssh-ed25519 {KEY_BLOB} bake\nssh-ed25519 AAAAuserKEY user@laptop\n")
    bystander = work / "bystander"
    bystander.write_text("keep")
    items = [
        {"action": "remove", "path": str(gone)},
        {"action": "truncate", "path": str(emptied)},
        {"action": "remove_key", "path": str(keys)},
    ]
    before = tree(work)

    result = run(render(items), work)

    assert result.returncode == 0, result.stderr
    assert not gone.exists()
    assert emptied.read_text() == ""
    assert keys.read_text() == "ssh-ed25519 AAAAuserKEY user@laptop\n"
    assert bystander.read_text() == "keep"
    assert not (work / "PWNED").exists() and not (tmp_path / "PWNED").exists()
    assert tree(work) == before - {gone.name, f"{gone.name}/inside"}


def test_what_it_cannot_do_fails_the_step(tmp_path):
    keys = tmp_path / "authorized_keys"
    keys.write_text(f"ssh-ed25519 {KEY_BLOB} bake\n")
    keys.chmod(0o444)
    link = tmp_path / "link-to-log"
    (tmp_path / "real-log").write_text("data\n")
    link.symlink_to(tmp_path / "real-log")
    items = [
        {"action": "truncate", "path": str(link)},  # a link is never followed: the step reports it
        {"action": "lock_password", "path": str(tmp_path / "shadow")},  # not an action of the final step
    ]

    result = run(render(items), tmp_path)

    assert result.returncode == 1
    assert f"could not empty {link}" in result.stderr
    assert "no final-step action 'lock_password'" in result.stderr
    assert (tmp_path / "real-log").read_text() == "data\n"


def test_without_a_bake_key_the_key_step_fails_instead_of_matching_everything(tmp_path):
    keys = tmp_path / "authorized_keys"
    keys.write_text("ssh-ed25519 AAAAuserKEY user@laptop\n")

    result = run(render([{"action": "remove_key", "path": str(keys)}], key_blob=""), tmp_path)

    assert result.returncode == 1
    assert "no bake key" in result.stderr
    assert keys.read_text() == "ssh-ed25519 AAAAuserKEY user@laptop\n"
