# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Every module of the collection is in the `ami` action group, so a play sets credentials,
# region and endpoint_url once with `module_defaults: {group/bakery.ami.ami: ...}`. Ansible then
# passes those options to the modules that act on files (ami_lock_release, cloudinit_guard,
# image_scan) too; they accept them here and ignore them, instead of failing with
# "Unsupported parameters". Names, aliases, types and defaults mirror amazon.aws's common
# options (a unit test keeps them in step).

from __future__ import annotations

GROUP_DEFAULT_OPTIONS = dict(
    access_key=dict(type="str", aliases=["aws_access_key_id", "aws_access_key"], no_log=False),
    secret_key=dict(type="str", aliases=["aws_secret_access_key", "aws_secret_key"], no_log=True),
    session_token=dict(type="str", aliases=["aws_session_token"], no_log=True),
    profile=dict(type="str", aliases=["aws_profile"]),
    endpoint_url=dict(type="str", aliases=["aws_endpoint_url"]),
    validate_certs=dict(type="bool", default=True),
    aws_ca_bundle=dict(type="path"),
    aws_config=dict(type="dict"),
    debug_botocore_endpoint_logs=dict(type="bool", default=False),
    region=dict(type="str", aliases=["aws_region"]),
)


def accept_group_defaults(argument_spec: dict) -> dict:
    """argument_spec plus the AWS options group defaults may carry (accepted, unused)."""
    spec = {name: dict(option, aliases=list(option.get("aliases", []))) for name, option in GROUP_DEFAULT_OPTIONS.items()}
    spec.update(argument_spec)
    return spec
