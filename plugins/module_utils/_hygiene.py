# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Image hygiene: what must not ship in an image, by category, and the scanner that finds it.
#
# CATEGORIES is the table the image_scan module and the generalize role share: for each category,
# what it finds (and so what the role removes) and why it must not ship. scan() walks a root
# directory (the running system when root is "/", otherwise a mounted volume, a chroot or a test
# tree) and returns one Finding per item, with the action the role takes on it:
#   remove          delete the file, link or directory (recursively)
#   truncate        empty the file in place, keeping its mode and owner (machine-id, live logs)
#   lock_password   prefix root's password hash in /etc/shadow with "!"
#   remove_key      delete the lines holding the bake's temporary key from an authorized_keys file
#                   that must otherwise stay
#
# Paths are resolved the way a process chrooted into root would see them: a symbolic link met on
# the way is followed inside root only (an absolute target is taken relative to root, ".." stops
# at root), and the last component is examined with lstat and never followed. Every reported path
# is therefore canonical inside the image (no symbolic link before its last component), so
# root_path (root joined with it) can be removed without leaving root.

from __future__ import annotations

import fnmatch
import os
import re
import stat
import typing as t

# --- the category table -------------------------------------------------------------------------
# Order matters: it is the order of the report and of the role's removals.
CATEGORIES = {
    "ssh_host_keys": {
        "finds": "/etc/ssh/ssh_host_* (private and public host keys and host certificates).",
        "why": "Every instance would share one SSH host identity: a client cannot tell instances "
               "apart, and whoever holds the image holds the private key of every instance. cloud-init "
               "(ssh module) or the distribution's sshd-keygen generates new keys on first boot.",
    },
    "authorized_keys": {
        "finds": "~/.ssh/authorized_keys and ~/.ssh/authorized_keys2 holding at least one key, of root "
                 "and of every user (homes from /etc/passwd and every directory under /home), except "
                 "the users listed to keep.",
        "why": "A key left behind lets its holder log in to every instance started from the image. "
               "cloud-init installs the launch key pair on each new instance.",
    },
    "shell_history": {
        "finds": "Command histories in every home: bash, zsh, sh/ksh, ash, csh, fish, python, mysql, "
                 "psql, sqlite, redis-cli, node, less (.lesshst) and vim (.viminfo).",
        "why": "Histories hold the builder's commands, often with passwords, tokens and host names.",
    },
    "cloud_init_state": {
        "finds": "cloud-init's record of the builder: the contents of /var/lib/cloud/instances, data "
                 "and sem, the instance link and every other entry of /var/lib/cloud except seed/ and "
                 "scripts/; /var/log/cloud-init*.log; /run/cloud-init when /run is part of the image.",
        "why": "cloud-init compares the cached instance with the datasource on boot; a stale record "
               "carries the builder's user-data (which may hold secrets) and can make the first boot "
               "misbehave. Removed with 'cloud-init clean --logs' where possible.",
    },
    "cloud_init_seed": {
        "finds": "The contents of /var/lib/cloud/seed (NoCloud and other local seeds).",
        "why": "A local seed is found before the cloud's own datasource: instances would boot with the "
               "builder's instance-id and user-data and never run as new instances.",
    },
    "machine_id": {
        "finds": "A non-empty /etc/machine-id (other than 'uninitialized'); /var/lib/dbus/machine-id "
                 "unless it is a link to /etc/machine-id; systemd's /var/lib/systemd/random-seed and "
                 "/var/lib/systemd/credential.secret.",
        "why": "The machine-id names the machine to systemd, journald, DHCP (the DUID) and D-Bus; every "
               "instance would share it. An empty /etc/machine-id makes systemd generate a new one on "
               "first boot. The random seed and the credential key are per-machine secrets.",
    },
    "dhcp_leases": {
        "finds": "DHCP leases and client identities of dhclient (/var/lib/dhcp, /var/lib/dhclient), "
                 "NetworkManager (*.lease, secret_key), dhcpcd (/var/lib/dhcpcd, /var/lib/dhcpcd5, "
                 "/var/db/dhcpcd: leases, duid, secret) and systemd-networkd (/run/systemd/netif/leases "
                 "when /run is part of the image).",
        "why": "A new instance would ask for the builder's address and present the builder's DUID.",
    },
    "temp_files": {
        "finds": "Everything in /tmp and /var/tmp.",
        "why": "The builder's downloads, scripts and unpacked secrets.",
    },
    "logs": {
        "finds": "The journal (the machine directories in /var/log/journal, and /run/log/journal when "
                 "/run is part of the image) and every non-empty file under /var/log (syslog, messages, "
                 "auth.log, secure, wtmp, btmp, lastlog, package manager logs, *.log ...). Rotated logs "
                 "are removed, current ones emptied in place so their mode and owner stay.",
        "why": "Logs record the builder's logins, addresses, commands and errors.",
    },
    "package_caches": {
        "finds": "apt: /var/cache/apt/*.bin, /var/cache/apt/archives/*.deb and archives/partial, the "
                 "contents of /var/lib/apt/lists (lock files excepted); dnf and yum: the contents of "
                 "/var/cache/dnf, /var/cache/libdnf5 and /var/cache/yum.",
        "why": "Stale package indexes and downloaded packages waste space in every instance, and stale "
               "lists make later installs use outdated metadata.",
    },
    "cloud_init_sudoers": {
        "finds": "/etc/sudoers.d/90-cloud-init-users.",
        "why": "It grants the builder's default user sudo rights; cloud-init writes it again for the "
               "default user of each new instance.",
    },
    "root_password": {
        "finds": "A usable (or empty) password for root in /etc/shadow.",
        "why": "A root password set on the builder would open every instance; it is locked (prefixed "
               "with '!'), not changed, so key-based access is unaffected.",
    },
    "bake_traces": {
        "finds": "The bake's own traces: authorized_keys files holding the bake's temporary public key, "
                 "the paths the bake says it left (such as a temporary private key), and Ansible's "
                 "remote temporary directory (~/.ansible/tmp) and async results (~/.ansible_async) "
                 "in every home.",
        "why": "The temporary key opens the image to whoever holds the private key; Ansible's "
               "directories may hold module arguments and command output.",
    },
}

CATEGORY_NAMES = tuple(CATEGORIES)

ACTIONS = ("remove", "truncate", "lock_password", "remove_key")

# Files under a home directory holding command histories.
HISTORY_FILES = (
    ".bash_history",
    ".zsh_history",
    ".zhistory",
    ".histfile",
    ".sh_history",
    ".ash_history",
    ".history",
    ".local/share/fish/fish_history",
    ".python_history",
    ".mysql_history",
    ".psql_history",
    ".sqlite_history",
    ".rediscli_history",
    ".node_repl_history",
    ".lesshst",
    ".viminfo",
)

AUTHORIZED_KEYS_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")

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

# Entries of /var/lib/cloud that are configuration, not the builder's state.
CLOUD_DIR_KEEP = ("seed", "scripts")

# Rotated or compressed logs: removed instead of emptied.
ROTATED_LOG = re.compile(r"(\.\d+(\.(gz|xz|bz2|zst|lz4))?|\.(gz|xz|bz2|zst|lz4|old)|-\d{8}(\.(gz|xz|bz2|zst))?)$")

# Public key types, as in authorized_keys(5).
KEY_TYPE = re.compile(r"^(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(256|384|521)|"
                      r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com|"
                      r"[a-z0-9-]+-cert-v01@openssh\.com)$")
KEY_BLOB = re.compile(r"^[A-Za-z0-9+/]+={0,3}$")

# Largest authorized_keys file read for the bake's key (larger ones are reported without reading).
MAX_KEYS_FILE = 1024 * 1024
# Deepest symbolic link chain followed while resolving a path inside root.
MAX_LINKS = 40


_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,30}[A-Za-z0-9._$-]?$")


class HygieneError(Exception):
    """A user error, with a message naming the option."""


class Finding(t.NamedTuple):
    path: str
    category: str
    reason: str
    action: str

    def as_dict(self, root: str) -> dict:
        return {
            "path": self.path,
            "category": self.category,
            "reason": self.reason,
            "action": self.action,
            "root_path": host_path(root, self.path),
        }


def host_path(root: str, image_path: str) -> str:
    """The file at image_path inside the image, as a path on this host."""
    if root == "/":
        return image_path
    return root.rstrip("/") + image_path


# --- input validation -----------------------------------------------------------------------------

def key_blob(line: str) -> str:
    """The base64 key of an authorized_keys or .pub line (options and comment may surround it)."""
    fields = line.strip().split()
    for index, field in enumerate(fields[:-1]):
        if KEY_TYPE.match(field) and KEY_BLOB.match(fields[index + 1]):
            return fields[index + 1]
    return ""


def normalize_categories(categories: t.Iterable[str]) -> list:
    """The selected categories in table order; 'all' selects every category."""
    wanted = set()
    unknown = []
    for name in categories or ():
        if name == "all":
            wanted.update(CATEGORY_NAMES)
        elif name in CATEGORIES:
            wanted.add(name)
        else:
            unknown.append(name)
    if unknown:
        raise HygieneError(
            "categories: unknown categor%s %s; known: all, %s"
            % ("y" if len(unknown) == 1 else "ies", ", ".join(repr(u) for u in unknown), ", ".join(CATEGORY_NAMES))
        )
    return [name for name in CATEGORY_NAMES if name in wanted]


def validate(root: str, categories, keep_authorized_keys=(), exclude=(), bake_authorized_key=None,
             bake_paths=()) -> dict:
    """Check every input before scanning; returns the normalized inputs or raises HygieneError."""
    if not root or not os.path.isabs(root):
        raise HygieneError("root: must be an absolute path, got %r" % (root,))
    if not os.path.isdir(root):
        raise HygieneError("root: %r does not exist or is not a directory" % (root,))
    selected = normalize_categories(categories)
    if not selected:
        raise HygieneError("categories: select at least one category (or 'all')")
    for user in keep_authorized_keys or ():
        # The portable user-name rule of useradd/adduser: no spaces, colons, slashes or keys.
        if not isinstance(user, str) or not _USER_NAME.match(user):
            raise HygieneError(
                "keep_authorized_keys: must be user names (letters, digits, '.', '_', '-', at most 32 "
                "characters, not starting with '-'), got %r" % (user,)
            )
    for pattern in exclude or ():
        if not pattern.startswith("/"):
            raise HygieneError("exclude: must be absolute paths inside the image (glob patterns allowed), got %r"
                               % (pattern,))
    blob = ""
    if bake_authorized_key:
        blob = key_blob(bake_authorized_key)
        if not blob:
            raise HygieneError("bake_authorized_key: must be a public key line such as "
                               "'ssh-ed25519 AAAA... comment', got %r" % (bake_authorized_key[:60],))
    for path in bake_paths or ():
        if not path.startswith("/") or path.rstrip("/") == "":
            raise HygieneError("bake_paths: must be absolute paths inside the image other than '/', got %r"
                               % (path,))
    return {
        "root": os.path.realpath(root),
        "categories": selected,
        "keep_authorized_keys": list(keep_authorized_keys or ()),
        "exclude": [p.rstrip("/") or "/" for p in exclude or ()],
        "bake_key_blob": blob,
        "bake_paths": [os.path.normpath(p) for p in bake_paths or ()],
    }


# --- safe path resolution inside root -------------------------------------------------------------

class Image:
    """Read-only view of a directory tree as the root of an image."""

    def __init__(self, root: str):
        self.root = root

    def host(self, image_path: str) -> str:
        return host_path(self.root, image_path)

    def resolve(self, image_path: str, follow_last: bool = False):
        """(canonical image path, lstat result) of image_path, or None when it does not exist.

        Links before the last component are followed inside root; the last one only with
        follow_last. A path that leaves root through "..", or a chain of links too long, is
        clamped at root or reported as missing, never followed outside.
        """
        pending = [p for p in image_path.split("/") if p not in ("", ".")]
        resolved: list = []
        links = 0
        st = os.lstat(self.root)
        while pending:
            name = pending.pop(0)
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = resolved + [name]
            try:
                st = os.lstat(self.host("/" + "/".join(candidate)))
            except OSError:
                return None
            if stat.S_ISLNK(st.st_mode) and (pending or follow_last):
                links += 1
                if links > MAX_LINKS:
                    return None
                try:
                    target = os.readlink(self.host("/" + "/".join(candidate)))
                except OSError:
                    return None
                if target.startswith("/"):
                    resolved = []
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
                continue
            if pending and not stat.S_ISDIR(st.st_mode):
                return None
            resolved = candidate
        if not resolved:
            st = os.lstat(self.root)
        return "/" + "/".join(resolved), st

    def lstat(self, image_path: str):
        """lstat of an existing path whose directories are resolved inside root, or None."""
        return self.resolve(image_path)

    def directory(self, image_path: str):
        """Canonical path of a directory (links to it followed inside root), or None."""
        found = self.resolve(image_path, follow_last=True)
        if found and stat.S_ISDIR(found[1].st_mode):
            return found[0]
        return None

    def entries(self, image_path: str):
        """(canonical path, lstat) of each entry of a directory, sorted, links not followed."""
        directory = self.directory(image_path)
        if directory is None:
            return []
        result = []
        try:
            with os.scandir(self.host(directory)) as iterator:
                names = sorted(entry.name for entry in iterator)
        except OSError:
            return []
        for name in names:
            path = directory.rstrip("/") + "/" + name
            try:
                result.append((path, os.lstat(self.host(path))))
            except OSError:
                continue
        return result

    def walk_files(self, image_path: str, skip=()):
        """(path, lstat) of every regular file below a directory, never descending into links."""
        pending = [image_path]
        while pending:
            current = pending.pop()
            for path, st in self.entries(current):
                if path in skip:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    pending.append(path)
                elif stat.S_ISREG(st.st_mode):
                    yield path, st

    def read_text(self, image_path: str, limit: int = MAX_KEYS_FILE):
        """Text of a regular file (never through a final link), or None."""
        found = self.resolve(image_path)
        if not found or not stat.S_ISREG(found[1].st_mode) or found[1].st_size > limit:
            return None
        try:
            with open(self.host(found[0]), "rb") as handle:
                return handle.read(limit).decode("utf-8", errors="replace")
        except OSError:
            return None

    def is_mount(self, image_path: str) -> bool:
        """Whether a directory of the image is a mount point on this host (e.g. tmpfs /run)."""
        directory = self.directory(image_path)
        if directory is None or directory == "/":
            return False
        return os.path.ismount(self.host(directory))


def _is_empty_dir(image: Image, path: str) -> bool:
    return not image.entries(path)


# --- users ------------------------------------------------------------------------------------------

def homes(image: Image) -> list:
    """(canonical home, [user names]) of every user in the image's /etc/passwd, /root and /home/*."""
    by_home: dict = {}

    def add(home_path: str, user: str) -> None:
        directory = image.directory(home_path)
        if directory is None:
            return
        users = by_home.setdefault(directory, [])
        if user not in users:
            users.append(user)

    text = image.read_text("/etc/passwd", limit=16 * 1024 * 1024) or ""
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[0] and not fields[0].startswith(("+", "-", "#")) and fields[5].startswith("/"):
            add(fields[5], fields[0])
    add("/root", "root")
    for path, st in image.entries("/home"):
        if stat.S_ISDIR(st.st_mode):
            add(path, os.path.basename(path))
    return sorted(by_home.items())


def _in_home(home: str, relative: str) -> str:
    return home.rstrip("/") + "/" + relative


# --- the categories ---------------------------------------------------------------------------------

class Scanner:
    def __init__(self, image: Image, keep_authorized_keys=(), bake_key_blob="", bake_paths=(),
                 selected=CATEGORY_NAMES):
        self.image = image
        self.keep = set(keep_authorized_keys or ())
        self.blob = bake_key_blob
        self.bake_paths = list(bake_paths or ())
        self.selected = set(selected)
        self._homes = None

    @property
    def homes(self):
        if self._homes is None:
            self._homes = homes(self.image)
        return self._homes

    def _existing(self, image_path: str):
        found = self.image.lstat(image_path)
        return found[0] if found else None

    def _holds_bake_key(self, path: str) -> bool:
        if not self.blob:
            return False
        text = self.image.read_text(path)
        return bool(text) and any(key_blob(line) == self.blob for line in text.splitlines())

    # Each category yields (path, reason, action).

    def ssh_host_keys(self):
        for path, st in self.image.entries("/etc/ssh"):
            if fnmatch.fnmatchcase(os.path.basename(path), "ssh_host_*") and not stat.S_ISDIR(st.st_mode):
                kind = "public host key" if path.endswith(".pub") else "private host key"
                yield path, "SSH %s shared by every instance" % kind, "remove"

    def _authorized_keys_files(self):
        for home, users in self.homes:
            for relative in AUTHORIZED_KEYS_FILES:
                found = self.image.lstat(_in_home(home, relative))
                if found:
                    yield found[0], found[1], users

    def authorized_keys(self):
        defer_bake_files = "bake_traces" in self.selected
        for path, st, users in self._authorized_keys_files():
            if any(user in self.keep for user in users):
                continue
            owners = ", ".join(users)
            if stat.S_ISLNK(st.st_mode):
                yield path, "authorized_keys of %s is a symbolic link" % owners, "remove"
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if defer_bake_files and self._holds_bake_key(path):
                # Reported under bake_traces, removed in the role's final step.
                continue
            text = self.image.read_text(path)
            if text is None:
                yield path, "authorized_keys of %s (too large to read)" % owners, "remove"
            elif any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
                yield path, "authorized_keys of %s holds keys" % owners, "remove"

    def shell_history(self):
        for home, users in self.homes:
            for relative in HISTORY_FILES:
                found = self.image.lstat(_in_home(home, relative))
                if found and not stat.S_ISDIR(found[1].st_mode):
                    yield found[0], "history of %s (%s)" % (", ".join(users), relative), "remove"

    def cloud_init_state(self):
        for path, st in self.image.entries("/var/lib/cloud"):
            name = os.path.basename(path)
            if name in CLOUD_DIR_KEEP:
                continue
            if stat.S_ISDIR(st.st_mode):
                for child, _st in self.image.entries(path):
                    yield child, "cloud-init state of the builder (%s)" % name, "remove"
            else:
                yield path, "cloud-init state of the builder (%s)" % name, "remove"
        for path, st in self.image.entries("/var/log"):
            if os.path.basename(path).startswith("cloud-init") and not stat.S_ISDIR(st.st_mode):
                yield path, "cloud-init log of the builder", "remove"
        if not self.image.is_mount("/run"):
            for path, _st in self.image.entries("/run/cloud-init"):
                yield path, "cloud-init runtime state of the builder", "remove"

    def cloud_init_seed(self):
        for path, _st in self.image.entries("/var/lib/cloud/seed"):
            yield path, "local cloud-init seed (%s) found before the cloud's datasource" % os.path.basename(path), \
                "remove"

    def machine_id(self):
        found = self.image.lstat("/etc/machine-id")
        if found:
            path, st = found
            if stat.S_ISLNK(st.st_mode):
                yield path, "machine-id is a symbolic link", "remove"
            elif stat.S_ISREG(st.st_mode) and st.st_size > 0:
                text = self.image.read_text(path, limit=4096)
                if text is None or text.strip() != "uninitialized":
                    yield path, "machine-id of the builder (every instance would share it)", "truncate"
        dbus = self.image.lstat("/var/lib/dbus/machine-id")
        if dbus:
            path, st = dbus
            if stat.S_ISLNK(st.st_mode):
                target = self.image.resolve(path, follow_last=True)
                etc = self.image.resolve("/etc/machine-id")
                if not (target and etc and target[0] == etc[0]):
                    yield path, "D-Bus machine-id links elsewhere than /etc/machine-id", "remove"
            elif stat.S_ISREG(st.st_mode) and st.st_size > 0:
                yield path, "D-Bus machine-id of the builder", "remove"
        for image_path, reason in (("/var/lib/systemd/random-seed", "systemd random seed of the builder"),
                                   ("/var/lib/systemd/credential.secret", "systemd credential key of the builder")):
            found = self.image.lstat(image_path)
            if found and not stat.S_ISDIR(found[1].st_mode):
                yield found[0], reason, "remove"

    def dhcp_leases(self):
        for directory, patterns in DHCP_LEASE_DIRS:
            for path, st in self.image.entries(directory):
                if stat.S_ISDIR(st.st_mode):
                    continue
                name = os.path.basename(path)
                if patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    yield path, "DHCP lease or client identity of the builder", "remove"
        if not self.image.is_mount("/run"):
            for path, _st in self.image.entries("/run/systemd/netif/leases"):
                yield path, "systemd-networkd lease of the builder", "remove"

    def temp_files(self):
        for directory in ("/tmp", "/var/tmp"):
            for path, _st in self.image.entries(directory):
                yield path, "temporary file of the builder", "remove"

    def logs(self):
        journal = self.image.directory("/var/log/journal")
        skip = set()
        if journal:
            skip.add(journal)
            for path, _st in self.image.entries(journal):
                yield path, "journal of the builder", "remove"
        if not self.image.is_mount("/run"):
            for path, _st in self.image.entries("/run/log/journal"):
                yield path, "runtime journal of the builder", "remove"
        var_log = self.image.directory("/var/log")
        if not var_log:
            return
        for path, st in sorted(self.image.walk_files(var_log, skip=skip)):
            name = os.path.basename(path)
            if os.path.dirname(path) == var_log and name.startswith("cloud-init"):
                continue  # cloud_init_state
            if ROTATED_LOG.search(name):
                yield path, "rotated log of the builder", "remove"
            elif st.st_size > 0:
                yield path, "log of the builder", "truncate"

    def package_caches(self):
        for path, st in self.image.entries("/var/cache/apt"):
            if stat.S_ISREG(st.st_mode) and path.endswith(".bin"):
                yield path, "apt package index cache", "remove"
        for path, st in self.image.entries("/var/cache/apt/archives"):
            if not stat.S_ISDIR(st.st_mode) and path.endswith(".deb"):
                yield path, "downloaded package", "remove"
        for path, _st in self.image.entries("/var/cache/apt/archives/partial"):
            yield path, "partly downloaded package", "remove"
        for path, st in self.image.entries("/var/lib/apt/lists"):
            name = os.path.basename(path)
            if name == "lock":
                continue
            if name == "partial" and stat.S_ISDIR(st.st_mode):
                for child, _st in self.image.entries(path):
                    yield child, "partly downloaded apt list", "remove"
                continue
            yield path, "apt package list", "remove"
        for directory in ("/var/cache/dnf", "/var/cache/libdnf5", "/var/cache/yum"):
            for path, _st in self.image.entries(directory):
                yield path, "%s cache" % os.path.basename(directory), "remove"

    def cloud_init_sudoers(self):
        found = self.image.lstat("/etc/sudoers.d/90-cloud-init-users")
        if found:
            yield found[0], "sudo rights cloud-init granted the builder's default user", "remove"

    def root_password(self):
        text = self.image.read_text("/etc/shadow", limit=16 * 1024 * 1024)
        if text is None:
            return
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) >= 2 and fields[0] == "root":
                if fields[1] == "":
                    yield "/etc/shadow", "root has an empty password", "lock_password"
                elif not fields[1].startswith(("!", "*")):
                    yield "/etc/shadow", "root has a usable password", "lock_password"
                return

    def bake_traces(self):
        if self.blob:
            remove_whole = "authorized_keys" in self.selected
            for path, st, users in self._authorized_keys_files():
                if stat.S_ISREG(st.st_mode) and self._holds_bake_key(path):
                    kept = any(user in self.keep for user in users)
                    action = "remove_key" if kept or not remove_whole else "remove"
                    yield path, "holds the bake's temporary key (%s)" % ", ".join(users), action
        for image_path in self.bake_paths:
            found = self.image.lstat(image_path)
            if found:
                yield found[0], "left by the bake", "remove"
        for home, _users in self.homes:
            for relative in ANSIBLE_TRACES:
                found = self.image.lstat(_in_home(home, relative))
                if not found:
                    continue
                path = found[0]
                parent = os.path.dirname(path)
                if relative == ".ansible/tmp" and [p for p, _s in self.image.entries(parent)] == [path]:
                    path = parent  # ~/.ansible holds nothing else: remove it whole
                yield path, "Ansible's %s" % ("async results" if "async" in relative else "remote temporary directory"), \
                    "remove"


def _excluded(path: str, exclude) -> bool:
    for pattern in exclude:
        if pattern == "/" or fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/"):
            return True
        if any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(path, pattern + "/*"):
            return True
    return False


def scan(root: str, categories=("all",), keep_authorized_keys=(), exclude=(), bake_authorized_key=None,
         bake_paths=()) -> dict:
    """Validate the inputs and scan root; returns findings (dicts), counts and clean."""
    options = validate(root, categories, keep_authorized_keys, exclude, bake_authorized_key, bake_paths)
    image = Image(options["root"])
    scanner = Scanner(image, options["keep_authorized_keys"], options["bake_key_blob"], options["bake_paths"],
                      options["categories"])
    findings = []
    seen = set()
    for category in options["categories"]:
        for path, reason, action in getattr(scanner, category)():
            if (path, category) in seen or _excluded(path, options["exclude"]):
                continue
            seen.add((path, category))
            findings.append(Finding(path, category, reason, action))
    counts = {category: 0 for category in options["categories"]}
    for finding in findings:
        counts[finding.category] += 1
    return {
        "root": options["root"],
        "categories": options["categories"],
        "findings": [f.as_dict(options["root"]) for f in findings],
        "counts": counts,
        "clean": not findings,
    }


def summary(result: dict) -> str:
    """One line naming what was found, for fail messages."""
    parts = ["%s (%d)" % (category, count) for category, count in result["counts"].items() if count]
    return "%d finding%s under %s: %s" % (
        len(result["findings"]), "" if len(result["findings"]) == 1 else "s", result["root"], ", ".join(parts))
