# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bake's SBOM on real roots: package inventory, CycloneDX document, schema validation.

    .venv/bin/python bench/sbom/run.py [--rounds 5]

For each cached Debian root of tools/rootfs (bookworm, trixie) the dpkg status database and
os-release are extracted into a temporary root, then timed in-process:

- inventory: plugins/module_utils/_packages.py reading the status database (what
  bakery.ami.image_packages does on the builder);
- document: plugins/plugin_utils/_sbom.py making the CycloneDX 1.6 JSON with cyclonedx-python-lib
  (what the bake's bakery.ami.sbom filter does on the controller; the first run, which imports the
  library, separately);
- validate: the library's JSON schema validator (the tests only; the bake does not validate).

Medians of --rounds runs. Not a timed test: figures only.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tools.local_builder import collection_module  # noqa: E402
from tools.rootfs import harness  # noqa: E402

MEMBERS = ("./var/lib/dpkg/status", "./usr/lib/os-release", "./etc/os-release")


def timed(function, rounds, *args):
    times = []
    for _round in range(rounds):
        start = time.perf_counter()
        value = function(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    packages = collection_module("plugins.module_utils._packages")
    sbom = collection_module("plugins.plugin_utils._sbom")
    print("# %s, %d CPUs, load average %.1f, Python %s, %d rounds" % (
        platform.machine(), os.cpu_count() or 0, os.getloadavg()[0], platform.python_version(), args.rounds))
    print("| suite | packages | inventory s | first document s | document s | bytes | validate s |")
    print("|---|---|---|---|---|---|---|")
    for suite in ("bookworm", "trixie"):
        with tempfile.TemporaryDirectory() as root:
            tarball = harness.ensure_image(suite=suite)
            subprocess.run(["tar", "-xf", str(tarball), "-C", root] + list(MEMBERS), check=True)
            inventory_s, inventory = timed(packages.inventory, args.rounds, root)
            start = time.perf_counter()
            sbom.make(inventory, "bench", "1", "2026-01-01T00:00:00Z", "")
            first_s = time.perf_counter() - start
            document_s, made = timed(sbom.make, args.rounds, inventory, "bench", "1", "2026-01-01T00:00:00Z", "")
            validate_s, problem = timed(sbom.validate, 1, made["document"])
            assert problem is None, problem
            row = (suite, inventory["count"], inventory_s, first_s, document_s, len(made["document"]), validate_s)
            print("| %s | %d | %.3f | %.2f | %.2f | %d | %.1f |" % row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
