# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The faster DescribeImages serialization answers exactly what moto's own would.

Runs in a child process: installing the patches changes moto's classes for the whole process,
which must not leak into other tests of the session.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import re, sys
from datetime import datetime, timezone
sys.path.insert(0, sys.argv[1])
from tools.local_aws import patches
patches.install()
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import get_serializer_class
from moto.core.utils import get_service_model
from moto.ec2.models import ec2_backends
from moto.ec2.responses import EC2Response

def body(result):
    model = get_service_model("ec2")
    context = ActionContext(model, model.operation_model("DescribeImages"), get_serializer_class("ec2", "ec2"), EC2Response())
    return re.sub(r"<requestId>[^<]*</requestId>", "", result.execute_result(context)[2])

backend = ec2_backends["123456789012"]["us-west-1"]
image = backend.register_image(
    "serialization-check", "d", architecture="arm64", root_device_name="/dev/xvda", imds_support="v2.0",
    tag_specifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]}],
)
patches._set_deprecation(image, datetime(2031, 1, 1, tzinfo=timezone.utc))
images = [image] + list(backend.amis.values())[:50]
slow = body(ActionResult({"Images": images}))
fast = body(patches._fast_result({"Images": images}))
assert fast == slow, "bodies differ"
assert "<deprecationTime>2031-01-01T00:00:00.000Z</deprecationTime>" in fast
assert re.search(r"<creationDate>\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.000Z</creationDate>", fast)
print("same", fast.count("<imageId>"))
"""


def test_fast_describe_images_body_equals_moto():
    result = subprocess.run([sys.executable, "-c", CHECK, str(REPO_ROOT)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "same 51"
