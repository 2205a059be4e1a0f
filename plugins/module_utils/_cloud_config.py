# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# cloud-init's system configuration in an image, as cloud-init reads it: /etc/cloud/cloud.cfg,
# then every /etc/cloud/cloud.cfg.d/*.cfg in sorted (string) order, the last one winning. The
# guard (_cloudinit), the release lock (_release) and the image scan (_hygiene) all take the file
# set and its order from here. How a file's text is read stays with each caller: the guard parses
# YAML and refuses a malformed file, while the scan must answer on any file, hostile ones included.

from __future__ import annotations

import re
import typing as t

CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_CFG_D = "/etc/cloud/cloud.cfg.d"
DROPIN_SUFFIX = ".cfg"

# `network: {config: disabled}` (flow or block style) at the top level of one file.
_NETWORK_DISABLED = re.compile(
    r"(?m)^network:[ \t]*(?:\{[^}\n]*config:[ \t]*[\"']?disabled[\"']?|\n(?:[ \t]+.*\n|[ \t]*\n)*?[ \t]+config:[ \t]*"
    r"[\"']?disabled[\"']?[ \t]*$)")


class _Lister(t.Protocol):
    def entries(self, path: str) -> list: ...


def dropin_names(image: _Lister) -> list[str]:
    """The names of cloud.cfg.d's drop-ins in the order cloud-init reads them (lowest priority first).

    ``image`` lists a directory of the image (sorted, links not followed): an ImageRoot, or a
    caller's wrapper of one with its own error policy.
    """
    names = (entry.path.rsplit("/", 1)[1] for entry in image.entries(CLOUD_CFG_D))
    return sorted(name for name in names if name.endswith(DROPIN_SUFFIX))


def network_disabled(texts: t.Iterable[str]) -> bool:
    """Whether cloud.cfg and its drop-ins (their texts, in reading order) turn cloud-init's network
    configuration off: the last file with a top-level ``network:`` decides. Text only, so a file
    that is not valid YAML still gets an answer."""
    disabled = False
    for text in texts:
        if re.search(r"(?m)^network:", text):
            disabled = _NETWORK_DISABLED.search(text) is not None
    return disabled
