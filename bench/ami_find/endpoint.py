# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local AWS endpoint (tools/local_aws/server.py, same options) for the ami_find benchmark.

EC2 accepts wildcards in the DescribeImages `creation-date` filter (`2024-12-*`); moto 5.x
compares that filter to the exact timestamp only. Unless the endpoint already answers
wildcards, this wrapper adds them before the server starts, so that ami_find's newest-first
search is measured as it runs against EC2 (without it ami_find still answers right, through its
fallback pass, but slower).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _creation_date_wildcards() -> None:
    import datetime

    from moto.ec2.models.amis import Ami

    original = Ami.get_filter_value
    if getattr(original, "_creation_date_wildcards", False):
        return

    def get_filter_value(self, filter_name, method_name=None):
        if filter_name == "creation-date":
            value = self.creation_date
            if isinstance(value, datetime.datetime):
                return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            return str(value)
        return original(self, filter_name, method_name)

    get_filter_value._creation_date_wildcards = True
    Ami.get_filter_value = get_filter_value


def main() -> int:
    # moto must not be imported before server.main() has set MOTO_AMIS_PATH: patch at build time.
    from tools.local_aws import server

    build_app = server.build_app

    def build_app_with_wildcards():
        app = build_app()
        _creation_date_wildcards()
        return app

    server.build_app = build_app_with_wildcards
    return server.main()


if __name__ == "__main__":
    sys.exit(main())
