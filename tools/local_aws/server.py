# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start the local AWS endpoint: moto's server with bakery.ami's EC2 gap fills.

    python tools/local_aws/server.py --host 127.0.0.1 --port 5000 [--create-delay S] ...

Prints ``bakery local AWS endpoint: http://HOST:PORT`` once it accepts requests and stops
cleanly (exit 0) on SIGTERM or SIGINT.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

READY_PREFIX = "bakery local AWS endpoint: "


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Local AWS endpoint for bakery.ami (moto + gap fills)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to bind; 0 picks a free one (default 5000)")
    parser.add_argument("--create-delay", type=float, default=0.0, metavar="S", help="CreateImage pending seconds")
    parser.add_argument("--copy-delay", type=float, default=0.0, metavar="S", help="CopyImage pending seconds")
    parser.add_argument("--register-delay", type=float, default=0.0, metavar="S", help="RegisterImage pending seconds")
    parser.add_argument("--instance-start-delay", type=float, default=0.0, metavar="S",
                        help="seconds an instance stays pending after RunInstances/StartInstances")
    parser.add_argument("--instance-stop-delay", type=float, default=0.0, metavar="S",
                        help="seconds an instance stays stopping/shutting-down")
    parser.add_argument("--fault-rate", type=float, default=0.0, metavar="P", help="probability 0..1 an EC2 call fails")
    parser.add_argument("--fault-seed", type=int, default=0, metavar="N", help="seed of the fault sequence")
    parser.add_argument("--fault-actions", default="", metavar="A,B", help="only these actions may fail")
    parser.add_argument("--fault-limit", type=int, default=None, metavar="N", help="inject at most N faults, then none")
    parser.add_argument("--amis", default=None, metavar="PATH", help="image catalog (moto amis.json format)")
    parser.add_argument("--preload-regions", default="", metavar="R1,R2",
                        help="load the image catalog of these regions before printing the ready line")
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr (werkzeug)")
    return parser.parse_args(argv)


def initial_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {
        "create_delay": args.create_delay,
        "copy_delay": args.copy_delay,
        "register_delay": args.register_delay,
        "instance_start_delay": args.instance_start_delay,
        "instance_stop_delay": args.instance_stop_delay,
        "fault_rate": args.fault_rate,
        "fault_seed": args.fault_seed,
        "fault_actions": [name.strip() for name in args.fault_actions.split(",") if name.strip()],
        "fault_limit": args.fault_limit,
    }
    return config


def build_app() -> Any:
    """Import moto (after MOTO_AMIS_PATH is set), patch it and wrap its WSGI app."""
    from moto.moto_api._internal.models import moto_api_backend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from tools.local_aws import patches
    from tools.local_aws.middleware import BakeryMiddleware
    from tools.local_aws.state import STATE

    patches.install()
    return BakeryMiddleware(DomainDispatcherApplication(create_backend_app), STATE, moto_api_backend.reset)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.amis:
        path = os.path.abspath(args.amis)
        if not os.path.isfile(path):
            print(f"--amis: no such file: {args.amis}", file=sys.stderr)
            return 2
        os.environ["MOTO_AMIS_PATH"] = path
    os.environ.setdefault("MOTO_PORT", str(args.port))

    from werkzeug.serving import make_server

    from tools.local_aws.state import STATE, ConfigError

    try:
        STATE.configure(initial_config(args))
    except ConfigError as error:
        print(f"invalid option: {error}", file=sys.stderr)
        return 2
    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = build_app()
    preload = [region.strip() for region in args.preload_regions.split(",") if region.strip()]
    if preload:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ec2.models import ec2_backends

        for region in preload:
            ec2_backends[DEFAULT_ACCOUNT_ID][region].describe_images(ami_ids=None)
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    host, port = server.server_address[:2]
    os.environ["MOTO_PORT"] = str(port)

    def stop(signum: int, frame: Any) -> None:
        # shutdown() waits for serve_forever() to return, so it must not run on its thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{READY_PREFIX}http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    CODE = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Nothing is left to save: skip tearing down millions of moto objects (seconds with a catalog).
    os._exit(CODE)
