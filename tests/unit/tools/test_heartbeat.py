# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of the main job's quiet steps: tools/heartbeat.py and tools/ci/heartbeat.sh."""
from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tools import heartbeat

REPO_ROOT = Path(__file__).resolve().parents[3]
QUIET_THEN_TALK = "import time, sys; print('start', flush=True); time.sleep(2.6); print('end'); sys.exit(3)"
TALKATIVE = "import time\nfor i in range(8):\n    print(i, flush=True); time.sleep(0.25)"


def test_a_silent_command_gets_heartbeats_and_keeps_its_output_and_exit_code():
    out = io.StringIO()
    code = heartbeat.run([sys.executable, "-c", QUIET_THEN_TALK], "baking", every=0.8, out=out)
    lines = out.getvalue().splitlines()
    assert code == 3
    assert lines[0] == "start" and lines[-1] == "end"
    beats = [line for line in lines if line.startswith("== baking: still working (")]
    assert 2 <= len(beats) <= 4, lines


def test_a_talkative_command_gets_none():
    out = io.StringIO()
    assert heartbeat.run([sys.executable, "-c", TALKATIVE], "baking", every=0.8, out=out) == 0
    assert "still working" not in out.getvalue()
    assert out.getvalue().split() == [str(i) for i in range(8)]


def test_quiet_python_code_gets_heartbeats():
    out = io.StringIO()
    with heartbeat.quiet_step("building the root", every=0.5, out=out):
        time.sleep(1.8)
    assert out.getvalue().count("== building the root: still working") >= 2


def test_the_shell_helper_beats_while_a_command_is_quiet_and_returns_its_code():
    script = 'source tools/ci/heartbeat.sh; bakery_with_heartbeat "installing" bash -c "sleep 3.5; exit 4"; echo "rc=$?"'
    result = subprocess.run(["bash", "-c", script], cwd=str(REPO_ROOT), capture_output=True, text=True, check=True,
                            env=dict(os.environ, BAKERY_HEARTBEAT_SECONDS="1"))
    lines = result.stdout.splitlines()
    assert lines[-1] == "rc=4"
    assert 2 <= len([line for line in lines if line.startswith("== installing: still working (")]) <= 4, lines


def test_the_forwarder_passes_bytes_at_once_and_beats_on_silence():
    """`step | python -m tools.heartbeat`: pytest's dots (no newline) pass through unchanged and in
    order, a heartbeat comes only after the silence, and the forwarder ends with its input."""
    producer = ("import sys, time\n"
                "for ch in '....':\n"
                "    sys.stdout.write(ch); sys.stdout.flush(); time.sleep(0.1)\n"
                "time.sleep(2.2)\n"
                "sys.stdout.write('F.\\n')\n")
    script = "%s -c %s | %s -m tools.heartbeat --what unit --every 0.7" % (
        sys.executable, shlex.quote(producer), sys.executable)
    result = subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=str(REPO_ROOT), capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stdout.startswith("....\n== unit: still working (")
    assert result.stdout.endswith("F.\n")
    assert 2 <= result.stdout.count("still working") <= 4, result.stdout


def test_the_pipeline_keeps_the_steps_exit_code():
    script = "(echo out; exit 7) | %s -m tools.heartbeat --what x --every 5" % sys.executable
    result = subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=str(REPO_ROOT), capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 7 and result.stdout == "out\n"
