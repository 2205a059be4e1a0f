# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bake_outputs (the action plugin): the malformed-input cases it had before the corpus, and two
of issue 17's item 14 to show the runner covers it. Its full hostile set lives with the plugin's
own tests (another engineer's file); this one is not meant to grow.

The cases write under {root}/bake-out, so a file made by a call that fails shows as a change of
the image tree. Most carry a valid report too, so nothing at all may be written when any option
is bad.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import HUGE, NOT_YAML, Case, Link, Tree, refuse

MODULE = "bake_outputs"
AWS = False
MINIMUM = 2
AL = Tree("al2023")
REPORT = {"report_path": "{root}/bake-out/bake-report.json", "report": {"run_id": "rel-hostile"}}


def outputs(**extra) -> dict:
    return dict(REPORT, **extra)


CASES = [
    Case("report-path-without-report", {"report_path": "{root}/bake-out/bake-report.json"}, refuse("report"), tree=AL),
    Case("report-not-yaml", outputs(report=NOT_YAML), refuse("report"), tree=AL),
    Case("report-path-wrong-type", outputs(report_path=12345), refuse("report_path"), tree=AL),
    Case("report-path-huge", outputs(report_path="{root}/" + HUGE), refuse("report_path"), tree=AL),
    Case("user-data-path-empty", outputs(user_data_path="", user_data={}), refuse("user_data_path"), tree=AL),
    Case("user-data-path-is-a-directory", outputs(user_data_path="{root}/etc", user_data={}), refuse("user_data_path"),
         tree=AL),
    Case("user-data-same-file-as-report", outputs(user_data_path="{root}/bake-out/bake-report.json", user_data={}),
         refuse("user_data_path"), tree=AL),
    Case("manifest-path-traversal", outputs(manifest_path="{root}/etc/image-id/../bake-manifest.json",
                                            manifest_build={"packer_run_uuid": "rel-hostile"}),
         refuse("manifest_path"), tree=AL),
    Case("manifest-not-json", outputs(manifest_path="{root}/etc/image-id", manifest_build={"packer_run_uuid": "x"}),
         refuse("manifest_path"), tree=AL),
    Case("manifest-build-without-uuid", outputs(manifest_path="{root}/bake-out/bake-manifest.json",
                                                manifest_build={"name": "rel-hostile"}), refuse("manifest_build"), tree=AL),
    Case("mode-not-octal", outputs(mode="rw-r--r--"), refuse("mode"), tree=AL),
    Case("mode-wrong-type", outputs(mode=420), refuse("mode"), tree=AL),
    Case("mode-huge", outputs(mode="7" * 5000), refuse("mode"), tree=AL),
    Case("unknown-option", outputs(colour="red"), refuse("colour"), tree=AL),
    # issue 17, item 14
    Case("report-path-link-to-users-file", outputs(), refuse("report_path"), item=14,
         tree=Tree("al2023", Link("/bake-out/bake-report.json", "{outside}/home/alice/.ssh/authorized_keys"))),
    Case("mode-setuid", outputs(mode="4755"), refuse("mode"), tree=AL, item=14),
]
