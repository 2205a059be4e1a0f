# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline replacement for the pip bootstrap script ansible-test downloads.

ansible-test makes its sanity virtual environments without pip and fetches a bootstrap script
first. Where that download is impossible (a network that reaches only package registries),
tools/ci/sanity.sh places this file where ansible-test caches the script: it installs pip from
the wheel CPython bundles (ensurepip) and then runs `pip install` with ansible-test's arguments.
"""
from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

# Options of the real bootstrap script that plain `pip install` does not know.
_BOOTSTRAP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    ensurepip.bootstrap(upgrade=True)
    args = [arg for arg in sys.argv[1:] if arg not in _BOOTSTRAP_ONLY]
    # ansible-test runs this with a cleared environment: point pip at the system CA bundle.
    for bundle in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if bundle and os.path.exists(bundle):
            args = ["--cert", bundle] + args
            break
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    sys.exit(main())
