# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The options image_scan and image_clean share: what to look for, and what to leave alone.
    # The categories are notes (a fragment's notes are appended in order; a description would be
    # merged sorted). The category table itself is plugins/module_utils/_hygiene.py (CATEGORIES); a unit test keeps
    # this text in step with it.
    DOCUMENTATION = r"""
notes:
  - "The categories (select them with O(categories); each follows virt-sysprep's operation of the same
    kind, C(cloud-init clean), or this collection's own rule where neither covers it):"
  - "V(ssh_host_keys): C(/etc/ssh/ssh_host_*); every instance would share one SSH host identity."
  - "V(authorized_keys): C(~/.ssh/authorized_keys) and C(authorized_keys2) holding keys, of root
    and of every user (homes read from the image's C(/etc/passwd), plus every directory under
    C(/home)), except the users in O(keep_authorized_keys)."
  - "V(ssh_user_files): private keys under every C(~/.ssh) whatever their name (the content holds a
    PEM or OpenSSH private key block, or a PuTTY key) and C(known_hosts) files."
  - "V(credentials): credential files by name in every home: C(.aws/), C(.config/gcloud/), C(.azure/),
    C(.kube/config), C(.git-credentials), C(.netrc), C(.docker/config.json) with C(auths),
    C(.pgpass), C(.npmrc) with a token, C(.pypirc), C(.s3cfg), C(.boto), C(.vault-token),
    C(.config/gh/hosts.yml), C(.terraform.d/credentials.tfrc.json)."
  - "V(shell_history): histories in every home (bash, zsh, sh, ash, csh, fish, python, mysql,
    psql, sqlite, redis-cli, node, C(.lesshst), C(.viminfo))."
  - "V(user_caches): package caches under every home (pip, poetry, uv, npm, yarn, go-build, composer,
    gradle, C(~/.m2/repository), cargo registries)."
  - "V(cloud_init_state): the entries of C(/var/lib/cloud) other than C(seed) and C(scripts),
    C(/var/log/cloud-init*.log), and C(/run/cloud-init) when C(/run) is part of the image."
  - "V(cloud_init_seed): the contents of C(/var/lib/cloud/seed), which cloud-init would prefer
    to the cloud's datasource."
  - "V(network_config): the network configuration cloud-init rendered for the builder
    (C(/etc/network/interfaces.d/50-cloud-init) and C(.cfg), C(/etc/netplan/50-cloud-init.yaml),
    NetworkManager's C(cloud-init-*.nmconnection) and drop-ins, C(/etc/systemd/network/10-cloud-init-*.network);
    not when cloud-init is told C(network: {config: disabled})), C(/etc/udev/rules.d/70-persistent-net.rules),
    and C(HWADDR=)/C(MACADDR=) lines of C(/etc/sysconfig/network-scripts/ifcfg-*)."
  - "V(hostname): C(/etc/hostname) naming anything but C(localhost) (reset to C(localhost), so first
    boot sets the instance's own)."
  - "V(machine_id): a non-empty C(/etc/machine-id) (other than C(uninitialized)),
    C(/var/lib/dbus/machine-id) unless it links to C(/etc/machine-id), and systemd's
    C(/var/lib/systemd/random-seed) and C(credential.secret)."
  - "V(dhcp_leases): leases and client identities of dhclient, NetworkManager, dhcpcd and
    systemd-networkd."
  - "V(temp_files): everything in C(/tmp) and C(/var/tmp)."
  - "V(logs): the journal's machine directories and every non-empty file under C(/var/log)
    (login records and cloud-init's logs have their own categories)."
  - "V(login_records): C(wtmp), C(btmp), C(lastlog), C(faillog), wtmpdb's C(wtmp.db), C(lastlog2.db),
    and C(utmp) when C(/run) is part of the image."
  - "V(crash_data): the contents of C(/var/crash), C(/var/log/dump), C(/var/lib/systemd/coredump),
    C(/var/spool/abrt) and C(/var/lib/apport/coredump)."
  - "V(cron_spool): users' crontabs and at jobs in C(/var/spool/cron) and C(/var/spool/at)."
  - "V(mail_spool): mailboxes in C(/var/mail) and C(/var/spool/mail)."
  - "V(package_caches): apt's C(*.bin) caches, downloaded C(.deb) files and package lists; the
    dnf, libdnf5 and yum caches."
  - "V(passwd_backups): C(/etc/passwd-), C(/etc/shadow-), C(/etc/group-), C(/etc/gshadow-),
    C(/etc/subuid-), C(/etc/subgid-)."
  - "V(backup_files): C(*.bak), C(*~), C(*.orig), C(*.dpkg-old), C(*.ucf-old) and C(*.rpmsave) in C(/etc),
    C(/root), C(/home), C(/srv) and C(/var) (such as C(sshd_config.bak), C(/var/backups/shadow.bak))."
  - "V(cloud_init_sudoers): C(/etc/sudoers.d/90-cloud-init-users)."
  - "V(root_password): a usable or empty password for root in C(/etc/shadow)."
  - "V(bake_traces): authorized_keys files holding O(bake_authorized_key), the paths in
    O(bake_paths), and Ansible's C(~/.ansible/tmp) and C(~/.ansible_async) in every home."
  - "V(secrets): content in C(/root), C(/home), C(/etc), C(/opt), C(/srv) and C(/var) that no other
    category removes: PEM and OpenSSH private key blocks, PuTTY keys, AWS access key IDs with a secret
    nearby and AWS secret keys, GitHub, GitLab and Slack tokens, Slack webhooks, and assignments
    such as C(API_TOKEN=), C(DB_SECRET=), C(DB_PASSWORD=), C(PASSWORD=) outside comments. Files a
    package installed and that are unchanged are skipped (dpkg's md5sums and conffiles; the rpm database
    is not read, so on rpm images such files are reported too), as are binary files, files larger
    than O(content_max_file_size), package databases and container engines' image stores; at most
    O(content_max_files) files are read. Such a file is usually an application's own configuration:
    its finding has action V(review) unless O(remove_secret_files) lists it."
  - Paths are resolved as a process chrooted into O(root) would see them. Symbolic links are
    examined with lstat and never followed out of O(root); a link is reported as itself.
options:
  categories:
    description:
      - The categories to look for. V(all) selects every category.
    type: list
    elements: str
    default: [all]
  keep_authorized_keys:
    description:
      - Users whose C(authorized_keys) may stay in the image (not findings of V(authorized_keys)).
      - The bake's temporary key is still reported in their files (V(bake_traces)).
    type: list
    elements: str
    default: []
  exclude:
    description:
      - Paths inside the image that are not findings, with everything below them. Shell-style
        patterns are allowed (V(/var/log/myapp/*)); C(*) also matches C(/).
      - Each must be absolute inside the image; C(~) is not expanded (it would be the home of
        whoever runs the module, not a path of the image). A pattern that normalizes to C(/)
        (V(/tmp/..)) or matches every top-level directory (V(/*), V(/**)) is refused.
    type: list
    elements: str
    default: []
  bake_authorized_key:
    description:
      - The public key line the bake installed for its connection (C(ssh-ed25519 AAAA... comment)).
        Every C(authorized_keys) holding this key (compared by the key itself, so options and
        comments do not matter) is a V(bake_traces) finding.
    type: str
  bake_paths:
    description:
      - Paths inside the image that the bake left and that must be gone, such as a temporary
        private key. Each one that exists is a V(bake_traces) finding.
      - Absolute inside the image; a path that normalizes to C(/) (V(/tmp/..), V(/.)) is refused.
    type: list
    elements: str
    default: []
  keep_secret_files:
    description:
      - Files (shell-style patterns, as O(exclude)) whose V(secrets) findings are accepted; they ship
        as they are. They are listed in RV(kept_secret_files), not in RV(findings).
      - For an application that needs its credentials in the image. Prefer providing them at
        launch (user-data, a secrets manager).
    type: list
    elements: str
    default: []
  remove_secret_files:
    description:
      - Files (shell-style patterns, as O(exclude)) whose V(secrets) findings are removed (action
        V(remove) instead of V(review)), for configuration that is provided again at launch.
      - A pattern may not be in both O(keep_secret_files) and O(remove_secret_files).
    type: list
    elements: str
    default: []
  content_max_file_size:
    description:
      - Files larger than this many bytes are not searched for V(secrets) (counted in
        RV(content_scan.skipped_large), with a warning). From 1024 to 67108864.
    type: int
    default: 1048576
  content_max_files:
    description:
      - At most this many files are searched for V(secrets) (and 20 times as many entries walked
        for V(secrets) and V(backup_files)); beyond, RV(content_scan.complete) is false and a warning
        says so. From 1 to 1000000.
    type: int
    default: 20000
"""
