# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The distributions ami_find knows by name. This file is data: one dict literal (AnsiballZ ships
# only .py module_utils to the target, so the catalog cannot be a YAML or JSON file).
#
# Each entry:
#   title           what the distribution is called in messages
#   owners          account IDs of the publisher in the commercial partition (an image named
#                   like an official one but published by anyone else is never picked)
#   names           DescribeImages name glob per EC2 architecture (x86_64, arm64, i386)
#   ssm             public SSM parameter whose value is the current image, per architecture;
#                   absent where the publisher has none
#   family          the release parser family (see _release.release_from_ami_name)
#
# Keys are the distro names ami_find accepts and the names release_from_ami_name returns.

from __future__ import annotations

_AMAZON = "137112412989"
_CANONICAL = "099720109477"
_DEBIAN = "136693071363"
_RED_HAT = "309956199498"

_AL_SSM = "/aws/service/ami-amazon-linux-latest/"
_UBUNTU_SSM = "/aws/service/canonical/ubuntu/server/"

CATALOG = {
    "al2023": {
        "title": "Amazon Linux 2023",
        "owners": [_AMAZON],
        "names": {
            "x86_64": "al2023-ami-2023.*-kernel-*-x86_64",
            "arm64": "al2023-ami-2023.*-kernel-*-arm64",
        },
        "ssm": {
            "x86_64": _AL_SSM + "al2023-ami-kernel-default-x86_64",
            "arm64": _AL_SSM + "al2023-ami-kernel-default-arm64",
        },
        "family": "amazon-linux",
    },
    "al2023-minimal": {
        "title": "Amazon Linux 2023 (minimal)",
        "owners": [_AMAZON],
        "names": {
            "x86_64": "al2023-ami-minimal-2023.*-kernel-*-x86_64",
            "arm64": "al2023-ami-minimal-2023.*-kernel-*-arm64",
        },
        "ssm": {
            "x86_64": _AL_SSM + "al2023-ami-minimal-kernel-default-x86_64",
            "arm64": _AL_SSM + "al2023-ami-minimal-kernel-default-arm64",
        },
        "family": "amazon-linux",
    },
    "al2": {
        "title": "Amazon Linux 2",
        "owners": [_AMAZON],
        "names": {
            "x86_64": "amzn2-ami-hvm-2.0.*-x86_64-gp2",
            "arm64": "amzn2-ami-hvm-2.0.*-arm64-gp2",
        },
        "ssm": {
            "x86_64": _AL_SSM + "amzn2-ami-hvm-x86_64-gp2",
            "arm64": _AL_SSM + "amzn2-ami-hvm-arm64-gp2",
        },
        "family": "amazon-linux",
    },
    "amzn": {
        "title": "the Amazon Linux AMI 2018.03",
        "owners": [_AMAZON],
        "names": {
            "x86_64": "amzn-ami-hvm-2018.03.*-x86_64-gp2",
        },
        "ssm": {
            "x86_64": _AL_SSM + "amzn-ami-hvm-x86_64-gp2",
        },
        "family": "amazon-linux",
    },
    "ubuntu-24.04": {
        "title": "Ubuntu 24.04 LTS (Noble Numbat)",
        "owners": [_CANONICAL],
        "names": {
            "x86_64": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*",
            "arm64": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*",
        },
        "ssm": {
            "x86_64": _UBUNTU_SSM + "24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
            "arm64": _UBUNTU_SSM + "24.04/stable/current/arm64/hvm/ebs-gp3/ami-id",
        },
        "family": "ubuntu",
    },
    "ubuntu-22.04": {
        "title": "Ubuntu 22.04 LTS (Jammy Jellyfish)",
        "owners": [_CANONICAL],
        "names": {
            "x86_64": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",
            "arm64": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-*",
        },
        "ssm": {
            "x86_64": _UBUNTU_SSM + "22.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
            "arm64": _UBUNTU_SSM + "22.04/stable/current/arm64/hvm/ebs-gp2/ami-id",
        },
        "family": "ubuntu",
    },
    "ubuntu-20.04": {
        "title": "Ubuntu 20.04 LTS (Focal Fossa)",
        "owners": [_CANONICAL],
        "names": {
            "x86_64": "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*",
            "arm64": "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-arm64-server-*",
        },
        "ssm": {
            "x86_64": _UBUNTU_SSM + "20.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
            "arm64": _UBUNTU_SSM + "20.04/stable/current/arm64/hvm/ebs-gp2/ami-id",
        },
        "family": "ubuntu",
    },
    "debian-12": {
        "title": "Debian 12 (bookworm)",
        "owners": [_DEBIAN],
        "names": {
            "x86_64": "debian-12-amd64-*",
            "arm64": "debian-12-arm64-*",
        },
        "ssm": {
            "x86_64": "/aws/service/debian/release/12/latest/amd64",
            "arm64": "/aws/service/debian/release/12/latest/arm64",
        },
        "family": "debian",
    },
    "debian-11": {
        "title": "Debian 11 (bullseye)",
        "owners": [_DEBIAN],
        "names": {
            "x86_64": "debian-11-amd64-*",
            "arm64": "debian-11-arm64-*",
        },
        "ssm": {
            "x86_64": "/aws/service/debian/release/11/latest/amd64",
            "arm64": "/aws/service/debian/release/11/latest/arm64",
        },
        "family": "debian",
    },
    "rhel-9": {
        "title": "Red Hat Enterprise Linux 9",
        "owners": [_RED_HAT],
        "names": {
            "x86_64": "RHEL-9.*_HVM-*-x86_64-*",
            "arm64": "RHEL-9.*_HVM-*-arm64-*",
        },
        "family": "rhel",
    },
    "rhel-8": {
        "title": "Red Hat Enterprise Linux 8",
        "owners": [_RED_HAT],
        "names": {
            "x86_64": "RHEL-8.*_HVM-*-x86_64-*",
            "arm64": "RHEL-8.*_HVM-*-arm64-*",
        },
        "family": "rhel",
    },
}
