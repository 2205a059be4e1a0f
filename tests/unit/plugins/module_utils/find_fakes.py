# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-memory EC2 and SSM stand-ins for the ami_find tests: DescribeImages with the filters,
Owners, ExecutableUsers, IncludeDeprecated and MaxResults/NextToken paging ami_find uses, and
a record of every call so tests can prove what was (not) asked."""
from __future__ import annotations

import datetime
import re

import botocore.exceptions

ACCOUNT = "123456789012"


def image(image_id, name, owner="137112412989", arch="x86_64", virt="hvm", root="ebs", state="available",
          created="2024-01-01T00:00:00.000Z", tags=None, deprecation=None, alias=None, public=True, shared=False):
    data = {
        "ImageId": image_id,
        "Name": name,
        "OwnerId": owner,
        "Architecture": arch,
        "VirtualizationType": virt,
        "RootDeviceType": root,
        "State": state,
        "CreationDate": created,
        "Public": public,
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        "_shared": shared,
    }
    if alias:
        data["ImageOwnerAlias"] = alias
    if deprecation:
        data["DeprecationTime"] = deprecation
    return data


def _glob(pattern, value):
    if value is None:
        return False
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, str(value)) is not None


_FIELDS = {
    "image-id": "ImageId", "owner-id": "OwnerId", "owner-alias": "ImageOwnerAlias", "name": "Name",
    "architecture": "Architecture", "virtualization-type": "VirtualizationType",
    "root-device-type": "RootDeviceType", "state": "State", "creation-date": "CreationDate",
}


def _value(img, key):
    if key.startswith("tag:"):
        return next((t["Value"] for t in img["Tags"] if t["Key"] == key[4:]), None)
    if key == "is-public":
        return "true" if img["Public"] else "false"
    return img.get(_FIELDS[key])


class FakeEC2:
    def __init__(self, images, now=None):
        self.images = list(images)
        self.calls = []
        self.now = now or datetime.datetime.now(datetime.timezone.utc)

    def can_paginate(self, _operation):
        return True

    def describe_images(self, **params):
        self.calls.append(params)
        result = []
        for img in self.images:
            if "Owners" in params:
                owners = [ACCOUNT if o == "self" else o for o in params["Owners"]]
                if img["OwnerId"] not in owners and img.get("ImageOwnerAlias") not in owners:
                    continue
            if "ExecutableUsers" in params and not (img["Public"] or img["_shared"]):
                continue
            if not all(any(_glob(v, _value(img, f["Name"])) for v in f["Values"]) for f in params.get("Filters", [])):
                continue
            if not params.get("IncludeDeprecated") and img.get("DeprecationTime") and img["OwnerId"] != ACCOUNT \
                    and img["DeprecationTime"] <= self.now.strftime("%Y-%m-%dT%H:%M:%S.000Z"):
                continue
            result.append({k: v for k, v in img.items() if not k.startswith("_")})
        result.sort(key=lambda i: i["ImageId"])
        start = int(params.get("NextToken") or 0)
        size = params.get("MaxResults") or len(result) or 1
        page = result[start:start + size]
        answer = {"Images": page}
        if start + size < len(result):
            answer["NextToken"] = str(start + size)
        return answer


class FakeSSM:
    def __init__(self, parameters):
        self.parameters = dict(parameters)
        self.calls = []

    def get_parameter(self, Name):  # noqa: N803  (the boto3 keyword)
        self.calls.append(Name)
        if Name not in self.parameters:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ParameterNotFound", "Message": "not found"}}, "GetParameter")
        return {"Parameter": {"Name": Name, "Type": "String", "Value": self.parameters[Name]}}
