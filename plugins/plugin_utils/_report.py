# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The bake's outputs from its plan (bakery.ami.bake_plan) and the results of its steps
# (the bake_results fact playbooks/bake.yml collects): bake-report.json, the Packer-format build
# for bake-manifest.json, launch-user-data.yml and the image's SBOM (made by the bake with the
# bakery.ami.sbom filter, bake_results.sbom). bakery.ami.bake_outputs writes them.

from __future__ import annotations

import typing as t

from ansible_collections.bakery.ami.plugins.module_utils._cloudinit_protections import PROTECTIONS

# Phase boundaries the bake marks (bake_results.marks), in order; a phase lasts from the mark
# before it to its own.
PHASES = (("validate", "plan"), ("source", "source"), ("builder", "builder"), ("customize", "customize"),
          ("publish", "publish"), ("cleanup", "cleanup"))


def phases_seconds(marks: t.Mapping[str, float]) -> dict:
    """Seconds per phase from the marks; phases whose marks are missing are left out."""
    seconds = {}
    previous = marks.get("start")
    for phase, mark in PHASES:
        if mark in marks and previous is not None:
            seconds[phase] = round(float(marks[mark]) - float(previous), 2)
        if mark in marks:
            previous = marks[mark]
    if "start" in marks and previous is not None:
        seconds["total"] = round(float(previous) - float(marks["start"]), 2)
    return seconds


def protected_paths(protect: t.Iterable[str], customized: t.Iterable[str]) -> list:
    """The files first boot must leave as baked: the ones the bake wrote and those of each
    cloud-init protection (glob patterns left out: the boot check compares files)."""
    paths = list(customized)
    for name in protect:
        paths += [p for p in PROTECTIONS.get(name, {}).get("paths", []) if not any(c in p for c in "*?[")]
    return list(dict.fromkeys(paths))


def status(bake: dict, results: dict) -> tuple:
    """(failed phase or None, error or None)."""
    failed = results.get("failed") or {}
    if failed.get("phase"):
        return failed["phase"], failed.get("error") or ""
    return None, None


def report(bake: dict, results: dict, hook_report: t.Optional[dict] = None) -> dict:
    """bake-report.json: what the bake made, from what, how, and how long each phase took. Keys a
    hook reports (bake_hook_report) are added where the bake's own keys do not use them."""
    failed_phase, error = status(bake, results)
    source = results.get("source") or {}
    run = results.get("builder_run") or {}
    publish = results.get("publish") or {}
    customize = bake.get("customize") or {}
    builder = results.get("builder") or {}
    document = {
        "run_id": bake["run_id"],
        "status": "failed" if failed_phase else "succeeded",
        "failed_phase": failed_phase,
        "error": error,
        "family": bake["family"],
        "stage": bake["stage"],
        "version": bake["version"],
        "name": bake["name"],
        "build_id": bake["build_id"],
        "bake_level": bake["level"],
        "builder": bake["builder"]["mode"],
        "builder_type": builder.get("builder_type"),
        # the type the builder was launched with, and every RunInstances attempt ({instance_type, error_code})
        "instance_type": builder.get("instance_type"),
        "instance_type_attempts": list(builder.get("instance_type_attempts") or []),
        "adopted": bool(results.get("adopted")),
        "source_image": {
            "region": bake["region"],
            "image_id": source.get("image_id"),
            "name": source.get("name"),
            "owner_id": source.get("owner_id"),
            "creation_date": source.get("creation_date"),
            "release": source.get("release"),
            "distro": source.get("distro"),
        },
        "parent_image": "%s/%s" % (bake["region"], source.get("image_id")) if bake["stage"] == "service" else None,
        "pinned_release": run.get("release") or None,
        "cloudinit_guard": run.get("guard") or None,
        "hygiene_scan": run.get("hygiene") or None,
        "customizations": {
            "level": bake["level"],
            "baked": customize.get("baked", {}),
            "launch": customize.get("launch", {}),
            "protected_paths": protected_paths(bake["cloudinit"]["protect"], run.get("customized_paths") or []),
        },
        "images": publish.get("images", {}) if not failed_phase else {},
        "copies": publish.get("copies", {}),
        "prune": publish.get("prune", {}),
        # channel name -> region -> {name, before, after, changed} (bake_channels)
        "channels": results.get("channels") or {},
        # launch template -> region -> {version, action, ...} (bake_launch_templates)
        "launch_templates": publish.get("launch_templates", {}),
        "rollback": results.get("rollback"),
        # the image test stage: [{name, ok, seconds}] (bake_test), or "skipped"
        "tests": tests(bake, results),
        "tests_seconds": results.get("tests_seconds"),
        "cleanup_errors": list(results.get("cleanup_errors") or []),
        "phases_seconds": phases_seconds(results.get("marks") or {}),
        # the image's CycloneDX SBOM: where, its sha256 (also the image's tag bakery:sbom-sha256), how many packages
        "sbom": sbom_summary(bake, results),
        "outputs": {
            "manifest": bake["paths"]["manifest"],
            "report": bake["paths"]["report"],
            "launch_user_data": bake["paths"]["user_data"],
        },
        "warnings": [],
    }
    if publish.get("prune_error"):
        document["warnings"].append("prune: the lifecycle of %s did not run: %s" % (bake["family"], publish["prune_error"]))
    if (bake.get("sbom") or {}).get("enabled") and not failed_phase and not results.get("adopted") \
            and document["sbom"] is None:
        document["warnings"].append("sbom: no SBOM was made: nothing listed the builder's packages (a builder play that "
                                    "does not run bakery.ami.image_packages before generalize?)")
    if (bake.get("test") or {}).get("enabled") and "tests" not in results and not failed_phase \
            and not results.get("adopted"):
        document["warnings"].append("bake_test: the image was not tested: no test hook (bake_hooks.test) ran (a "
                                    "bake_builder_role of one's own launches no test instance for bake_test_roles)")
    if results.get("channel_error"):
        document["warnings"].append("channels: not all of %s point at the new images: %s"
                                    % (", ".join(bake.get("channels", {}).get("names", [])), results["channel_error"]))
    for key, value in (hook_report or {}).items():
        if key == "warnings":
            document["warnings"] += list(value or [])
        elif key not in document:
            document[key] = value
    return document


def tests(bake: dict, results: dict) -> t.Any:
    """The tests of the image test stage as run ([{name, ok, seconds, ...}]), "skipped" when the bake
    does not test (bake_test: false) or the image was adopted from an earlier run, and [] when the
    bake failed before the stage."""
    if not (bake.get("test") or {}).get("enabled", True):
        return "skipped"
    if "tests" in results:
        return list(results["tests"])
    return "skipped" if results.get("adopted") or not status(bake, results)[0] else []


def sbom_summary(bake: dict, results: dict) -> t.Optional[dict]:
    """What the report says of the SBOM (None when none is written: bake_sbom false, the image
    adopted from an earlier run, or the bake failed)."""
    sbom = results.get("sbom")
    if status(bake, results)[0] or not isinstance(sbom, dict) or not sbom.get("document"):
        return None
    return {key: sbom.get(key) for key in ("path", "sha256", "components", "spec_version")}


def manifest_build(bake: dict, results: dict) -> t.Optional[dict]:
    """This build in Packer's manifest format (None when the bake failed: no build to record)."""
    if status(bake, results)[0]:
        return None
    images = (results.get("publish") or {}).get("images", {})
    builder = results.get("builder") or {}
    source = results.get("source") or {}
    build = {
        "name": bake["family"],
        "builder_type": builder.get("builder_type") or "amazon-ebs",
        "build_time": int(float((results.get("marks") or {}).get("start", 0))),
        "files": None,
        "artifact_id": ",".join("%s:%s" % (region, image) for region, image in images.items()),
        "packer_run_uuid": bake["run_id"],
        "custom_data": {
            "family": bake["family"],
            "version": bake["version"],
            "stage": bake["stage"],
            "bake_level": bake["level"],
            "build_id": bake["build_id"],
            "image_name": bake["name"],
            "source_image": "%s/%s" % (bake["region"], source.get("image_id")),
            "adopted": "true" if results.get("adopted") else "false",
        },
    }
    if builder.get("instance_type"):
        build["custom_data"]["instance_type"] = builder["instance_type"]
    endpoint = (bake.get("aws") or {}).get("endpoint_url")
    if endpoint:
        # the image IDs mean something only on that endpoint (a local one lives as long as its process)
        build["custom_data"]["endpoint_url"] = endpoint
    return build


def outputs(bake: dict, results: dict, hook_report: t.Optional[dict] = None) -> dict:
    """The options of bake_outputs for the bake's files."""
    options = {
        "report_path": bake["paths"]["report"],
        "report": report(bake, results, hook_report),
        "user_data_path": bake["paths"]["user_data"],
        "user_data": (bake.get("customize") or {}).get("user_data", {}),
    }
    build = manifest_build(bake, results)
    if build is not None:
        options.update(manifest_path=bake["paths"]["manifest"], manifest_build=build)
    if sbom_summary(bake, results) is not None:
        options.update(sbom_path=results["sbom"]["path"], sbom=results["sbom"]["document"])
    return options


def summary(document: dict) -> list:
    """The lines the bake prints at its end."""
    lines = ["bake %s%s: %s (%s, run %s)" % (
        document["status"], " in phase %s" % document["failed_phase"] if document["failed_phase"] else "",
        document["name"], document["bake_level"], document["run_id"])]
    source = document["source_image"]
    lines.append("source: %s/%s %s" % (source["region"], source["image_id"], source["name"] or ""))
    lines += ["image %s: %s" % item for item in document["images"].items()]
    lines.append("adopted an existing image of this build" if document["adopted"] else "new image")
    lines.append("seconds per phase: " + ", ".join("%s=%s" % kv for kv in document["phases_seconds"].items()))
    if isinstance(document.get("api_calls"), dict):
        lines.append("API calls: %s" % document["api_calls"].get("total"))
    cache = document.get("local_cache")
    if isinstance(cache, dict) and "bytes" in cache:
        removed = cache.get("removed_archives") or []
        lines.append("local cache: %.0f MB in %s, %s snapshot archive(s)%s" % (
            cache["bytes"] / 1e6, cache.get("dir"), cache.get("archives"),
            "; removed the archives of %d image(s) no longer registered" % len(removed) if removed else ""))
    if document.get("sbom"):
        sbom = document["sbom"]
        lines.append("SBOM: %s (%s packages, sha256 %s)" % (sbom["path"], sbom["components"], sbom["sha256"]))
    lines += ["warning: %s" % w for w in document["warnings"]]
    lines.append("report: %s" % document["outputs"]["report"])
    return lines
