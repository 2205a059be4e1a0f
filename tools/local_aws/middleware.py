# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WSGI middleware in front of moto: action counts, seeded faults and the /_bakery/ control API."""
from __future__ import annotations

import io
import json
import os
import re
import time
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from tools.local_aws.state import FAULT_CODES, REFUSAL_CODES, ConfigError, BakeryState
from tools.local_aws.throttle import THROTTLE

_CREDENTIAL_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_FAULT_MESSAGES = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "InternalError": "An internal error has occurred.",
}
# instance_type_refusals: what RunInstances says for each refusal ({type} is the type asked for)
_REFUSAL_MESSAGES = {
    "InsufficientInstanceCapacity": "There is not enough {type} capacity in the Availability Zone of the request "
                                    "at this time; try another instance type or Availability Zone, or later.",
    "Unsupported": "The instance type {type} is not offered in the Availability Zone of the request.",
    "InstanceLimitExceeded": "The request exceeds the account's limit of running instances of type {type}.",
    "VcpuLimitExceeded": "The request exceeds the account's vCPU limit of the class of instance types {type} belongs to.",
}

StartResponse = Callable[..., Any]


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so moto can read it again."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.strip().isdigit():
        body = stream.read(int(length)) if int(length) else b""
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def identify(environ: dict[str, Any], body: bytes) -> tuple[str | None, str | None]:
    """Return (action, service) of an AWS request, or (None, None) when it is not one."""
    service = None
    match = _CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        service = match.group(2)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1], service
    params = parse_qs(environ.get("QUERY_STRING", ""))
    content_type = environ.get("CONTENT_TYPE", "")
    if environ.get("REQUEST_METHOD") == "POST" and "x-www-form-urlencoded" in content_type:
        params.update(parse_qs(body.decode("utf-8", "replace")))
    action = (params.get("Action") or [None])[0]
    if action:
        if service is None and (params.get("Version") or [""])[0] == "2016-11-15":
            service = "ec2"
        return action, service
    if service:
        method = environ.get("REQUEST_METHOD", "GET")
        # Recycle Bin is REST: its operation is the method and the path's first part
        first = environ.get("PATH_INFO", "").strip("/").split("/", 1)[0]
        operation = _RBIN_OPERATIONS.get((method, first)) if service == "rbin" else None
        return operation or f"{service}:{method}", service
    return None, None


_RBIN_OPERATIONS = {("POST", "list-rules"): "ListRules", ("POST", "rules"): "CreateRule", ("GET", "rules"): "GetRule",
                    ("DELETE", "rules"): "DeleteRule", ("PATCH", "rules"): "UpdateRule",
                    ("GET", "tags"): "ListTagsForResource", ("POST", "tags"): "TagResource",
                    ("DELETE", "tags"): "UntagResource"}


def region_of(environ: dict[str, Any]) -> str | None:
    """The region a signed request is for (its credential scope)."""
    match = _CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None


def query_params(environ: dict[str, Any], body: bytes) -> dict[str, list[str]]:
    params = parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("REQUEST_METHOD") == "POST" and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        params.update(parse_qs(body.decode("utf-8", "replace")))
    return params


def _ec2_error(code: str, message: str | None = None, status: int | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
    status = status or FAULT_CODES[code]
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}[status]
    request_id = str(uuid.uuid4())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message or _FAULT_MESSAGES[code]}</Message></Error></Errors>"
        f"<RequestID>{request_id}</RequestID></Response>"
    ).encode()
    headers = [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(body))),
               ("x-amzn-RequestId", request_id)]
    return f"{status} {reason}", headers, body


def _json(start_response: StartResponse, status: str, payload: Any) -> list[bytes]:
    body = json.dumps(payload, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# BAKERY_LOCAL_AWS_JOURNAL=FILE: every AWS request appended as "<epoch seconds> <region> <action>",
# for reading where a run's time goes (the counts have no times).
JOURNAL = os.environ.get("BAKERY_LOCAL_AWS_JOURNAL", "")


def _journal(action: str, region: str | None) -> None:
    with open(JOURNAL, "a", encoding="utf-8") as journal:
        journal.write(f"{time.time():.3f} {region or '-'} {action}\n")


class BakeryMiddleware:
    """Counts and faults every AWS request, serves /_bakery/ itself, hands the rest to moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]], state: BakeryState, reset_moto: Callable[[], None]) -> None:
        self.app = app
        self.state = state
        self.reset_moto = reset_moto

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_bakery/") or path == "/_bakery":
            return self.control(environ, start_response, path.rstrip("/"))
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        body = _read_body(environ)
        action, service = identify(environ, body)
        if action and service == "ec2":
            refusal = self.ec2_refusal(action, environ, body)
            if refusal is not None:
                start_response(refusal[0], refusal[1])
                return [refusal[2]]
        if action and JOURNAL:
            _journal(action, region_of(environ))
        if action:
            fault = self.state.draw_fault(action, service == "ec2")
            if fault:
                if self.state.config().get("fault_timing") == "after":
                    # Serve the request, then lose its answer.
                    self.state.count(action)
                    for _chunk in self.app(environ, lambda *args, **kwargs: None):
                        pass
                status, headers, payload = _ec2_error(fault)
                start_response(status, headers)
                return [payload]
            self.state.count(action)
        if service == "rbin":
            from tools.local_aws import retire  # pylint: disable=import-outside-toplevel

            return retire.rbin(environ, body, start_response, region_of(environ))
        return self.app(environ, start_response)

    def ec2_refusal(self, action: str, environ: dict[str, Any], body: bytes) -> tuple | None:
        """The answer to an EC2 request that is not served: throttled, or an action the endpoint is told
        this region lacks. Throttled requests are counted apart (GET /_bakery/throttle)."""
        if not THROTTLE.take(action, region_of(environ) or "us-east-1", query_params(environ, body)):
            return _ec2_error("RequestLimitExceeded")
        if action in self.state.get("unsupported_actions"):
            self.state.count(action)
            return _ec2_error("InvalidAction", f"The action {action} is not valid for this web service.", 400)
        if action == "RunInstances":
            refusals = self.state.get("instance_type_refusals")
            # EC2's default instance type when the request names none is m1.small
            instance_type = (query_params(environ, body).get("InstanceType") or ["m1.small"])[0]
            code = refusals.get(instance_type)
            if code is not None:
                self.state.count(action)
                return _ec2_error(code, _REFUSAL_MESSAGES[code].format(type=instance_type), REFUSAL_CODES[code])
        return None

    def control(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        route = (method, path)
        if route == ("GET", "/_bakery/counts"):
            return _json(start_response, "200 OK", self.state.counts())
        if route == ("POST", "/_bakery/counts/reset"):
            self.state.reset_counts()
            THROTTLE.reset_counts()
            return _json(start_response, "200 OK", self.state.counts())
        if route == ("GET", "/_bakery/config"):
            return _json(start_response, "200 OK", self.state.config())
        if route == ("POST", "/_bakery/config"):
            body = _read_body(environ)
            try:
                changes = json.loads(body.decode("utf-8") or "{}")
                return _json(start_response, "200 OK", self.state.configure(changes))
            except (ValueError, ConfigError) as error:
                return _json(start_response, "400 Bad Request", {"error": str(error)})
        if route == ("POST", "/_bakery/reset"):
            self.reset_moto()
            self.state.reset()
            THROTTLE.reset_counts()
            return _json(start_response, "200 OK", {"reset": True, "config": self.state.config()})
        if route == ("GET", "/_bakery/health"):
            return _json(start_response, "200 OK", {"ok": True})
        if route == ("GET", "/_bakery/throttle"):
            return _json(start_response, "200 OK", THROTTLE.report())
        if route == ("POST", "/_bakery/images"):
            from tools.local_aws import retire  # pylint: disable=import-outside-toplevel

            try:
                return _json(start_response, "200 OK", retire.set_image(json.loads(_read_body(environ).decode("utf-8") or "{}")))
            except (ValueError, retire.ControlError) as error:
                return _json(start_response, "400 Bad Request", {"error": str(error)})
        return _json(start_response, "404 Not Found", {"error": f"no control route {method} {path}"})
