# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Deregistration protection of a published image, the same for the build-region image
# (ami_create) and every copy (ami_copy, ami_create's copy option):
#   protect           -> EnableImageDeregistrationProtection once the image is available
#   protect_cooldown  -> ... WithCooldown=true (EC2 keeps it protected 24 h after it is lifted)
# Protection is only ever turned on here; lifting it is ami_prune's (lift_protection). Pure (no AWS
# import), so the bake plan checks bake_protect with the same rules without loading boto3.

from __future__ import annotations

OFF = "disabled"
PLAIN = "enabled-without-cooldown"
COOLDOWN = "enabled-with-cooldown"


def suboptions(default: bool | None = False) -> dict:
    """The argument spec of protect and protect_cooldown.

    default None lets a caller tell "not given" from false (ami_create's copy option inherits the image's).
    """
    return dict(
        protect=dict(type="bool", default=default),
        protect_cooldown=dict(type="bool", default=default),
    )


def errors(params: dict, prefix: str = "") -> list:
    """The rules of the two options, each message naming its option (prefix: "copy." for a suboption)."""
    found = []
    for key in ("protect", "protect_cooldown"):
        value = params.get(key)
        if value is not None and not isinstance(value, bool):
            found.append(f"{prefix}{key}: must be true or false, got {value!r}")
    if found:
        return found
    if params.get("protect_cooldown") and not params.get("protect"):
        found.append(f"{prefix}protect_cooldown: applies only with {prefix}protect: true (it is the cooldown of the protection)")
    return found


def wanted(params: dict) -> str | None:
    """The DeregistrationProtection the image must show, or None when the task leaves it as it is."""
    if not params.get("protect"):
        return None
    return COOLDOWN if params.get("protect_cooldown") else PLAIN


def of(image: dict) -> str:
    """The image's DeregistrationProtection as DescribeImages shows it (disabled when absent)."""
    return image.get("DeregistrationProtection") or OFF


def needed(image: dict, want: str | None) -> str | None:
    """The protection to turn on for the image (want), or None when it already shows it or none is wanted.

    An image whose protection was lifted with a cooldown (disabled-after-<time>) is protected again.
    """
    if want is None or of(image) == want:
        return None
    return want


def with_cooldown(protection: str) -> bool:
    """EnableImageDeregistrationProtection's WithCooldown for a wanted protection."""
    return protection == COOLDOWN
