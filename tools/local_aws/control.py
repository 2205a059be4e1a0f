# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start, drive and stop the local AWS endpoint from Python (tests, benchmarks, the demo bake).

    from tools.local_aws.control import LocalAws

    with LocalAws.start(port=0, copy_delay=2) as aws:
        ec2 = aws.client("ec2", "us-east-1")
        ...
        aws.counts()["CopyImage"]

The control calls use the standard library only; ``client()`` imports boto3 when called.
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

SERVER = Path(__file__).resolve().with_name("server.py")
READY_PREFIX = "bakery local AWS endpoint: "
_OPTION_NAMES = {
    "create_delay": "--create-delay",
    "copy_delay": "--copy-delay",
    "register_delay": "--register-delay",
    "instance_start_delay": "--instance-start-delay",
    "instance_stop_delay": "--instance-stop-delay",
    "fault_rate": "--fault-rate",
    "fault_seed": "--fault-seed",
    "fault_actions": "--fault-actions",
    "fault_limit": "--fault-limit",
    "preload_regions": "--preload-regions",
}


class LocalAwsError(RuntimeError):
    """The endpoint did not start, or a control call failed."""


class LocalAws:
    """A handle on a running local endpoint (see ``start`` and ``connect``)."""

    def __init__(self, url: str, process: subprocess.Popen[str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.process = process

    # construction ---------------------------------------------------------------------------
    @classmethod
    def connect(cls, url: str) -> LocalAws:
        """Attach to an endpoint that is already running at ``url``."""
        return cls(url)

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        port: int = 0,
        amis: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        ready_timeout: float = 120.0,
        stop_timeout: float = 10.0,
        **config: Any,
    ) -> Iterator[LocalAws]:
        """Run server.py in a subprocess for the duration of the ``with`` block.

        ``config`` takes the control-API keys (create_delay=..., fault_rate=..., ...). Those the
        command line knows are passed as options; the rest are set through the control API.
        """
        command = [sys.executable, str(SERVER), "--host", host, "--port", str(port)]
        if amis is not None:
            command += ["--amis", os.fspath(amis)]
        late: dict[str, Any] = {}
        for key, value in config.items():
            option = _OPTION_NAMES.get(key)
            if option is None:
                late[key] = value
            elif key in ("fault_actions", "preload_regions"):
                command += [option, ",".join(value) if isinstance(value, (list, tuple)) else str(value)]
            else:
                command += [option, str(value)]
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            command,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            bufsize=1,
        )
        try:
            url = _wait_ready(process, ready_timeout)
            aws = cls(url, process)
            if late:
                aws.configure(**late)
            yield aws
        finally:
            _stop(process, stop_timeout)

    # control API ----------------------------------------------------------------------------
    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # nosec - local endpoint only
                return json.loads(response.read().decode() or "null")
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise LocalAwsError(f"{method} {path} failed: HTTP {error.code}: {detail}") from None
        except urllib.error.URLError as error:
            raise LocalAwsError(f"{method} {path} failed: {error.reason}") from None

    def configure(self, **config: Any) -> dict[str, Any]:
        """Change settings (create_delay, fault_rate, ...); returns the whole configuration."""
        return self._call("POST", "/_bakery/config", config)

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/_bakery/config")

    def counts(self) -> dict[str, int]:
        """Actions served so far, by action name (faulted requests are not in here)."""
        return self._call("GET", "/_bakery/counts")["counts"]

    def faults(self) -> dict[str, int]:
        """Requests answered with an injected fault, by action name."""
        return self._call("GET", "/_bakery/counts")["faults"]

    def throttled(self) -> dict[str, int]:
        """Requests answered RequestLimitExceeded by the token buckets (``throttle``), by action name."""
        return self._call("GET", "/_bakery/throttle")["throttled"]

    def set_image(self, region: str, image_id: str, **changes: Any) -> dict[str, Any]:
        """Backdate an image (``creation_date=``) or plant its last launch (``last_launched_time=``, None clears)."""
        return self._call("POST", "/_bakery/images", dict(changes, region=region, image_id=image_id))

    def reset_counts(self) -> None:
        self._call("POST", "/_bakery/counts/reset", {})

    def reset(self) -> None:
        """Reset moto's state, the counts and the configuration."""
        self._call("POST", "/_bakery/reset", {})

    def client(self, service: str, region: str = "us-east-1", **kwargs: Any) -> Any:
        """A boto3 client pointed at this endpoint with dummy credentials."""
        import boto3  # pylint: disable=import-outside-toplevel

        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )


def _wait_ready(process: subprocess.Popen[str], timeout: float) -> str:
    """Read the server's stdout until the ready line; keep draining it afterwards."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LocalAwsError(f"local AWS endpoint not ready after {timeout:g}s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise LocalAwsError(f"local AWS endpoint exited with code {process.wait()} before it was ready")
        if line.startswith(READY_PREFIX):
            return line[len(READY_PREFIX):].strip()


def _stop(process: subprocess.Popen[str], timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
