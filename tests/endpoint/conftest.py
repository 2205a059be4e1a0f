# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One local AWS endpoint for the whole endpoint test session; state reset before each test."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from botocore.config import Config  # noqa: E402

from tools.local_aws.control import LocalAws  # noqa: E402

# botocore's ``max_attempts`` counts retries (1 still means one retry); ``total_max_attempts``
# counts every attempt, so 1 means the request is sent exactly once.
NO_RETRY = Config(retries={"total_max_attempts": 1})


@pytest.fixture(scope="session")
def endpoint():
    with LocalAws.start(port=0) as aws:
        yield aws


@pytest.fixture
def aws(endpoint):
    endpoint.reset()
    return endpoint


@pytest.fixture
def ec2(aws):
    return aws.client("ec2", "us-east-1", config=NO_RETRY)


@pytest.fixture
def ec2_west(aws):
    return aws.client("ec2", "eu-west-1", config=NO_RETRY)
