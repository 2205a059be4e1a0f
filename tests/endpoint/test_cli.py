# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server command: ready line, free port, clean stop on SIGTERM/SIGINT, bad options."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tools.local_aws.control import SERVER


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_ready_line_and_clean_stop(signum):
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0", "--copy-delay", "7",
         "--fault-actions", "CopyImage,CreateImage", "--preload-regions", "us-east-1"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"bakery local AWS endpoint: http://127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        assert int(match.group(1)) > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/_bakery/config") as response:
            config = json.loads(response.read())
        assert (config["copy_delay"], config["fault_actions"]) == (7.0, ["CopyImage", "CreateImage"])
        started = time.monotonic()
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_missing_catalog_is_an_error():
    result = subprocess.run(
        [sys.executable, str(SERVER), "--port", "0", "--amis", "/nonexistent/amis.json"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "--amis: no such file" in result.stderr
