# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Image hygiene: what must not ship in an image, by category; the scanner that finds it and the
# cleaner that removes it. Standard library only (image_scan runs on the builder).
#
# CATEGORIES is the one table image_scan, image_clean and the generalize role share: for each
# category, what it finds, why it must not ship, and the reference it follows (virt-sysprep's
# operations, `cloud-init clean`, or this project's own rule). scan() returns one Finding per item
# with the action the cleaner takes on it:
#   remove          delete the file, link or directory (recursively, never across a mount)
#   truncate        empty the file in place, keeping its mode and owner (machine-id, live logs)
#   lock_password   prefix root's password hash in /etc/shadow with "!"
#   remove_key      delete the lines holding the bake's temporary key from an authorized_keys
#                   file that must otherwise stay
#   reset_hostname  write "localhost" to /etc/hostname, so first boot sets the instance's own
#   strip_lines     delete the builder's MAC address lines (HWADDR=, MACADDR=) from an ifcfg file
#   review          nothing automatic: a file that is not the builder's own (an application's env
#                   file with a token) is listed, and image_clean refuses to go on until it is
#                   allow-listed to ship (keep_secret_files) or to go (remove_secret_files)
#
# Every read, write and delete goes through ImageRoot (_image_root.py): each path is resolved one
# component at a time inside the root, a symbolic link met on the way is followed the way a
# process chrooted into the root would see it, and the last component is never followed. Every
# reported path is therefore the canonical path inside the image.

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import json
import os
import re
import secrets
import stat
import subprocess
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _cloud_config
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._image_root import (
    Entry,
    ImageRoot,
    RootError,
    check_path_option,
    normalize_path,
)

# --- the category table -------------------------------------------------------------------------
# Order matters: it is the order of the report and of the cleaner's actions. `source` names the
# reference each category follows: virt-sysprep's operation, cloud-init's own clean command, or
# this project (what neither covers).
CATEGORIES = {
    "ssh_host_keys": {
        "finds": "/etc/ssh/ssh_host_* (private and public host keys and host certificates).",
        "why": "Every instance would share one SSH host identity, and whoever holds the image holds the "
               "private key of every instance. cloud-init (ssh module) or sshd-keygen makes new keys on "
               "first boot.",
        "source": "virt-sysprep ssh-hostkeys",
    },
    "authorized_keys": {
        "finds": "~/.ssh/authorized_keys and authorized_keys2 holding at least one key, of root and of every "
                 "user (homes from /etc/passwd and every directory under /home), except the users listed to "
                 "keep.",
        "why": "A key left behind lets its holder log in to every instance. cloud-init installs the launch key "
               "pair on each new instance.",
        "source": "virt-sysprep ssh-userdir",
    },
    "ssh_user_files": {
        "finds": "Private keys under every ~/.ssh whatever their name (the content holds a PEM or OpenSSH "
                 "private key block, or a PuTTY key), and known_hosts files.",
        "why": "A private key opens whatever it was made for; known_hosts lists the hosts the builder "
               "reached.",
        "source": "virt-sysprep ssh-userdir",
    },
    "credentials": {
        "finds": "Credential files by name in every home and /root: .aws/, .config/gcloud/, .azure/, "
                 ".kube/config, .git-credentials, .netrc, .docker/config.json with auths, .pgpass, .npmrc with "
                 "a token, .pypirc, .s3cfg, .boto, .vault-token, .config/gh/hosts.yml, "
                 ".terraform.d/credentials.tfrc.json.",
        "why": "Cloud, registry, repository and database credentials of whoever ran the builder.",
        "source": "bakery.ami",
    },
    "shell_history": {
        "finds": "Command histories in every home: bash, zsh, sh/ksh, ash, csh, fish, python, mysql, psql, "
                 "sqlite, redis-cli, node, less (.lesshst) and vim (.viminfo).",
        "why": "Histories hold the builder's commands, often with passwords, tokens and host names.",
        "source": "virt-sysprep bash-history",
    },
    "user_caches": {
        "finds": "Package caches under every home: pip, poetry, uv, npm, yarn, go-build, composer, gradle, "
                 "maven (~/.m2/repository) and cargo registries.",
        "why": "Downloads of the builder: size in every instance, and authenticated registries' packages.",
        "source": "virt-sysprep package-manager-cache (per user)",
    },
    "cloud_init_state": {
        "finds": "cloud-init's record of the builder: every entry of /var/lib/cloud except seed/ and "
                 "scripts/ (instances, instance link, data, sem, handlers ...), /var/log/cloud-init*.log, "
                 "/run/cloud-init when /run is part of the image.",
        "why": "First boot must run as a new instance; the record holds the builder's user-data, which may "
               "hold secrets. Removed with `cloud-init clean --logs` where the image's cloud-init has it.",
        "source": "cloud-init clean --logs",
    },
    "cloud_init_seed": {
        "finds": "The contents of /var/lib/cloud/seed (NoCloud and other local seeds).",
        "why": "A local seed is found before the cloud's own datasource: instances would boot with the "
               "builder's instance-id and user-data.",
        "source": "cloud-init clean --seed",
    },
    "network_config": {
        "finds": "The builder's rendered network configuration: /etc/network/interfaces.d/50-cloud-init(.cfg), "
                 "/etc/netplan/50-cloud-init.yaml, NetworkManager's cloud-init connections and drop-ins, "
                 "systemd-networkd's 10-cloud-init-*.network (all only while cloud-init renders the network "
                 "at boot); /etc/udev/rules.d/70-persistent-net.rules; HWADDR=/MACADDR= lines in "
                 "/etc/sysconfig/network-scripts/ifcfg-*.",
        "why": "They name the builder's interfaces by MAC address: an instance has other MACs, so the "
               "interface is renamed or left unconfigured. cloud-init renders the instance's own at first "
               "boot.",
        "source": "cloud-init clean --configs network; virt-sysprep udev-persistent-net, net-hwaddr",
    },
    "hostname": {
        "finds": "/etc/hostname naming anything but localhost.",
        "why": "Every instance would boot with the builder's name. With localhost, first boot sets the "
               "instance's own (cloud-init's set_hostname, or DHCP).",
        "source": "virt-sysprep net-hostname",
    },
    "machine_id": {
        "finds": "A non-empty /etc/machine-id (other than 'uninitialized'); /var/lib/dbus/machine-id unless it "
                 "is a link to /etc/machine-id; systemd's random-seed and credential.secret.",
        "why": "The machine-id names the machine to systemd, journald, DHCP (the DUID) and D-Bus; every "
               "instance would share it. An empty file makes systemd generate a new one on first boot.",
        "source": "virt-sysprep machine-id; cloud-init clean --machine-id",
    },
    "dhcp_leases": {
        "finds": "DHCP leases and client identities of dhclient, NetworkManager, dhcpcd and systemd-networkd.",
        "why": "A new instance would ask for the builder's address and present the builder's DUID.",
        "source": "virt-sysprep dhcp-client-state",
    },
    "temp_files": {
        "finds": "Everything in /tmp and /var/tmp.",
        "why": "The builder's downloads, scripts and unpacked secrets.",
        "source": "virt-sysprep tmp-files",
    },
    "logs": {
        "finds": "The journal's machine directories and every non-empty file under /var/log (login records and "
                 "cloud-init's logs have their own categories). Rotated logs are removed, current ones "
                 "emptied in place so their mode and owner stay.",
        "why": "Logs record the builder's logins, addresses, commands and errors.",
        "source": "virt-sysprep logfiles",
    },
    "login_records": {
        "finds": "utmp, wtmp, btmp, lastlog and faillog (/var/log, /var/run/utmp when /run is part of the "
                 "image), wtmpdb's wtmp.db and lastlog2.db.",
        "why": "Who logged in to the builder, from where, and the failed attempts.",
        "source": "virt-sysprep utmp, logfiles",
    },
    "crash_data": {
        "finds": "The contents of /var/crash, /var/log/dump, /var/lib/systemd/coredump, /var/spool/abrt and "
                 "/var/lib/apport/coredump.",
        "why": "Crash reports and core dumps hold the memory of the builder's processes (keys, tokens).",
        "source": "virt-sysprep crash-data, abrt-data",
    },
    "cron_spool": {
        "finds": "Users' crontabs and at jobs: /var/spool/cron/crontabs/*, files in /var/spool/cron, "
                 "/var/spool/cron/atjobs/*, atspool/* and /var/spool/at/* (sequence files kept).",
        "why": "Jobs the builder's users scheduled (often with tokens on the command line); an image's own "
               "jobs belong in /etc/cron.d.",
        "source": "virt-sysprep cron-spool",
    },
    "mail_spool": {
        "finds": "Mailboxes in /var/mail and /var/spool/mail.",
        "why": "Mail to the builder's users (cron output, alerts) with whatever it quoted.",
        "source": "virt-sysprep mail-spool",
    },
    "package_caches": {
        "finds": "apt: /var/cache/apt/*.bin, archives/*.deb and archives/partial, the contents of "
                 "/var/lib/apt/lists (lock files excepted); dnf and yum: the contents of /var/cache/dnf, "
                 "/var/cache/libdnf5 and /var/cache/yum.",
        "why": "Stale package indexes and downloaded packages waste space in every instance, and stale lists "
               "make later installs use outdated metadata.",
        "source": "virt-sysprep package-manager-cache",
    },
    "passwd_backups": {
        "finds": "/etc/passwd-, /etc/shadow-, /etc/group-, /etc/gshadow-, /etc/subuid-, /etc/subgid-.",
        "why": "Copies of the account files from before the last change: password hashes and accounts the "
               "image removed.",
        "source": "virt-sysprep passwd-backups",
    },
    "backup_files": {
        "finds": "Backups of configuration files in /etc, /root, /home, /srv and /var: *.bak, *~, *.orig, "
                 "*.dpkg-old, *.ucf-old, *.rpmsave.",
        "why": "An old copy (sshd_config.bak, /var/backups/shadow.bak) keeps what the current file no longer "
               "says, secrets included.",
        "source": "virt-sysprep backup-files",
    },
    "cloud_init_sudoers": {
        "finds": "/etc/sudoers.d/90-cloud-init-users.",
        "why": "It grants the builder's default user sudo rights; cloud-init writes it again for the default "
               "user of each new instance.",
        "source": "bakery.ami",
    },
    "root_password": {
        "finds": "A usable (or empty) password for root in /etc/shadow.",
        "why": "A root password set on the builder would open every instance; it is locked (prefixed with "
               "'!'), not changed, so key-based access is unaffected.",
        "source": "bakery.ami (virt-sysprep root-password)",
    },
    "bake_traces": {
        "finds": "The bake's own traces: authorized_keys files holding the bake's temporary public key, the "
                 "paths the bake says it left (such as a temporary private key), and Ansible's remote "
                 "temporary directory (~/.ansible/tmp) and async results (~/.ansible_async) in every home.",
        "why": "The temporary key opens the image to whoever holds the private key; Ansible's directories may "
               "hold module arguments and command output.",
        "source": "bakery.ami",
    },
    "secrets": {
        "finds": "Content in /root, /home, /etc, /opt, /srv and /var that no other category removes: PEM and "
                 "OpenSSH private key blocks, PuTTY keys, AWS access key IDs with a secret nearby and AWS "
                 "secret keys, GitHub, GitLab and Slack tokens, Slack webhooks, and *_TOKEN=, *_SECRET=, "
                 "*_PASSWORD=, *_API_KEY=, PASSWORD= assignments. Files the package manager installed and "
                 "that are unchanged are skipped (dpkg's md5sums and conffiles); file size and count are "
                 "bounded.",
        "why": "These are usually an application's own configuration: deleting them breaks the application "
               "and keeping them ships the secret in every instance. They are listed for a decision "
               "(action review), never removed silently.",
        "source": "bakery.ami",
    },
}

CATEGORY_NAMES = tuple(CATEGORIES)
# The actions a finding may carry (the header above says what each does).
ACTIONS = ("remove", "truncate", "lock_password", "remove_key", "reset_hostname", "strip_lines", "review")


# Categories that change files cloud-init clean acts on: an exclusion there skips cloud-init clean.
CLOUD_INIT_CLEAN_TOUCHES = ("cloud_init_state", "cloud_init_seed", "machine_id", "network_config")

HISTORY_FILES = (
    ".bash_history", ".zsh_history", ".zhistory", ".histfile", ".sh_history", ".ash_history", ".history",
    ".local/share/fish/fish_history", ".python_history", ".mysql_history", ".psql_history",
    ".sqlite_history", ".rediscli_history", ".node_repl_history", ".lesshst", ".viminfo",
)

AUTHORIZED_KEYS_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")

KNOWN_HOSTS_FILES = ("known_hosts", "known_hosts.old", "known_hosts2")

# (path under a home, condition on the content or None). A directory is removed whole.
CREDENTIAL_FILES = (
    (".aws", None),
    (".config/gcloud", None),
    (".azure", None),
    (".kube/config", None),
    (".git-credentials", None),
    (".netrc", None),
    (".docker/config.json", "docker_auths"),
    (".pgpass", None),
    (".npmrc", "npm_token"),
    (".pypirc", None),
    (".s3cfg", None),
    (".boto", None),
    (".vault-token", None),
    (".config/gh/hosts.yml", None),
    (".terraform.d/credentials.tfrc.json", None),
)

USER_CACHES = (
    ".cache/pip", ".cache/pypoetry", ".cache/uv", ".npm", ".cache/yarn", ".yarn/berry/cache", ".cache/go-build",
    ".cache/composer", ".composer/cache", ".gradle/caches", ".m2/repository", ".cargo/registry",
)

ANSIBLE_TRACES = (".ansible/tmp", ".ansible_async")

# (directory, file name patterns) of DHCP clients; None matches every regular file and link.
DHCP_LEASE_DIRS = (
    ("/var/lib/dhcp", ("dhclient*.lease", "dhclient*.leases")),
    ("/var/lib/dhclient", None),
    ("/var/lib/NetworkManager", ("*.lease", "secret_key")),
    ("/var/lib/dhcpcd", ("*.lease", "*.lease6", "duid", "secret")),
    ("/var/lib/dhcpcd5", ("*.lease", "*.lease6", "duid", "secret")),
    ("/var/db/dhcpcd", ("*.lease", "*.lease6", "duid", "secret")),
)

# Network configuration cloud-init renders at boot (its clean command's list, plus the name
# Debian's ifupdown renderer uses), as (directory, pattern).
RENDERED_NETWORK = (
    ("/etc/network/interfaces.d", "50-cloud-init"),
    ("/etc/network/interfaces.d", "50-cloud-init.cfg"),
    ("/etc/netplan", "50-cloud-init.yaml"),
    ("/etc/NetworkManager/system-connections", "cloud-init-*.nmconnection"),
    ("/etc/NetworkManager/conf.d", "99-cloud-init.conf"),
    ("/etc/NetworkManager/conf.d", "30-cloud-init-ip6-addr-gen-mode.conf"),
    ("/etc/systemd/network", "10-cloud-init-*.network"),
)
PERSISTENT_NET_RULES = "/etc/udev/rules.d/70-persistent-net.rules"
IFCFG_DIR = "/etc/sysconfig/network-scripts"
HWADDR_LINE = re.compile(r"[ \t]*(?:HWADDR|MACADDR)[ \t]*=.*")

# cloud-init's "network: {config: disabled}" (block or flow style) in its system configuration.
# Entries of /var/lib/cloud that are configuration, not the builder's state.
CLOUD_DIR_KEEP = ("seed", "scripts")

LOGIN_RECORD_FILES = ("/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog", "/var/log/faillog", "/var/log/wtmp.db",
                      "/var/lib/wtmpdb/wtmp.db", "/var/lib/lastlog/lastlog2.db")
UTMP_FILES = ("/var/run/utmp", "/run/utmp")

CRASH_DIRS = ("/var/crash", "/var/log/dump", "/var/lib/systemd/coredump", "/var/spool/abrt", "/var/lib/apport/coredump")

CRON_DIRS = ("/var/spool/cron/crontabs", "/var/spool/cron/atjobs", "/var/spool/cron/atspool", "/var/spool/at",
             "/var/spool/at/spool")
CRON_KEEP = (".SEQ",)
MAIL_DIRS = ("/var/mail", "/var/spool/mail")

PASSWD_BACKUPS = ("/etc/passwd-", "/etc/shadow-", "/etc/group-", "/etc/gshadow-", "/etc/subuid-", "/etc/subgid-")

BACKUP_DIRS = ("/etc", "/root", "/home", "/srv", "/var")
BACKUP_PATTERNS = ("*.bak", "*~", "*.orig", "*.dpkg-old", "*.ucf-old", "*.rpmsave")

CONTENT_DIRS = ("/root", "/home", "/etc", "/opt", "/srv", "/var")
# Package managers' own databases and metadata: not configuration anyone wrote.
# Container engines' image stores are not walked either (images of their own, scanned as such).
CONTENT_SKIP = ("/var/lib/dpkg", "/var/lib/rpm", "/var/lib/dnf", "/var/lib/yum", "/var/lib/apt", "/var/cache/apt",
                "/var/cache/dnf", "/var/cache/yum", "/var/cache/libdnf5", "/var/log/journal", "/var/lib/docker",
                "/var/lib/containerd", "/var/lib/containers")
# Entries walked for content and backups, per file of content_max_files.
WALK_FACTOR = 20

# Rotated or compressed logs: removed instead of emptied.
ROTATED_LOG = re.compile(
    r".*(?:\.[0-9]+(?:\.(?:gz|xz|bz2|zst|lz4))?|\.(?:gz|xz|bz2|zst|lz4|old)|-[0-9]{8}(?:\.(?:gz|xz|bz2|zst))?)")

# Public key types, as in authorized_keys(5).
KEY_TYPE = re.compile(r"ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(?:256|384|521)|"
                      r"sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com")
KEY_BLOB = re.compile(r"[A-Za-z0-9+/]+={0,3}")

_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,30}[A-Za-z0-9._$-]?")

# Top-level directories of a Linux image: an exclusion matching all of them hides the image.
TOP_LEVEL = ("bin", "boot", "dev", "etc", "home", "lib", "media", "mnt", "opt", "proc", "root", "run", "sbin",
             "srv", "sys", "tmp", "usr", "var")

# Largest text files read for keys, passwd, shadow ...
MAX_TEXT = 16 * 1024 * 1024
MAX_KEYS_FILE = 1024 * 1024
# How much of a file under ~/.ssh is read to tell a private key.
KEY_SNIFF = 64 * 1024

DEFAULT_MAX_FILE_SIZE = 1024 * 1024
DEFAULT_MAX_FILES = 20000
LIMITS = {"content_max_file_size": (1024, 64 * 1024 * 1024), "content_max_files": (1, 1000000)}

# --- content patterns (bytes, ASCII classes) --------------------------------------------------------
PEM_PRIVATE = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
PUTTY_KEY = re.compile(rb"PuTTY-User-Key-File-[0-9]+:")
AWS_KEY_ID = re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
AWS_SECRET_VALUE = re.compile(rb"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])")
AWS_SECRET_ASSIGNMENT = re.compile(rb"(?i)aws_secret_access_key[\"']?[ \t]*[=:][ \t]*[\"']?[A-Za-z0-9/+]{40}")
TOKEN_PATTERNS = (
    ("GitHub token", re.compile(rb"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})")),
    ("GitLab token", re.compile(rb"(?<![A-Za-z0-9_-])gl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_-]{20,}")),
    ("Slack token", re.compile(rb"(?<![A-Za-z0-9-])xox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Slack webhook", re.compile(rb"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+")),
)
# Assignments: the keyword is searched first (fast), then the whole name and the value around it.
SECRET_KEYWORD = re.compile(rb"(?:TOKEN|SECRET(?:_ACCESS)?(?:_KEY)?|PASSWORD|PASSWD|API_?KEY|_PASS)[ \t]*=")
SECRET_NAME = re.compile(rb"[A-Z][A-Z0-9_]*")
SECRET_NAMES = re.compile(rb"(?:[A-Z][A-Z0-9_]*_)?(?:TOKEN|SECRET|SECRET_KEY|SECRET_ACCESS_KEY|PASSWORD|PASSWD|API_KEY"
                          rb"|APIKEY)|[A-Z][A-Z0-9_]*_(?:PASS)")
SECRET_VALUE = re.compile(rb"[ \t]*=[ \t]*[\"']?([^\s\"'$`{%<#][^\s\"']{3,})")
PLACEHOLDERS = frozenset([b"true", b"false", b"yes", b"no", b"none", b"null", b"changeme", b"password", b"secret",
                          b"token", b"example", b"xxxx", b"****"])


class HygieneError(BakeryError):
    """A user error (a message naming the option and the rule), or an image that is not clean."""


class Finding(t.NamedTuple):
    path: str
    category: str
    reason: str
    action: str


class Options(t.NamedTuple):
    root: ImageRoot
    categories: list
    keep_authorized_keys: list
    exclude: list
    bake_key_blob: str
    bake_paths: list
    keep_secret_files: list
    remove_secret_files: list
    max_file_size: int
    max_files: int


# --- input validation -----------------------------------------------------------------------------

def key_blob(line: str) -> str:
    """The base64 key of an authorized_keys or .pub line (options and comment may surround it)."""
    fields = line.strip().split()
    for index, field in enumerate(fields[:-1]):
        if KEY_TYPE.fullmatch(field) and KEY_BLOB.fullmatch(fields[index + 1]):
            return fields[index + 1]
    return ""


def normalize_categories(categories: t.Any) -> list:
    """The selected categories in table order; 'all' selects every category."""
    if isinstance(categories, str) or not isinstance(categories, (list, tuple)):
        raise HygieneError("categories: must be a list of category names (or ['all']), got %r" % (categories,))
    wanted: t.Set[str] = set()
    unknown = []
    for name in categories:
        if name == "all":
            wanted.update(CATEGORY_NAMES)
        elif isinstance(name, str) and name in CATEGORIES:
            wanted.add(name)
        else:
            unknown.append(name)
    if unknown:
        shown = ", ".join(repr(u)[:80] for u in unknown[:5])
        raise HygieneError(
            "categories: unknown categor%s %s; known: all, %s"
            % ("y" if len(unknown) == 1 else "ies", shown, ", ".join(CATEGORY_NAMES)))
    return [name for name in CATEGORY_NAMES if name in wanted]


def _has_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def matches(path: str, patterns: t.Iterable[str]) -> bool:
    """Whether an image path is one of the patterns or lies below one (shell patterns; '*' matches '/')."""
    for pattern in patterns:
        if pattern == "/" or path == pattern or path.startswith(pattern.rstrip("/") + "/"):
            return True
        if _has_glob(pattern) and (fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern + "/*")):
            return True
    return False


def check_pattern(pattern: t.Any, option: str) -> str:
    """A path pattern inside the image, normalized; refused when it would cover the whole image."""
    normal = normalize_path(pattern, option)
    if normal == "/":
        raise HygieneError("%s: %r resolves to '/', which would cover the whole image; name the paths below it"
                           % (option, pattern))
    probe = "/bakery-probe-" + secrets.token_hex(6)
    if matches(probe, [normal]) or all(matches("/" + name, [normal]) for name in TOP_LEVEL):
        raise HygieneError("%s: %r matches every top-level directory, which would cover the whole image; name "
                           "the paths below them" % (option, pattern))
    return normal


def _string_list(value: t.Any, option: str) -> list:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise HygieneError("%s: must be a list, got %r" % (option, value))
    return list(value)


def _limit(value: t.Any, option: str, default: int) -> int:
    if value is None:
        return default
    low, high = LIMITS[option]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HygieneError("%s: must be an integer from %d to %d, got %r" % (option, low, high, value))
    return value


def validate(root: t.Any, categories: t.Any = ("all",), keep_authorized_keys: t.Any = (), exclude: t.Any = (),
             bake_authorized_key: t.Any = None, bake_paths: t.Any = (), keep_secret_files: t.Any = (),
             remove_secret_files: t.Any = (), content_max_file_size: t.Any = None,
             content_max_files: t.Any = None) -> Options:
    """Check every input before anything is read; returns the normalized inputs or raises HygieneError."""
    selected = normalize_categories(list(categories) if isinstance(categories, tuple) else categories)
    if not selected:
        raise HygieneError("categories: select at least one category (or 'all')")
    users = _string_list(keep_authorized_keys, "keep_authorized_keys")
    for user in users:
        # The portable user-name rule of useradd/adduser: no spaces, colons, slashes or keys.
        if not isinstance(user, str) or not _USER_NAME.fullmatch(user):
            raise HygieneError("keep_authorized_keys: must be user names (ASCII letters, digits, '.', '_', '-', at "
                               "most 32 characters, not starting with '-' or a digit), got %r" % (user,))
    excluded = [check_pattern(p, "exclude") for p in _string_list(exclude, "exclude")]
    keep = [check_pattern(p, "keep_secret_files") for p in _string_list(keep_secret_files, "keep_secret_files")]
    remove = [check_pattern(p, "remove_secret_files") for p in _string_list(remove_secret_files, "remove_secret_files")]
    both = [p for p in keep if p in remove]
    if both:
        raise HygieneError("keep_secret_files and remove_secret_files: %r is in both; a file either ships or goes"
                           % both[0])
    blob = ""
    if bake_authorized_key:
        if not isinstance(bake_authorized_key, str) or "\n" in bake_authorized_key.strip():
            raise HygieneError("bake_authorized_key: must be one public key line, got %r" % (str(bake_authorized_key)[:60],))
        blob = key_blob(bake_authorized_key)
        if not blob:
            raise HygieneError("bake_authorized_key: must be a public key line such as 'ssh-ed25519 AAAA... comment', "
                               "got %r" % (bake_authorized_key[:60],))
    paths = [check_path_option(p, "bake_paths") for p in _string_list(bake_paths, "bake_paths")]
    max_size = _limit(content_max_file_size, "content_max_file_size", DEFAULT_MAX_FILE_SIZE)
    max_files = _limit(content_max_files, "content_max_files", DEFAULT_MAX_FILES)
    # Last: the root itself (absolute, a directory); nothing was read before the options held.
    image = root if isinstance(root, ImageRoot) else ImageRoot(root)
    return Options(image, selected, users, excluded, blob, paths, keep, remove, max_size, max_files)


# The options image_scan and image_clean share (documented in doc_fragments/hygiene.py). Path
# options are plain strings: Ansible's type path would expand '~' to a home of the host running the
# module, which is not a path of the image.
ARGUMENT_SPEC = {
    "root": {"type": "path", "default": "/"},
    "categories": {"type": "list", "elements": "str", "default": ["all"]},
    "keep_authorized_keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
    "exclude": {"type": "list", "elements": "str", "default": []},
    "bake_authorized_key": {"type": "str", "no_log": False},
    "bake_paths": {"type": "list", "elements": "str", "default": []},
    "keep_secret_files": {"type": "list", "elements": "str", "default": [], "no_log": False},
    "remove_secret_files": {"type": "list", "elements": "str", "default": [], "no_log": False},
    "content_max_file_size": {"type": "int", "default": DEFAULT_MAX_FILE_SIZE},
    "content_max_files": {"type": "int", "default": DEFAULT_MAX_FILES},
}
SCAN_OPTIONS = tuple(name for name in ARGUMENT_SPEC if name != "root")


@dataclasses.dataclass(frozen=True)
class HygieneRequest:
    """A checked image_scan or image_clean request: build_request held every rule before it was made."""

    root: str  # as given (messages about a file the scan or clean could not reach quote it)
    options: Options  # the scan options, checked; options.root is the image
    defer: tuple = ()  # image_clean: categories left for the caller's final step (applied only to the root /)
    cloud_init_clean: bool = True  # image_clean
    fail_on_findings: bool = False  # image_scan


def build_request(params: t.Mapping[str, t.Any], own_payload: t.Optional[str] = None) -> HygieneRequest:
    """Check every option of image_scan or image_clean once, before anything is read, and return the request.

    params holds the module's options (missing ones take their defaults); own_payload is the image
    path of the running module's own directory (payload_dir), excluded from the scan. Raises
    HygieneError (RootError for the root) naming the option and the rule.
    """
    args = {name: params[name] for name in SCAN_OPTIONS if name in params}
    if own_payload:
        exclude = args.get("exclude") or []
        args["exclude"] = list(exclude) + [own_payload] if isinstance(exclude, (list, tuple)) else exclude
    options = validate(params.get("root", "/"), **args)
    defer = params.get("defer") or ()
    deferrable = tuple(normalize_categories(_string_list(defer, "defer"))) if defer else ()
    return HygieneRequest(root=params.get("root", "/"), options=options, defer=deferrable,
                          cloud_init_clean=bool(params.get("cloud_init_clean", True)),
                          fail_on_findings=bool(params.get("fail_on_findings", False)))


def payload_dir(module_file: str, root: str) -> t.Optional[str]:
    """The image path of the directory AnsiballZ unpacked a running module into, when it is inside
    root: with pipelining the module sits in the system temp dir (/tmp/ansible_*_payload_*) and
    would report itself as a temporary file of the builder. Only compared, never opened."""
    path = os.path.realpath(module_file)
    real_root = os.path.realpath(root)
    while path != os.path.dirname(path):
        if fnmatch.fnmatchcase(os.path.basename(path), "ansible_*_payload_*") and os.path.isdir(path):
            if real_root == "/":
                return path
            if path.startswith(real_root + "/"):
                return path[len(real_root):]
            return None
        path = os.path.dirname(path)
    return None


# --- helpers over the image -------------------------------------------------------------------------

def _md5(data: bytes) -> str:
    try:
        return hashlib.md5(data, usedforsecurity=False).hexdigest()  # type: ignore[call-arg]
    except TypeError:  # Python < 3.9
        return hashlib.md5(data).hexdigest()  # nosec - dpkg's file checksums are md5


def cloud_init_version(image: ImageRoot) -> t.Optional[tuple]:
    """(major, minor) of the image's cloud-init, read from its installed package (never run)."""
    candidates = ["/usr/lib/python3/dist-packages/cloudinit/version.py"]
    for base in ("/usr/lib", "/usr/lib64", "/usr/local/lib"):
        for entry in image.entries(base):
            name = entry.path.rsplit("/", 1)[1]
            if name.startswith("python3"):
                candidates.append(entry.path + "/site-packages/cloudinit/version.py")
                candidates.append(entry.path + "/dist-packages/cloudinit/version.py")
    for path in candidates:
        text = image.read_text(path, limit=65536, follow_last=True)
        if text:
            found = re.search(r"(?m)^__VERSION__[ \t]*=[ \t]*[\"']([0-9]+)\.([0-9]+)", text)
            if found:
                return int(found.group(1)), int(found.group(2))
    return None


class ContentCounts(t.TypedDict):
    """What the secret search read and skipped (the ``content`` of a scan's result)."""

    files: int
    bytes: int
    skipped_large: int
    skipped_binary: int
    skipped_package_owned: int
    complete: bool
    package_check: str


class Scanner:
    """Finds, category by category, what must not ship; every path canonical inside the image."""

    def __init__(self, options: Options):
        self.o = options
        self.image = options.root
        self.selected = set(options.categories)
        self._homes: t.Optional[list] = None
        self._dpkg: t.Optional[dict] = None
        self._root_dev: t.Optional[int] = None
        self._walked = 0
        self.content: ContentCounts = {"files": 0, "bytes": 0, "skipped_large": 0, "skipped_binary": 0,
                                       "skipped_package_owned": 0, "complete": True, "package_check": ""}
        self.kept_secrets: list = []

    # -- resolution helpers that treat a link loop as "not there" --

    def lstat(self, path: str) -> t.Optional[Entry]:
        try:
            return self.image.lstat(path)
        except RootError:
            return None

    def stat(self, path: str) -> t.Optional[Entry]:
        try:
            return self.image.stat(path)
        except RootError:
            return None

    def directory(self, path: str) -> t.Optional[str]:
        entry = self.stat(path)
        return entry.path if entry is not None and stat.S_ISDIR(entry.stat.st_mode) else None

    def entries(self, path: str) -> list:
        try:
            return self.image.entries(path)
        except RootError:
            return []

    def read(self, path: str, limit: int = MAX_TEXT) -> t.Optional[bytes]:
        """Content of a regular file (never through a final link), or None (missing, too large)."""
        entry = self.lstat(path)
        if entry is None or not stat.S_ISREG(entry.stat.st_mode) or entry.stat.st_size > limit:
            return None
        try:
            return self.image.read_bytes(entry.path, limit=limit)
        except (RootError, OSError):
            return None

    def head(self, path: str, size: int) -> bytes:
        """The first ``size`` bytes of a regular file (never through a final link); b"" otherwise."""
        try:
            return self.image.read_bytes(path, limit=size) or b""
        except (RootError, OSError):
            return b""

    def text(self, path: str, limit: int = MAX_TEXT) -> t.Optional[str]:
        data = self.read(path, limit)
        return None if data is None else data.decode("utf-8", errors="replace")

    def is_mount(self, path: str) -> bool:
        """Whether a directory of the image is another filesystem (a tmpfs /run on a live system)."""
        entry = self.stat(path)
        if entry is None or not stat.S_ISDIR(entry.stat.st_mode) or entry.path == "/":
            return False
        if self._root_dev is None:
            self._root_dev = self.image.stat("/").stat.st_dev
        return entry.stat.st_dev != self._root_dev

    def walk(self, path: str, skip: t.Container = (), budget: bool = False) -> t.Iterator[Entry]:
        """Entries below a directory; with ``budget``, at most WALK_FACTOR * content_max_files entries
        over every budgeted walk of the scan (then the content scan is marked incomplete)."""
        try:
            for entry in self.image.walk(path, skip=skip):
                if budget:
                    self._walked += 1
                    if self._walked > WALK_FACTOR * self.o.max_files:
                        self.content["complete"] = False
                        return
                yield entry
        except RootError:
            return

    def walk_trees(self, tops: t.Iterable[str], skip: t.Container = ()) -> t.Iterator[Entry]:
        """Every entry below the directories ``tops`` (budgeted), and below the directories that
        links met on the way resolve to inside the image (each tree once: a link to /data/app from
        /etc/app is walked as /data/app). Never leaves the image; never loops."""
        pending = list(tops)
        walked: list = []
        while pending:
            directory = self.directory(pending.pop(0))
            if directory is None or directory in skip:
                continue
            if any(directory == done or directory.startswith(done.rstrip("/") + "/") for done in walked):
                continue
            walked.append(directory)
            for entry in self.walk(directory, skip=skip, budget=True):
                if stat.S_ISLNK(entry.stat.st_mode):
                    pending.append(entry.path)
                yield entry
            if not self.content["complete"]:
                return

    @property
    def homes(self) -> list:
        """(canonical home, [user names]) of every user in the image's /etc/passwd, /root and /home/*."""
        if self._homes is None:
            by_home: dict = {}

            def add(home: str, user: str) -> None:
                directory = self.directory(home)
                if directory is None or directory == "/":
                    return
                users = by_home.setdefault(directory, [])
                if user not in users:
                    users.append(user)

            for line in (self.text("/etc/passwd") or "").splitlines():
                fields = line.split(":")
                if (len(fields) >= 7 and fields[0] and not fields[0].startswith(("+", "-", "#"))
                        and fields[5].startswith("/")):
                    add(fields[5], fields[0])
            add("/root", "root")
            for entry in self.entries("/home"):
                if stat.S_ISDIR(entry.stat.st_mode):
                    add(entry.path, entry.path.rsplit("/", 1)[1])
            self._homes = sorted(by_home.items())
        return self._homes

    def _holds_bake_key(self, path: str) -> bool:
        if not self.o.bake_key_blob:
            return False
        text = self.text(path, MAX_KEYS_FILE)
        if not text:
            return False
        return any(key_blob(line) == self.o.bake_key_blob for line in text.splitlines())

    def _entries_matching(self, directory: str, patterns: t.Sequence[str], files_only: bool = True):
        for entry in self.entries(directory):
            if files_only and stat.S_ISDIR(entry.stat.st_mode):
                continue
            if any(fnmatch.fnmatchcase(entry.path.rsplit("/", 1)[1], p) for p in patterns):
                yield entry

    # Each category yields (path, reason, action).

    def ssh_host_keys(self):
        for entry in self._entries_matching("/etc/ssh", ("ssh_host_*",)):
            kind = "public host key" if entry.path.endswith(".pub") else "private host key"
            yield entry.path, "SSH %s shared by every instance" % kind, "remove"

    def _authorized_keys_files(self):
        for home, users in self.homes:
            for relative in AUTHORIZED_KEYS_FILES:
                entry = self.lstat(home + "/" + relative)
                if entry is not None:
                    yield entry, users

    def authorized_keys(self):
        defer_bake_files = "bake_traces" in self.selected
        for entry, users in self._authorized_keys_files():
            if any(user in self.o.keep_authorized_keys for user in users):
                continue
            owners = ", ".join(users)
            if stat.S_ISLNK(entry.stat.st_mode):
                yield entry.path, "authorized_keys of %s is a symbolic link" % owners, "remove"
                continue
            if not stat.S_ISREG(entry.stat.st_mode):
                continue
            if defer_bake_files and self._holds_bake_key(entry.path):
                continue  # reported under bake_traces, removed in the final step
            text = self.text(entry.path, MAX_KEYS_FILE)
            if text is None:
                yield entry.path, "authorized_keys of %s (too large to read)" % owners, "remove"
            elif any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
                yield entry.path, "authorized_keys of %s holds keys" % owners, "remove"

    def ssh_user_files(self):
        for home, users in self.homes:
            ssh_dir = self.directory(home + "/.ssh")  # a link is followed, inside the image
            if ssh_dir is None:
                continue
            owners = ", ".join(users)
            for entry in self.walk(ssh_dir):
                name = entry.path.rsplit("/", 1)[1]
                if not stat.S_ISREG(entry.stat.st_mode):
                    continue
                if name in KNOWN_HOSTS_FILES:
                    yield entry.path, "hosts the builder's %s connected to (%s)" % (owners, name), "remove"
                    continue
                if name.startswith("authorized_keys") or name.endswith(".pub") or name == "config":
                    continue
                head = self.head(entry.path, KEY_SNIFF)
                if PEM_PRIVATE.search(head) or PUTTY_KEY.search(head):
                    yield entry.path, "private key of %s (%s)" % (owners, name), "remove"

    def credentials(self):
        for home, users in self.homes:
            owners = ", ".join(users)
            for relative, condition in CREDENTIAL_FILES:
                entry = self.lstat(home + "/" + relative)
                if entry is None:
                    continue
                if condition and not self._credential_content(entry, condition):
                    continue
                yield entry.path, "credentials of %s (%s)" % (owners, relative), "remove"

    def _credential_content(self, entry: Entry, condition: str) -> bool:
        if not stat.S_ISREG(entry.stat.st_mode):
            return stat.S_ISLNK(entry.stat.st_mode)
        data = self.read(entry.path, MAX_KEYS_FILE)
        if data is None:
            return True  # too large to tell: it goes
        if condition == "npm_token":
            return re.search(rb"(?m)^[^#;\n]*(?:_authToken|_auth|_password)[ \t]*=[ \t]*\S", data) is not None
        try:
            config = json.loads(data.decode("utf-8", errors="replace"))
        except ValueError:
            return b'"auth' in data
        auths = config.get("auths") if isinstance(config, dict) else None
        if not isinstance(auths, dict):
            return False
        stored = ("auth", "identitytoken", "registrytoken", "password")
        return any(isinstance(item, dict) and any(item.get(k) for k in stored) for item in auths.values())

    def shell_history(self):
        for home, users in self.homes:
            for relative in HISTORY_FILES:
                entry = self.lstat(home + "/" + relative)
                if entry is not None and not stat.S_ISDIR(entry.stat.st_mode):
                    yield entry.path, "history of %s (%s)" % (", ".join(users), relative), "remove"

    def user_caches(self):
        for home, users in self.homes:
            for relative in USER_CACHES:
                entry = self.lstat(home + "/" + relative)
                if entry is not None:
                    yield entry.path, "package cache of %s (%s)" % (", ".join(users), relative), "remove"

    def cloud_init_state(self):
        for entry in self.entries("/var/lib/cloud"):
            name = entry.path.rsplit("/", 1)[1]
            if name in CLOUD_DIR_KEEP:
                continue
            if stat.S_ISDIR(entry.stat.st_mode):
                for child in self.entries(entry.path):
                    yield child.path, "cloud-init state of the builder (%s)" % name, "remove"
            else:
                yield entry.path, "cloud-init state of the builder (%s)" % name, "remove"
        for entry in self._entries_matching("/var/log", ("cloud-init*",)):
            yield entry.path, "cloud-init log of the builder", "remove"
        if not self.is_mount("/run"):
            for entry in self.entries("/run/cloud-init"):
                yield entry.path, "cloud-init runtime state of the builder", "remove"

    def cloud_init_seed(self):
        for entry in self.entries("/var/lib/cloud/seed"):
            yield entry.path, ("local cloud-init seed (%s) found before the cloud's datasource"
                               % entry.path.rsplit("/", 1)[1]), "remove"

    def network_disabled(self) -> bool:
        """Whether cloud-init's system configuration says network: {config: disabled}."""
        paths = [_cloud_config.CLOUD_CFG] + [
            _cloud_config.CLOUD_CFG_D + "/" + name for name in _cloud_config.dropin_names(self)
        ]
        return _cloud_config.network_disabled(self.text(path, MAX_KEYS_FILE) or "" for path in paths)

    def network_config(self):
        if not self.network_disabled():
            for directory, pattern in RENDERED_NETWORK:
                for entry in self._entries_matching(directory, (pattern,)):
                    yield entry.path, "network configuration cloud-init rendered for the builder", "remove"
        entry = self.lstat(PERSISTENT_NET_RULES)
        if entry is not None:
            yield entry.path, "interface names bound to the builder's MAC addresses", "remove"
        for entry in self._entries_matching(IFCFG_DIR, ("ifcfg-*",)):
            if entry.path.endswith("ifcfg-lo") or not stat.S_ISREG(entry.stat.st_mode):
                continue
            text = self.text(entry.path, MAX_KEYS_FILE) or ""
            if any(HWADDR_LINE.fullmatch(line) for line in text.splitlines()):
                yield entry.path, "the builder's MAC address (HWADDR/MACADDR)", "strip_lines"

    def hostname(self):
        entry = self.lstat("/etc/hostname")
        if entry is None:
            return
        if stat.S_ISLNK(entry.stat.st_mode):
            yield entry.path, "/etc/hostname is a symbolic link", "reset_hostname"
            return
        if not stat.S_ISREG(entry.stat.st_mode):
            return
        text = self.text(entry.path, 65536)
        if text is None or text.strip() not in ("", "localhost"):
            yield entry.path, "the builder's hostname (every instance would share it)", "reset_hostname"

    def machine_id(self):
        entry = self.lstat("/etc/machine-id")
        if entry is not None:
            if stat.S_ISLNK(entry.stat.st_mode):
                yield entry.path, "machine-id is a symbolic link", "remove"
            elif stat.S_ISREG(entry.stat.st_mode) and entry.stat.st_size > 0:
                text = self.text(entry.path, 4096)
                if text is None or text.strip() != "uninitialized":
                    yield entry.path, "machine-id of the builder (every instance would share it)", "truncate"
        dbus = self.lstat("/var/lib/dbus/machine-id")
        if dbus is not None:
            if stat.S_ISLNK(dbus.stat.st_mode):
                target = self.stat(dbus.path)
                etc = self.lstat("/etc/machine-id")
                if not (target and etc and target.path == etc.path):
                    yield dbus.path, "D-Bus machine-id links elsewhere than /etc/machine-id", "remove"
            elif stat.S_ISREG(dbus.stat.st_mode) and dbus.stat.st_size > 0:
                yield dbus.path, "D-Bus machine-id of the builder", "remove"
        for path, reason in (("/var/lib/systemd/random-seed", "systemd random seed of the builder"),
                             ("/var/lib/systemd/credential.secret", "systemd credential key of the builder")):
            entry = self.lstat(path)
            if entry is not None and not stat.S_ISDIR(entry.stat.st_mode):
                yield entry.path, reason, "remove"

    def dhcp_leases(self):
        for directory, patterns in DHCP_LEASE_DIRS:
            for entry in self.entries(directory):
                if stat.S_ISDIR(entry.stat.st_mode):
                    continue
                name = entry.path.rsplit("/", 1)[1]
                if patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    yield entry.path, "DHCP lease or client identity of the builder", "remove"
        if not self.is_mount("/run"):
            for entry in self.entries("/run/systemd/netif/leases"):
                yield entry.path, "systemd-networkd lease of the builder", "remove"

    def temp_files(self):
        for directory in ("/tmp", "/var/tmp"):
            for entry in self.entries(directory):
                yield entry.path, "temporary file of the builder", "remove"

    def _login_record_paths(self) -> set:
        paths = set()
        for path in LOGIN_RECORD_FILES:
            entry = self.lstat(path)
            if entry is not None:
                paths.add(entry.path)
        return paths

    def logs(self):
        journal = self.directory("/var/log/journal")
        skip = set()
        if journal:
            skip.add(journal)
            for entry in self.entries(journal):
                yield entry.path, "journal of the builder", "remove"
        if not self.is_mount("/run"):
            for entry in self.entries("/run/log/journal"):
                yield entry.path, "runtime journal of the builder", "remove"
        var_log = self.directory("/var/log")
        if not var_log:
            return
        records = self._login_record_paths()
        for entry in sorted(self.walk(var_log, skip=skip)):
            if not stat.S_ISREG(entry.stat.st_mode) or entry.path in records:
                continue
            name = entry.path.rsplit("/", 1)[1]
            if entry.path.rsplit("/", 1)[0] == var_log and name.startswith("cloud-init"):
                continue  # cloud_init_state
            if ROTATED_LOG.fullmatch(name):
                yield entry.path, "rotated log of the builder", "remove"
            elif entry.stat.st_size > 0:
                yield entry.path, "log of the builder", "truncate"

    def login_records(self):
        for path in sorted(self._login_record_paths()):
            entry = self.lstat(path)
            if entry is not None and stat.S_ISREG(entry.stat.st_mode) and entry.stat.st_size > 0:
                yield entry.path, "login records of the builder (%s)" % entry.path.rsplit("/", 1)[1], "truncate"
        for path in UTMP_FILES:
            directory = path.rsplit("/", 1)[0]
            if self.is_mount(directory):
                continue
            entry = self.lstat(path)
            if entry is not None and not stat.S_ISDIR(entry.stat.st_mode):
                yield entry.path, "current logins of the builder (utmp)", "remove"

    def crash_data(self):
        for directory in CRASH_DIRS:
            for entry in self.entries(directory):
                yield entry.path, "crash data of the builder", "remove"

    def cron_spool(self):
        for directory in CRON_DIRS:
            for entry in self.entries(directory):
                name = entry.path.rsplit("/", 1)[1]
                if name in CRON_KEEP or stat.S_ISDIR(entry.stat.st_mode):
                    continue
                yield entry.path, "job scheduled on the builder (%s)" % directory, "remove"
        # Red Hat's cron keeps each user's crontab directly in /var/spool/cron.
        for entry in self.entries("/var/spool/cron"):
            if stat.S_ISREG(entry.stat.st_mode) and entry.path.rsplit("/", 1)[1] not in CRON_KEEP:
                yield entry.path, "crontab of a user of the builder", "remove"

    def mail_spool(self):
        for directory in MAIL_DIRS:
            for entry in self.entries(directory):
                if not stat.S_ISDIR(entry.stat.st_mode):
                    yield entry.path, "mailbox of a user of the builder", "remove"

    def package_caches(self):
        for entry in self.entries("/var/cache/apt"):
            if stat.S_ISREG(entry.stat.st_mode) and entry.path.endswith(".bin"):
                yield entry.path, "apt package index cache", "remove"
        for entry in self.entries("/var/cache/apt/archives"):
            if not stat.S_ISDIR(entry.stat.st_mode) and entry.path.endswith(".deb"):
                yield entry.path, "downloaded package", "remove"
        for entry in self.entries("/var/cache/apt/archives/partial"):
            yield entry.path, "partly downloaded package", "remove"
        for entry in self.entries("/var/lib/apt/lists"):
            name = entry.path.rsplit("/", 1)[1]
            if name == "lock":
                continue
            if name == "partial" and stat.S_ISDIR(entry.stat.st_mode):
                for child in self.entries(entry.path):
                    yield child.path, "partly downloaded apt list", "remove"
                continue
            yield entry.path, "apt package list", "remove"
        for directory in ("/var/cache/dnf", "/var/cache/libdnf5", "/var/cache/yum"):
            for entry in self.entries(directory):
                yield entry.path, "%s cache" % directory.rsplit("/", 1)[1], "remove"

    def passwd_backups(self):
        for path in PASSWD_BACKUPS:
            entry = self.lstat(path)
            if entry is not None and not stat.S_ISDIR(entry.stat.st_mode):
                yield entry.path, "backup of %s from before its last change" % path[:-1], "remove"

    def backup_files(self):
        for entry in self.walk_trees(BACKUP_DIRS, skip=CONTENT_SKIP):
            if stat.S_ISDIR(entry.stat.st_mode):
                continue
            name = entry.path.rsplit("/", 1)[1]
            if any(fnmatch.fnmatchcase(name, p) for p in BACKUP_PATTERNS):
                yield entry.path, "backup copy of a file (%s)" % name, "remove"

    def cloud_init_sudoers(self):
        entry = self.lstat("/etc/sudoers.d/90-cloud-init-users")
        if entry is not None:
            yield entry.path, "sudo rights cloud-init granted the builder's default user", "remove"

    def root_password(self):
        entry = self.lstat("/etc/shadow")
        text = self.text("/etc/shadow")
        if entry is None or text is None:
            return
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) >= 2 and fields[0] == "root":
                if fields[1] == "":
                    yield entry.path, "root has an empty password", "lock_password"
                elif not fields[1].startswith(("!", "*")):
                    yield entry.path, "root has a usable password", "lock_password"
                return

    def bake_traces(self):
        if self.o.bake_key_blob:
            remove_whole = "authorized_keys" in self.selected
            for entry, users in self._authorized_keys_files():
                if stat.S_ISREG(entry.stat.st_mode) and self._holds_bake_key(entry.path):
                    kept = any(user in self.o.keep_authorized_keys for user in users)
                    action = "remove_key" if kept or not remove_whole else "remove"
                    yield entry.path, "holds the bake's temporary key (%s)" % ", ".join(users), action
        for path in self.o.bake_paths:
            entry = self.lstat(path)
            if entry is not None:
                yield entry.path, "left by the bake", "remove"
        for home, _users in self.homes:
            for relative in ANSIBLE_TRACES:
                entry = self.lstat(home + "/" + relative)
                if entry is None:
                    continue
                path = entry.path
                parent = path.rsplit("/", 1)[0]
                if relative == ".ansible/tmp" and [e.path for e in self.entries(parent)] == [path]:
                    path = parent  # ~/.ansible holds nothing else: remove it whole
                what = "async results" if "async" in relative else "remote temporary directory"
                yield path, "Ansible's %s" % what, "remove"

    # -- content ------------------------------------------------------------------------------

    def dpkg_files(self) -> dict:
        """{path: md5} of every file dpkg installed (md5sums) and every conffile (status)."""
        if self._dpkg is None:
            table: dict = {}
            for entry in self._entries_matching("/var/lib/dpkg/info", ("*.md5sums",)):
                for line in (self.text(entry.path, 64 * 1024 * 1024) or "").splitlines():
                    digest, _sep, relative = line.partition("  ")
                    if len(digest) == 32 and relative:
                        table["/" + relative.lstrip("/")] = digest
            in_conffiles = False
            for line in (self.text("/var/lib/dpkg/status", 256 * 1024 * 1024) or "").splitlines():
                if line.startswith("Conffiles:"):
                    in_conffiles = True
                elif in_conffiles and line.startswith(" "):
                    parts = line.split()
                    if len(parts) >= 2 and parts[0].startswith("/") and len(parts[1]) == 32:
                        table[parts[0]] = parts[1]
                else:
                    in_conffiles = False
            self._dpkg = table
        return self._dpkg

    def package_check(self) -> str:
        if self.directory("/var/lib/dpkg/info"):
            return "dpkg (md5sums and conffiles): files installed by a package and unchanged are skipped"
        if self.directory("/var/lib/rpm") or self.directory("/usr/lib/sysimage/rpm"):
            return ("none: the rpm database needs librpm (Berkeley DB, SQLite or ndb formats), which the standard "
                    "library cannot read portably; every matching file is reported, package files included")
        return "none: no package database found"

    def _package_owned(self, path: str, data: bytes) -> bool:
        digest = self.dpkg_files().get(path)
        return digest is not None and digest == _md5(data)

    def secrets(self, covered: t.Collection[str] = ()):
        """Secret content in files no other category removes (``covered``: paths found already)."""
        self.content["package_check"] = self.package_check()
        skip = set(CONTENT_SKIP)
        skip.update(covered)
        for entry in self.walk_trees(CONTENT_DIRS, skip=skip):
            if not stat.S_ISREG(entry.stat.st_mode) or entry.path in covered:
                continue
            if matches(entry.path, self.o.exclude):
                continue
            if entry.stat.st_size > self.o.max_file_size:
                self.content["skipped_large"] += 1
                continue
            if entry.stat.st_size == 0:
                continue
            if self.content["files"] >= self.o.max_files:
                self.content["complete"] = False
                return
            self.content["files"] += 1
            data = self.read(entry.path, self.o.max_file_size)
            if not data:
                continue
            self.content["bytes"] += len(data)
            if b"\0" in data[:8192]:
                self.content["skipped_binary"] += 1
                continue
            reason = secret_in(data)
            if reason is None:
                continue
            if self._package_owned(entry.path, data):
                self.content["skipped_package_owned"] += 1
                continue
            if matches(entry.path, self.o.remove_secret_files):
                yield entry.path, reason + "; listed in remove_secret_files", "remove"
            elif matches(entry.path, self.o.keep_secret_files):
                self.kept_secrets.append({"path": entry.path, "reason": reason})
            else:
                yield entry.path, reason, "review"


def _line_of(data: bytes, position: int) -> int:
    return data.count(b"\n", 0, position) + 1


def _aws_secret_near(data: bytes, start: int, end: int) -> bool:
    window = data[max(0, start - 1024):end + 1024]
    for found in AWS_SECRET_VALUE.finditer(window):
        value = found.group(0)
        if (re.search(rb"[a-z]", value) and re.search(rb"[A-Z]", value)
                and re.search(rb"[0-9/+]", value)):
            return True
    return False


def _commented(data: bytes, position: int) -> bool:
    start = data.rfind(b"\n", 0, position) + 1
    return data[start:position].lstrip().startswith((b"#", b";", b"//"))


def _assignment(data: bytes) -> t.Optional[t.Tuple[str, int]]:
    """(name, position) of the first NAME=value assigning a secret-looking name a real value."""
    for hit in SECRET_KEYWORD.finditer(data):
        end = hit.start()
        while end < len(data) and data[end:end + 1] not in (b" ", b"\t", b"="):
            end += 1
        start = end
        while start > 0 and (data[start - 1:start].isupper() or data[start - 1:start].isdigit()
                             or data[start - 1:start] == b"_"):
            start -= 1
        if start > 0 and data[start - 1:start] not in (b" ", b"\t", b"\n", b";", b'"', b"'", b"="):
            continue
        name = data[start:end]
        if not SECRET_NAME.fullmatch(name) or not SECRET_NAMES.fullmatch(name):
            continue
        value = SECRET_VALUE.match(data, end)
        if value is None or value.group(1).strip(b"\"'").lower() in PLACEHOLDERS or _commented(data, start):
            continue
        return name.decode("ascii"), start
    return None


def secret_in(data: bytes) -> t.Optional[str]:
    """What secret the content holds ('<kind> (line N)'), never the secret itself; None when none.
    Each pattern runs only when a literal it needs is in the content (a scan stays fast)."""
    if b"PRIVATE KEY-----" in data or b"PuTTY-User-Key-File-" in data:
        found = PEM_PRIVATE.search(data) or PUTTY_KEY.search(data)
        if found:
            return "private key block (line %d)" % _line_of(data, found.start())
    if b"AKIA" in data or b"ASIA" in data:
        for hit in AWS_KEY_ID.finditer(data):
            if _aws_secret_near(data, hit.start(), hit.end()):
                return "AWS access key ID with its secret key (line %d)" % _line_of(data, hit.start())
    if b"ecret_access_key" in data or b"ECRET_ACCESS_KEY" in data:
        found = AWS_SECRET_ASSIGNMENT.search(data)
        if found and not _commented(data, found.start()):
            return "AWS secret access key (line %d)" % _line_of(data, found.start())
    for (kind, pattern), literal in zip(TOKEN_PATTERNS, (b"_", b"gl", b"xox", b"hooks.slack.com")):
        if literal in data:
            found = pattern.search(data)
            if found:
                return "%s (line %d)" % (kind, _line_of(data, found.start()))
    assigned = _assignment(data)
    if assigned:
        return "assignment to %s (line %d)" % (assigned[0], _line_of(data, assigned[1]))
    return None


# --- scan ---------------------------------------------------------------------------------------------

def _collect(options: Options) -> t.Tuple[list, list, Scanner]:
    """(findings, excluded findings, scanner) in category order, one per (path, category)."""
    scanner = Scanner(options)
    findings: list = []
    excluded: list = []
    seen = set()
    for category in options.categories:
        if category == "secrets":
            # what another category removes or empties, what is excluded, and what a category
            # switched off would find (left alone on purpose) is not searched for secrets
            covered = {f.path for f in findings if f.action in ("remove", "truncate")}
            covered.update(f.path for f in excluded)
            for other in CATEGORY_NAMES:
                if other not in options.categories and other != "secrets":
                    covered.update(path for path, _reason, _action in getattr(scanner, other)())
            produced = scanner.secrets(covered)
        else:
            produced = getattr(scanner, category)()
        for path, reason, action in produced:
            if (path, category) in seen:
                continue
            seen.add((path, category))
            finding = Finding(path, category, reason, action)
            (excluded if matches(path, options.exclude) else findings).append(finding)
    return findings, excluded, scanner


def finding_dict(image: ImageRoot, finding: Finding) -> dict:
    return {"path": finding.path, "category": finding.category, "reason": finding.reason,
            "action": finding.action, "root_path": image.host_path(finding.path)}


def _report(options: Options, findings: list, scanner: Scanner) -> dict:
    counts = {category: 0 for category in options.categories}
    for finding in findings:
        counts[finding.category] += 1
    result = {
        "root": options.root.root,
        "categories": list(options.categories),
        "findings": [finding_dict(options.root, f) for f in findings],
        "counts": counts,
        "clean": not findings,
        "review": [finding_dict(options.root, f) for f in findings if f.action == "review"],
    }
    if "secrets" in options.categories or "backup_files" in options.categories:
        result["content_scan"] = dict(scanner.content, max_file_size=options.max_file_size,
                                      max_files=options.max_files)
        result["kept_secret_files"] = scanner.kept_secrets
    return result


def _os_errors_as(what: str) -> t.Callable[[t.Callable[..., dict]], t.Callable[..., dict]]:
    """Report an OSError the wrapped scan or clean lets through as a HygieneError naming the file and the root."""
    def decorate(func: t.Callable[..., dict]) -> t.Callable[..., dict]:
        @functools.wraps(func)
        def wrapper(request: HygieneRequest, *args: t.Any, **kwargs: t.Any) -> dict:
            try:
                return func(request, *args, **kwargs)
            except OSError as exc:
                raise HygieneError("%s %s under %s: %s"
                                   % (what, exc.filename or "a file", request.root, exc.strerror or exc)) from exc
        return wrapper
    return decorate


@_os_errors_as("image_scan: cannot read")
def run_scan(request: HygieneRequest) -> dict:
    """Scan the request's root; returns findings (dicts), counts, clean and the content stats."""
    findings, _excluded, scanner = _collect(request.options)
    return _report(request.options, findings, scanner)


def scan(root: t.Any, categories: t.Any = ("all",), keep_authorized_keys: t.Any = (), exclude: t.Any = (),
         bake_authorized_key: t.Any = None, bake_paths: t.Any = (), keep_secret_files: t.Any = (),
         remove_secret_files: t.Any = (), content_max_file_size: t.Any = None, content_max_files: t.Any = None) -> dict:
    """build_request and run_scan in one, for callers holding plain values."""
    return run_scan(build_request({
        "root": root, "categories": categories, "keep_authorized_keys": keep_authorized_keys, "exclude": exclude,
        "bake_authorized_key": bake_authorized_key, "bake_paths": bake_paths, "keep_secret_files": keep_secret_files,
        "remove_secret_files": remove_secret_files, "content_max_file_size": content_max_file_size,
        "content_max_files": content_max_files}))


def summary(result: dict) -> str:
    """One line naming what was found, for fail messages."""
    parts = ["%s (%d)" % (category, count) for category, count in result["counts"].items() if count]
    return "%d finding%s under %s: %s" % (
        len(result["findings"]), "" if len(result["findings"]) == 1 else "s", result["root"], ", ".join(parts))


def warnings(result: dict) -> list:
    """What the caller should know that is not a finding (an incomplete content scan)."""
    content = result.get("content_scan") or {}
    out = []
    if content and not content.get("complete", True):
        out.append("image_scan: the content scan stopped after content_max_files=%d files; files beyond were not "
                   "searched for secrets (raise content_max_files)" % content["max_files"])
    if content.get("skipped_large"):
        out.append("image_scan: %d file(s) larger than content_max_file_size=%d bytes were not searched for secrets"
                   % (content["skipped_large"], content["max_file_size"]))
    return out


# --- clean ----------------------------------------------------------------------------------------------

def _run_subprocess(argv: list, environ_update: t.Optional[dict] = None) -> t.Tuple[int, str, str]:
    env = dict(os.environ, **(environ_update or {}))
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def cloud_init_clean_plan(scanner: Scanner, findings: list, excluded: list, enabled: bool) -> dict:
    """Whether and how `cloud-init clean` runs, with the flags this image's cloud-init has."""
    plan: dict = {"run": False, "argv": [], "version": None, "reason": ""}
    selected = scanner.selected
    if not enabled:
        plan["reason"] = "cloud_init_clean is off"
        return plan
    if "cloud_init_state" not in selected:
        plan["reason"] = "cloud_init_state is not selected"
        return plan
    if not any(f.category in ("cloud_init_state", "cloud_init_seed") for f in findings):
        plan["reason"] = "nothing of cloud-init's to clean"
        return plan
    if not scanner.image.is_file("/usr/bin/cloud-init"):
        plan["reason"] = "the image has no /usr/bin/cloud-init"
        return plan
    if any(stat.S_ISREG(e.stat.st_mode) or stat.S_ISLNK(e.stat.st_mode) for e in scanner.walk("/var/lib/cloud/scripts")):
        plan["reason"] = ("/var/lib/cloud/scripts holds files, which cloud-init clean would delete; cleaned file by "
                          "file instead")
        return plan
    touched = [f for f in excluded if f.category in CLOUD_INIT_CLEAN_TOUCHES]
    if touched:
        plan["reason"] = "excluded paths that cloud-init clean would remove (%s); cleaned file by file instead" % (
            ", ".join(f.path for f in touched[:3]))
        return plan
    version = cloud_init_version(scanner.image)
    plan["version"] = "%d.%d" % version if version else None
    argv = ["/usr/bin/cloud-init", "clean", "--logs"]
    if "cloud_init_seed" in selected:
        argv.append("--seed")
    if version and version >= (22, 3) and "machine_id" in selected:
        argv.append("--machine-id")
    # 23.4 has --configs; only the network part: ssh_config removes sshd_config.d/50-cloud-init.conf,
    # the image's password-login policy, which the cloudinit role decides on; datasource (25.2) starts
    # datasource discovery in the image. Network configuration stays when cloud-init is told not to
    # render one at boot.
    if (version and version >= (23, 4) and "network_config" in selected
            and not scanner.network_disabled()):
        argv += ["--configs", "network"]
    plan.update(run=True, argv=argv)
    return plan


def _lock_root(text: str) -> str:
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if line.startswith("root:"):
            fields = line.split(":")
            if len(fields) >= 2 and not fields[1].startswith(("!", "*")):
                fields[1] = "!" + fields[1]
                lines[index] = ":".join(fields)
            break
    return "\n".join(lines)


def _redacted_root_line(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("root:"):
            fields = line.split(":")
            if len(fields) >= 2:
                prefix = "!" if fields[1].startswith("!") else ""
                fields[1] = prefix + ("<hash>" if fields[1].lstrip("!") else "")
            return ":".join(fields) + "\n"
    return ""


class Cleaner:
    """Acts on findings through the root-confined layer; collects the diff and any failures."""

    def __init__(self, options: Options):
        self.o = options
        self.image = options.root
        self.diff: list = []
        self.failed: list = []

    def act(self, finding: Finding, check_mode: bool) -> bool:
        """Carry out one finding's action; whether anything changed (or would)."""
        try:
            return getattr(self, "_" + finding.action)(finding, check_mode)
        except (BakeryError, OSError) as exc:
            self.failed.append({"path": finding.path, "category": finding.category, "action": finding.action,
                                "error": getattr(exc, "msg", None) or str(exc)})
            return False

    def _remove(self, finding: Finding, check_mode: bool) -> bool:
        if check_mode:
            return self.image.lstat(finding.path) is not None
        return self.image.remove(finding.path)

    def _truncate(self, finding: Finding, check_mode: bool) -> bool:
        entry = self.image.lstat(finding.path)
        if entry is None or not stat.S_ISREG(entry.stat.st_mode) or entry.stat.st_size == 0:
            return False
        return True if check_mode else self.image.truncate(finding.path)

    def _rewrite(self, path: str, change: t.Callable[[str], str], check_mode: bool, show=None) -> bool:
        data = self.image.read_bytes(path)
        if data is None:
            return False
        before = data.decode("utf-8", errors="surrogateescape")
        after = change(before)
        if after == before:
            return False
        shown = show or (lambda text: text)
        self.diff.append({"before_header": path, "after_header": path, "before": shown(before), "after": shown(after)})
        if not check_mode:
            self.image.write_bytes(path, after.encode("utf-8", errors="surrogateescape"))
        return True

    def _lock_password(self, finding: Finding, check_mode: bool) -> bool:
        return self._rewrite(finding.path, _lock_root, check_mode, show=_redacted_root_line)

    def _remove_key(self, finding: Finding, check_mode: bool) -> bool:
        blob = self.o.bake_key_blob

        def drop(text: str) -> str:
            return "".join(line for line in text.splitlines(True) if key_blob(line) != blob)

        return self._rewrite(finding.path, drop, check_mode,
                             show=lambda text: "".join(ln for ln in text.splitlines(True) if key_blob(ln) == blob))

    def _strip_lines(self, finding: Finding, check_mode: bool) -> bool:
        def drop(text: str) -> str:
            return "".join(line for line in text.splitlines(True) if not HWADDR_LINE.fullmatch(line.rstrip("\n")))

        return self._rewrite(finding.path, drop, check_mode)

    def _reset_hostname(self, finding: Finding, check_mode: bool) -> bool:
        entry = self.image.lstat(finding.path)
        before = ""
        if entry is not None and stat.S_ISREG(entry.stat.st_mode):
            before = (self.image.read_text(finding.path, limit=65536) or "")
        elif entry is not None:
            before = "(a link to %s)\n" % self.image.readlink(finding.path)
        if before == "localhost\n":
            return False
        self.diff.append({"before_header": finding.path, "after_header": finding.path, "before": before,
                          "after": "localhost\n"})
        if not check_mode:
            self.image.write_bytes(finding.path, b"localhost\n", mode=None if entry is not None and
                                   stat.S_ISREG(entry.stat.st_mode) else 0o644)
        return True

    def _review(self, finding: Finding, check_mode: bool) -> bool:
        return False


def _describe_review(review: list) -> str:
    shown = "; ".join("%s: %s" % (f.path, f.reason) for f in review[:20])
    more = " (and %d more)" % (len(review) - 20) if len(review) > 20 else ""
    return ("secrets: %d file(s) hold secrets and are not the builder's own, so they are neither removed nor shipped "
            "silently: %s%s. List each in keep_secret_files to ship it knowingly, or in remove_secret_files to "
            "delete it (then provide it at launch)" % (len(review), shown, more))


def clean(root: t.Any, categories: t.Any = ("all",), keep_authorized_keys: t.Any = (), exclude: t.Any = (),
          bake_authorized_key: t.Any = None, bake_paths: t.Any = (), keep_secret_files: t.Any = (),
          remove_secret_files: t.Any = (), content_max_file_size: t.Any = None, content_max_files: t.Any = None,
          defer: t.Any = (), cloud_init_clean: bool = True, check_mode: bool = False,
          run: t.Optional[t.Callable[..., t.Tuple[int, str, str]]] = None) -> dict:
    """build_request and run_clean in one, for callers holding plain values."""
    return run_clean(build_request({
        "root": root, "categories": categories, "keep_authorized_keys": keep_authorized_keys, "exclude": exclude,
        "bake_authorized_key": bake_authorized_key, "bake_paths": bake_paths, "keep_secret_files": keep_secret_files,
        "remove_secret_files": remove_secret_files, "content_max_file_size": content_max_file_size,
        "content_max_files": content_max_files, "defer": defer, "cloud_init_clean": cloud_init_clean}),
        check_mode=check_mode, run=run)


@_os_errors_as("image_clean: cannot act on")
def run_clean(request: HygieneRequest, check_mode: bool = False,
              run: t.Optional[t.Callable[..., t.Tuple[int, str, str]]] = None) -> dict:
    """Scan, then remove what was found, then scan again; raises HygieneError (with the result) when
    secrets need a decision or anything is left.

    ``request.defer`` names categories left for a final step; it applies only when the root is the
    running system ("/"), where the session still needs them. ``run`` runs a command
    (AnsibleModule.run_command or equivalent) for cloud-init clean, sandboxed when the root is not "/".
    """
    # pylint: disable=import-outside-toplevel
    from ansible_collections.bakery.ami.plugins.module_utils._sandbox import SandboxError, run_in_image

    options = request.options
    deferrable = list(request.defer)
    image = options.root
    live = image.root == "/"
    deferred_categories = set(deferrable) if live else set()

    findings, excluded, scanner = _collect(options)
    result = _report(options, findings, scanner)
    result.update(check_mode=check_mode, actions=[], deferred=[], remaining=[], failed=[], diff=[],
                  cloud_init_clean={"run": False, "argv": [], "version": None, "reason": ""})
    review = [f for f in findings if f.action == "review"]
    if review:
        raise HygieneError(_describe_review(review), result=dict(result, changed=False))

    plan = cloud_init_clean_plan(scanner, findings, excluded, request.cloud_init_clean)
    result["cloud_init_clean"] = plan
    changed = False
    if plan["run"]:
        changed = True
        if not check_mode:
            machine_id = image.lstat("/etc/machine-id")
            try:
                rc, out, err = run_in_image(image.root, plan["argv"], run or _run_subprocess)
            except SandboxError as exc:
                rc, out, err = -1, "", exc.msg
            plan.update(rc=rc, stderr=(err or "")[-2000:], stdout=(out or "")[-2000:])
            if rc != 0:
                plan["reason"] = "cloud-init clean exited %s; cleaned file by file instead" % rc
            # cloud-init 22.4, and later ones where systemd is not running (a chroot), delete
            # /etc/machine-id; an image keeps an empty one, so systemd makes a new id at first boot.
            if (machine_id is not None and stat.S_ISREG(machine_id.stat.st_mode)
                    and image.lstat("/etc/machine-id") is None):
                image.write_bytes("/etc/machine-id", b"", mode=stat.S_IMODE(machine_id.stat.st_mode))
                plan["machine_id_restored"] = True
            findings_now, _excluded, _scanner = _collect(options)
        else:
            findings_now = findings
    else:
        findings_now = findings

    cleaner = Cleaner(options)
    for finding in findings_now:
        if finding.category in deferred_categories or finding.action == "review":
            continue
        if cleaner.act(finding, check_mode):
            changed = True
            result["actions"].append({"path": finding.path, "category": finding.category, "action": finding.action})

    removals = [a for a in result["actions"] if a["action"] in ("remove", "truncate")]
    if removals:
        cleaner.diff.insert(0, {"before_header": "files under %s" % image.root, "after_header": "files under %s" % image.root,
                                "before": "".join("%s (%s)\n" % (a["path"], a["action"]) for a in removals),
                                "after": "".join("%s (emptied)\n" % a["path"] for a in removals
                                                 if a["action"] == "truncate")})
    result["diff"] = cleaner.diff
    result["failed"] = cleaner.failed
    result["changed"] = changed

    if check_mode:
        result["deferred"] = [finding_dict(image, f) for f in findings if f.category in deferred_categories]
        return result
    left, _excluded, _scanner = _collect(options)
    result["deferred"] = [finding_dict(image, f) for f in left if f.category in deferred_categories]
    remaining = [f for f in left if f.category not in deferred_categories]
    result["remaining"] = [finding_dict(image, f) for f in remaining]
    if remaining or cleaner.failed:
        problems = ["%s: %s" % (f.category, f.path) for f in remaining[:20]]
        problems += ["%s (%s failed: %s)" % (f["path"], f["action"], f["error"]) for f in cleaner.failed[:10]]
        raise HygieneError("image_clean: the image is not clean after cleaning; %d item(s) remain: %s"
                           % (len(remaining) + len(cleaner.failed), ", ".join(problems)), result=result)
    return result
