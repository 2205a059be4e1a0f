# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_scan: path options that name the whole image or the controller's home, and dirty images
whose directories lead out of the root.

The dirty trees are the /etc of the Debian 12 and 13 images with what a builder leaves behind
planted (hostile/trees.py: host keys, root's history and authorized_keys, cloud-init state, a
machine-id, leases, logs, a usable root password ...). Behind every hostile link the decoy holds
the same kinds of secrets: a scan that followed a link would report them.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import HUGE, NOT_YAML, Case, Escape, Tree, accept, all_of, findings, \
    in_root_paths, no_findings_under, refuse

MODULE = "image_scan"
AWS = False
AL = Tree("al2023")
DIRTY = Tree("dirty-debian-12")


def scan(**extra) -> dict:
    return dict({"root": "{root}"}, **extra)


def still_finds(*paths: str):
    """The scan ran over the image: these planted leftovers are reported."""
    def check(result, ctx):
        found = {f.get("path") for f in findings(result)}
        return ["does not report %s, planted in the image" % p for p in paths if p not in found]
    return check


def linked(suite: str, path: str, target: str) -> Tree:
    return Tree("dirty-" + suite, Escape(path, target))


def behind_link(prefix: str, *control: str):
    return accept("nothing behind the link is reported, the image's own leftovers are",
                  all_of(no_findings_under(prefix), in_root_paths, still_finds(*control)))


CASES = [
    # careless input
    Case("category-unknown", scan(categories=["nonsense"]), refuse("categories"), tree=AL),
    Case("category-huge", scan(categories=[HUGE]), refuse("categories"), tree=AL),
    Case("root-missing", scan(root="{root}/no/such/dir"), refuse("root"), tree=AL),
    Case("root-empty", {"root": ""}, refuse("root")),
    Case("root-is-a-file", {"root": "{file}"}, refuse("root")),
    Case("exclude-relative", scan(exclude=["../../etc"]), refuse("exclude"), tree=AL),
    Case("keep-key-not-a-key", scan(keep_authorized_keys=["not a key"]), refuse("keep_authorized_keys"), tree=AL),
    Case("bake-key-not-a-key", scan(bake_authorized_key="garbage"), refuse("bake_authorized_key"), tree=AL),
    Case("bake-path-relative", scan(bake_paths=["relative/path"]), refuse("bake_paths"), tree=AL),
    Case("bool-wrong-type", scan(fail_on_findings="sometimes"), refuse("fail_on_findings"), tree=AL),
    Case("categories-not-yaml", scan(categories=NOT_YAML), refuse("categories"), tree=AL),
    # excludes that hide the whole tree (issue 17, item 14: clean on a dirty tree)
    Case("exclude-slash", scan(exclude=["/"]), refuse("exclude"), tree=DIRTY, item=14),
    Case("exclude-slash-star", scan(exclude=["/*"]), refuse("exclude"), tree=DIRTY, item=14),
    Case("exclude-slash-double-star", scan(exclude=["/**"]), refuse("exclude"), tree=DIRTY, item=14),
    Case("exclude-star", scan(exclude=["*"]), refuse("exclude"), tree=DIRTY, item=14),
    Case("exclude-every-top-level-name", scan(exclude=["/?*"]), refuse("exclude"), tree=DIRTY, item=14),
    Case("exclude-letter-class", scan(exclude=["/[a-z]*"]), refuse("exclude"), tree=DIRTY, item=14),
    Case("exclude-tmp-dotdot", scan(exclude=["/tmp/.."]), refuse("exclude"), tree=DIRTY, item=2),
    Case("exclude-slash-dot", scan(exclude=["/."]), refuse("exclude"), tree=DIRTY, item=2),
    Case("exclude-double-slash", scan(exclude=["//"]), refuse("exclude"), tree=DIRTY, item=2),
    # '~' is the controller's home, never a path of the image (issue 17, item 14)
    Case("exclude-tilde", scan(exclude=["~"]), refuse("exclude"), tree=DIRTY, item=14),
    Case("exclude-tilde-root", scan(exclude=["~root"]), refuse("exclude"), tree=DIRTY, item=14),
    Case("exclude-home-variable", scan(exclude=["$HOME"]), refuse("exclude"), tree=DIRTY),
    Case("exclude-trailing-newline", scan(exclude=["/root/.bash_history\n"]), refuse("exclude"), tree=DIRTY, item=10),
    # bake paths that normalize to '/' (issue 17, item 2: generalize then removed the whole root)
    Case("bake-path-tmp-dotdot", scan(bake_paths=["/tmp/.."]), refuse("bake_paths"), tree=DIRTY, item=2),
    Case("bake-path-slash-dot", scan(bake_paths=["/."]), refuse("bake_paths"), tree=DIRTY, item=2),
    Case("bake-path-dotdot-chain", scan(bake_paths=["/../../.."]), refuse("bake_paths"), tree=DIRTY, item=2),
    Case("bake-path-tmp-two-up", scan(bake_paths=["/tmp/../.."]), refuse("bake_paths"), tree=DIRTY, item=2),
    Case("bake-path-tilde", scan(bake_paths=["~/.ssh/id_ed25519"]), refuse("bake_paths"), tree=DIRTY, item=14),
    Case("bake-path-trailing-newline", scan(bake_paths=["/root/bake-temp-key\n"]), refuse("bake_paths"), tree=DIRTY,
         item=10),
    # user names (issue 17, item 10)
    Case("keep-user-trailing-newline", scan(keep_authorized_keys=["root\n"]), refuse("keep_authorized_keys"),
         tree=DIRTY, item=10),
    Case("keep-user-wildcard", scan(keep_authorized_keys=["*"]), refuse("keep_authorized_keys"), tree=DIRTY),
    Case("keep-user-fullwidth", scan(keep_authorized_keys=["ｒoot"]), refuse("keep_authorized_keys"), tree=DIRTY),
    # directories of the image that lead out of it (issue 17, item 1), on both Debian generations
    Case("debian-12-etc-link-absolute", scan(), behind_link("/etc", "/root/.bash_history"),
         tree=linked("debian-12", "/etc", "{outside}/etc"), item=1),
    Case("debian-13-etc-link-absolute", scan(), behind_link("/etc", "/root/.bash_history"),
         tree=linked("debian-13", "/etc", "{outside}/etc"), item=1),
    Case("debian-12-etc-link-relative", scan(), behind_link("/etc", "/root/.bash_history"),
         tree=linked("debian-12", "/etc", "{up}outside/etc"), item=1),
    Case("debian-13-etc-link-proc-self-root", scan(), behind_link("/etc", "/root/.bash_history"),
         tree=linked("debian-13", "/etc", "/proc/self/root{outside}/etc"), item=1),
    Case("debian-12-root-ssh-link", scan(), behind_link("/root/.ssh", "/root/.bash_history"),
         tree=linked("debian-12", "/root/.ssh", "{outside}/home/alice/.ssh"), item=1),
    Case("debian-13-var-log-link", scan(), behind_link("/var/log", "/root/.bash_history"),
         tree=linked("debian-13", "/var/log", "{up}outside/var/log"), item=1),
    Case("debian-12-tmp-link", scan(), behind_link("/tmp", "/root/.bash_history"),
         tree=linked("debian-12", "/tmp", "{outside}/tmp"), item=1),
]
