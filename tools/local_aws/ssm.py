# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SSM Parameter Store behaviour moto 5.x lacks and bakery.ami's image channels rely on.

Parameters of DataType aws:ec2:image, as the SSM API reference describes PutParameter for them:

- the value is checked for the AMI ID format at once: a value that is not ``ami-`` and 8 or 17
  hex digits, or a Type other than String, answers ValidationException and stores nothing;
- whether the image exists in the region is checked afterwards, asynchronously: PutParameter
  answers success (the version the write would have had) and, when the image does not exist in
  that region's EC2, the parameter is neither created nor updated, so its value and history stay
  as they were. The endpoint counts each such dropped write under ``ssm_image_rejected`` in
  ``GET /_bakery/counts``.

moto stored any value under that DataType. ``install()`` is called once by patches.install().
"""
from __future__ import annotations

import re
import types
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ssm import models as ssm_models
from moto.ssm.exceptions import ParameterAlreadyExists, ValidationException

from tools.local_aws.state import STATE

IMAGE_DATA_TYPE = "aws:ec2:image"
_AMI_ID = re.compile(r"ami-([0-9a-f]{8}|[0-9a-f]{17})")
_INSTALLED = False
_ORIGINAL: dict[str, Any] = {}


def _image_exists(backend: Any, image_id: str) -> bool:
    ec2 = ec2_backends[backend.account_id][backend.region_name]
    return image_id in ec2.amis


def put_parameter(self: Any, name: str, description: str, value: str, parameter_type: str, allowed_pattern: str,
                  keyid: str, overwrite: bool, tags: list[dict[str, str]], data_type: str, tier: str | None,
                  policies: str | None) -> Any:
    original = _ORIGINAL["put_parameter"]
    args = (self, name, description, value, parameter_type, allowed_pattern, keyid, overwrite, tags, data_type, tier,
            policies)
    if data_type != IMAGE_DATA_TYPE:
        return original(*args)
    versions = self._parameters.get(self._parameters.normalize_name(name)) or []
    effective_type = parameter_type or (versions[-1].parameter_type if versions else None)
    if effective_type not in (None, "String"):
        raise ValidationException(
            f"Parameter {name}: the data type {IMAGE_DATA_TYPE} is supported only for parameters of type String"
        )
    if not isinstance(value, str) or not _AMI_ID.fullmatch(value):
        raise ValidationException(
            f"Parameter {name}: the value {value!r} is not an AMI ID (ami- and 8 or 17 hex digits), which the "
            f"data type {IMAGE_DATA_TYPE} requires"
        )
    if _image_exists(self, value):
        return original(*args)
    # The image does not exist in this region: SSM answers the write and drops it once its
    # asynchronous check fails. The checks PutParameter makes at once still apply.
    if versions and not overwrite:
        raise ParameterAlreadyExists
    if not versions and not parameter_type:
        raise ValidationException("A parameter type is required when you create a parameter.")
    STATE.count("ssm_image_rejected")
    return types.SimpleNamespace(version=(versions[-1].version + 1) if versions else 1,
                                 tier=tier or self.default_parameter_tier)


def install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    backend = ssm_models.SimpleSystemManagerBackend
    _ORIGINAL["put_parameter"] = backend.put_parameter
    backend.put_parameter = put_parameter
