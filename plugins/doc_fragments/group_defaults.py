# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The AWS options that modules acting on files accept, and ignore, so that
    # module_defaults for group/bakery.ami.ami apply to every module of the collection.
    DOCUMENTATION = r"""
options:
  access_key:
    description:
      - Ignored; this module makes no AWS call. Accepted with the other AWS connection options so
        that O(ignore:region), credentials and O(ignore:endpoint_url) set once in
        C(module_defaults) for C(group/bakery.ami.ami) do not make this module fail.
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description: Ignored; see O(access_key).
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description: Ignored; see O(access_key).
    type: str
    aliases: [aws_session_token]
  profile:
    description: Ignored; see O(access_key).
    type: str
    aliases: [aws_profile]
  endpoint_url:
    description: Ignored; see O(access_key).
    type: str
    aliases: [aws_endpoint_url]
  validate_certs:
    description: Ignored; see O(access_key).
    type: bool
    default: true
  aws_ca_bundle:
    description: Ignored; see O(access_key).
    type: path
  aws_config:
    description: Ignored; see O(access_key).
    type: dict
  debug_botocore_endpoint_logs:
    description: Ignored; see O(access_key).
    type: bool
    default: false
  region:
    description: Ignored; see O(access_key).
    type: str
    aliases: [aws_region]
"""
