#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bake_outputs
short_description: Write a bake's report, launch user-data, Packer-format manifest and SBOM on the controller
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Writes up to four output files of a bake in one task, on the Ansible controller, in the
    controller's own process. No module is sent to or run on any host, and the files are written
    on the controller whatever host the task targets.
  - "The report: O(report) and the marker key C(\"_bakery_outputs\": \"report\") as JSON (two-space
    indent, keys sorted, a final newline), as the C(to_nice_json) filter writes it with C(indent=2)."
  - "The launch user-data: the line C(#cloud-config), a marker comment line that names
    C(bakery.ami.bake_outputs), then
    O(user_data) as block-style YAML (two-space indent, keys in the order given), as
    the C(to_nice_yaml) filter writes it with C(indent=2) and C(sort_keys=false); the line C({}) when O(user_data) is empty."
  - "The manifest, in Packer's manifest format: O(manifest_build) is appended to the C(builds) of
    the existing file (which is created when missing), or replaces the entry with the same
    C(packer_run_uuid), C(last_run_uuid) is set to its C(packer_run_uuid), and the marker key
    C(\"_bakery_outputs\": \"manifest\") is set (readers of Packer manifests ignore it)."
  - "The SBOM: O(sbom), the JSON text of the image's CycloneDX document, written as given (so its sha256 is
    the one the bake recorded in the report and the image's tag C(bakery:sbom-sha256)). Its marker is the
    metadata property C({\"name\": \"bakery:outputs\", \"value\": \"sbom\"}), since the CycloneDX schema allows
    no other top-level key."
  - "The files cannot be turned against the user who runs the task: the file itself is never a
    symbolic link followed, and a directory link is followed only when root or the user running the
    task owns it (never one another user could have planted, nor one in C(/proc), C(/sys) or C(/dev)); an existing file
    is replaced only when it carries the marker of the same kind of file (so this module never
    replaces a file it did not write); the modes are data-file modes; a path with a control character
    or on C(/proc), C(/sys) or C(/dev) is refused."
  - Each pair of a path and its data is optional, but a path needs its data and data its path;
    at least one pair is required.
  - Every option is checked, and every existing file read, before anything is written; when any
    of them is wrong the task fails naming the option and nothing is written.
  - A file is written only when its content or its mode differs, through a new file in the same
    directory and a rename in that directory (a mode change too, so an existing file is never changed
    in place), so no reader ever sees a partial file. The directories are walked from C(/) one at a
    time, following only the directory links of root or of the user, and a file that appeared or changed since it was checked is not
    replaced.
options:
  report_path:
    description:
      - Where to write the JSON report. A relative path is taken from the controller's current
        directory; C(~) and environment variables are expanded.
      - Missing parent directories are created with mode C(0755).
      - An existing file is replaced only when bake_outputs wrote it as a report (it carries the
        marker); any other file, a directory, a symbolic link, a device or a FIFO is refused and left
        as it is.
      - A directory link on the way is followed only when root or the user running the task owns
        it; a link owned by anybody else is refused, not followed. A link at the file itself is
        refused.
      - Control characters (newline, tab, NUL, ...) are refused, as are paths on C(/proc), C(/sys)
        and C(/dev). At most 4095 bytes, 255 per component.
      - Requires O(report).
    type: path
  report:
    description:
      - The report, written as JSON to O(report_path). Must be a dictionary (a string is refused,
        not parsed), without the key C(_bakery_outputs) (the marker, set by this module).
      - Requires O(report_path).
    type: dict
  user_data_path:
    description:
      - Where to write the launch user-data (a cloud-config file). Same rules as O(report_path); an
        existing file is replaced only when it carries the user-data marker line.
      - Requires O(user_data).
    type: path
  user_data:
    description:
      - The cloud-config settings of the launch user-data, written as YAML to O(user_data_path)
        in the order given. V({}) writes a cloud-config that sets nothing.
      - Requires O(user_data_path).
    type: dict
  manifest_path:
    description:
      - The manifest to add O(manifest_build) to. Same rules as O(report_path).
      - An existing file must be a manifest bake_outputs wrote (the marker key C(_bakery_outputs)
        with the value C(manifest)), JSON with a C(builds) list; otherwise the task fails
        naming this option and leaves the file as it is. Other top-level keys of the file are kept.
        A manifest that Packer wrote is refused; give bake_outputs its own file.
      - Requires O(manifest_build).
    type: path
  manifest_build:
    description:
      - One build, in the shape of an entry of Packer's C(builds) (C(name), C(builder_type),
        C(build_time), C(files), C(artifact_id), C(packer_run_uuid), C(custom_data)).
      - C(packer_run_uuid) is required, a non-empty string. A build with the C(packer_run_uuid)
        of an entry already in the manifest replaces that entry where it is, so a rerun with the
        same arguments changes nothing.
      - Requires O(manifest_path).
    type: dict
  sbom_path:
    description:
      - Where to write the SBOM (a CycloneDX JSON file). Same rules as O(report_path); an existing file is
        replaced only when it is an SBOM bake_outputs wrote (it carries the marker property).
      - Requires O(sbom).
    type: path
  sbom:
    description:
      - "The JSON text of a CycloneDX document carrying the metadata property
        C({\"name\": \"bakery:outputs\", \"value\": \"sbom\"}), as the bake makes it from the packages
        M(bakery.ami.image_packages) lists (C(bake_sbom)). A dict, or a document without the marker, is refused."
      - Requires O(sbom_path).
    type: str
  mode:
    description:
      - The mode of every file written, new or existing, as a quoted octal string (V(0644),
        V(644) or V(0o644)). A number is refused, since an unquoted V(0644) in YAML is the
        decimal number 420.
      - A data-file mode. The owner must read and write (a rerun reads and replaces the file);
        execute bits, the setuid, setgid and sticky bits and write for others are refused (so
        V(4755), V(0000), V(0777), V(0755), V(0400) and V(0666) are refused; V(0644), V(0640),
        V(0600) are fine).
      - An existing file whose content is right but whose mode differs is replaced by a copy with
        the new mode.
    type: str
    default: "0644"
  bake:
    description:
      - The plan of a bake, as M(bakery.ami.bake_plan) returns it. With it the task derives all three
        files from the plan and O(results) - the report, the launch user-data (the plan's customize
        user-data) and, when the bake succeeded, its build in the manifest and the image's SBOM (when
        O(results) holds one, C(bake_sbom)) - at the plan's paths.
      - Cannot be combined with O(report_path), O(report), O(user_data_path), O(user_data),
        O(manifest_path), O(manifest_build), O(sbom_path) or O(sbom).
    type: dict
  results:
    description:
      - What each step of the bake recorded (C(bake_results) in C(playbooks/bake.yml)); used with O(bake).
    type: dict
  hook_report:
    description:
      - Keys the bake's hooks add to the report (C(bake_hook_report)); a key the report has already is
        not replaced, and C(warnings) are added to the report's own. Used with O(bake).
    type: dict
attributes:
  action:
    description: The whole task runs in an action plugin on the controller; there is no module to run on a host.
    support: full
  async:
    description: The task runs in the controller's process and cannot run asynchronously.
    support: none
  check_mode:
    description: Reads the files and reports what would change; writes nothing and creates no directory.
    support: full
  diff_mode:
    description:
      - Returns a diff for each file that changes, with its before and after text and its path
        as header, as M(ansible.builtin.copy) does; a mode change is shown as the file's mode before and after.
    support: full
  idempotent:
    description: A rerun with the same options writes nothing and reports C(changed=false).
    support: full
notes:
  - The files are written on the controller, with the permissions of the user running
    C(ansible-playbook); C(become) does not apply.
  - Each host of a play runs the task in its own worker process. When a play has several hosts,
    give each its own paths, or use C(run_once), so that two of them never update one manifest
    at the same time.
  - Values may come from templates; strings and other values that ansible-core marks or wraps
    are written as their plain values.
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write the report, the launch user-data and the manifest of a bake
  bakery.ami.bake_outputs:
    report_path: "{{ bake_output_dir }}/bake-report.json"
    report:
      run_id: "{{ run_id }}"
      status: succeeded
      images: "{{ publish_result.images }}"
    user_data_path: "{{ bake_output_dir }}/launch-user-data.yml"
    user_data:
      packages: [nginx]
      runcmd:
        - [systemctl, enable, --now, nginx]
    manifest_path: "{{ bake_output_dir }}/bake-manifest.json"
    manifest_build:
      name: web
      builder_type: amazon-ebs
      build_time: "{{ now(utc=true).timestamp() | int }}"
      files: null
      artifact_id: "{{ publish_result.images.items() | map('join', ':') | join(',') }}"
      packer_run_uuid: "{{ run_id }}"
      custom_data:
        version: "{{ version }}"

- name: A failed bake writes its report and user-data but adds nothing to the manifest
  bakery.ami.bake_outputs:
    report_path: /srv/bakes/bake-report.json
    report: "{{ report }}"
    user_data_path: /srv/bakes/launch-user-data.yml
    user_data: {}
    mode: "0640"
"""

RETURN = r"""
report:
  description: The report written, when O(bake) is given.
  returned: with O(bake)
  type: dict
summary:
  description: Lines that sum the bake up (status, source, images, phase times, warnings), when O(bake) is given.
  returned: with O(bake)
  type: list
  elements: str
files:
  description:
    - One entry per file the task was given (V(report), V(user_data), V(manifest), V(sbom)), with its
      absolute path and whether it was (or in check mode would be) written or had its mode set.
  returned: always
  type: dict
  contains:
    report:
      description: The report file (O(report_path)).
      returned: when O(report_path) is given
      type: dict
      contains:
        path:
          description: The absolute path.
          type: str
        changed:
          description: Whether the file was written or had its mode set.
          type: bool
    user_data:
      description: The launch user-data file (O(user_data_path)), with the same keys as RV(files.report).
      returned: when O(user_data_path) is given
      type: dict
    manifest:
      description: The manifest file (O(manifest_path)), with the same keys as RV(files.report).
      returned: when O(manifest_path) is given
      type: dict
    sbom:
      description: The SBOM file (O(sbom_path)), with the same keys as RV(files.report).
      returned: when O(sbom_path) is given
      type: dict
  sample:
    report: {path: /srv/bakes/bake-report.json, changed: true}
    user_data: {path: /srv/bakes/launch-user-data.yml, changed: false}
    manifest: {path: /srv/bakes/bake-manifest.json, changed: true}
"""
