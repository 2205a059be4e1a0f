# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The bakery:* tag vocabulary, in one place. README.md's tag table documents the same names.

from __future__ import annotations

FAMILY = "bakery:family"              # images: the image line
VERSION = "bakery:version"            # images: the version of the bake
STAGE = "bakery:stage"                # images: base or service
SOURCE_IMAGE = "bakery:source-image"  # images, copies: <region>/<ami-id> it was built or copied from
SOURCE_NAME = "bakery:source-name"    # copies: the name of the image they were copied from
PARENT_IMAGE = "bakery:parent-image"  # service images: the base image they were built on
AL_RELEASE = "bakery:al-release"      # images: the Amazon Linux release pinned inside
BAKE_LEVEL = "bakery:bake-level"      # images: minimal, standard or full
BUILD_ID = "bakery:build-id"          # images, snapshots: one bake, for idempotent reruns
RUN_ID = "bakery:run-id"              # every temporary resource: one run, for cleanup and sweep
EXPIRES_AT = "bakery:expires-at"      # temporary resources (and images until finished): sweep after
KEEP = "bakery:keep"                  # images: "true" protects from pruning
PREVIOUS_IMAGE = "bakery:previous-image"  # channel parameters (SSM): the image ID the last change replaced
SBOM_SHA256 = "bakery:sbom-sha256"    # images: the sha256 of the image's CycloneDX SBOM file (bake_sbom)
REVOKED = "bakery:revoked"            # images: "true" once their version was revoked; never on a channel again
SHARED_WITH = "bakery:shared-with"    # images, copies: whom they are shared with (_share's record; :2, :3 ... go on)
RESTORED_AT = "bakery:restored-at"    # images: when ami_prune state=restored last enabled them again
PURPOSE = "bakery:purpose"            # instances of a run other than its builder: "test" (ami_builder purpose=test)

ALL = (FAMILY, VERSION, STAGE, SOURCE_IMAGE, SOURCE_NAME, PARENT_IMAGE, AL_RELEASE, BAKE_LEVEL, BUILD_ID,
       RUN_ID, EXPIRES_AT, KEEP, REVOKED, SBOM_SHA256, SHARED_WITH, RESTORED_AT, PURPOSE)

# EC2's limits on the tags of one resource.
MAX_TAGS = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
RESERVED_PREFIX = "aws:"
