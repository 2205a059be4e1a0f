#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ami_cleanup
short_description: Remove what a bake run made (builder, key pair, security group, volumes, images), by run ID or by expiry
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - The collection's one way to remove the resources of bake runs, in every region of O(regions)
    at once. The bake calls it when a run ends (its builder, and on failure its images), and
    C(playbooks/sweep.yml) calls it for what killed runs left.
  - Selects by O(run_id), everything tagged C(bakery:run-id) with that value, or by
    O(expired_before), everything whose C(bakery:expires-at) tag is a time before it; exactly
    one of the two. The tag is sent to EC2 as a filter and every resource EC2 returns is checked
    again by the module, the run ID literally, the expiry as a time (a resource whose
    C(bakery:expires-at) is not a time is left alone, with a warning).
  - In each region, in this order, it terminates the instances (also those already
    C(shutting-down)), deregisters the images (see O(images)), deletes the security groups (asked
    again while a terminating instance of the selection still holds one, up to O(wait_timeout)),
    the key pairs and the volumes that are C(available) (after waiting for the instances to be
    C(terminated) when one of them kept a volume), and last the snapshots of the images it
    deregistered and those of the selection that no image it leaves uses.
  - With O(run_id), key pairs and volumes are only looked for when an instance of the run used a key
    pair or kept a volume at termination, or when no instance of the run is left; a region where the
    run had a builder without key pair costs two describe calls.
  - A failure of one removal does not stop the others. The task fails at the end, listing every
    error (RV(errors)) and returning what it removed. A deletion that EC2 answers with "not found"
    counts as removed (the resource was listed a moment before, so an earlier attempt whose answer was
    lost removed it), so a retried task and a lost answer end the same way.
  - On the controller it removes the run's key directory (O(key_dir)), or by expiry the key
    directories of runs under O(key_root), only when they are real directories, never through a
    symbolic link.
  - Every option is checked before any API call and before any file is looked at.
options:
  run_id:
    description:
      - Remove everything of this run, the value of its C(bakery:run-id) tag, whatever its expiry.
      - 6-64 letters, digits and C(-) (the whole string; a trailing newline, V(*) and V(?) are refused,
        so the value never reaches EC2 as a wildcard).
      - Exactly one of O(run_id) and O(expired_before) is required.
    type: str
  expired_before:
    description:
      - Remove every resource whose C(bakery:expires-at) tag is a time before this one, of any run.
      - An ISO-8601 time such as V(2030-01-01T00:00:00Z) (UTC unless an offset is given). A bake tags its
        resources with its start time plus its time to live, so a run killed minutes ago is not expired yet.
    type: str
  regions:
    description:
      - The regions to clean up, concurrently. Defaults to the module's region.
    type: list
    elements: str
  images:
    description:
      - V(none) leaves images and snapshots alone.
      - V(unfinished) also deregisters the images of the selection that still carry C(bakery:expires-at)
        (a bake takes that tag off the images it finished, with their snapshots), and deletes their
        snapshots and the snapshots of the selection that still carry it. What C(sweep.yml) uses, so that a
        finished run's images stay also when it is swept by run ID.
      - V(all) removes every image of the selection and its snapshots, finished or not (the rollback of a
        failed run).
      - Images tagged C(bakery:keep=true) are never removed (RV(kept)). A snapshot that backs an image the
        task leaves is never deleted.
    type: str
    choices: [none, unfinished, all]
    default: none
  key_dir:
    description:
      - With O(run_id), the run's key directory on the controller (the builder role's
        C(<cache>/keys/<run_id>)); its last component must be the run ID.
      - Removed with what it holds when it is a real directory; a symbolic link or a file there is left as it
        is and reported as an error. Nothing below it is followed.
      - An absolute path without C(..) components (they would be resolved through links by the system but by
        name here); repeated C(/), C(.) components and a trailing C(/) are taken out.
    type: path
  key_root:
    description:
      - With O(expired_before), the directory that holds one key directory per run (the builder role's
        C(<cache>/keys)). Each real directory in it named like a run ID and last changed more than
        O(key_ttl_minutes) before O(expired_before) is removed; links, files and other names are left alone.
      - It must itself be a real directory, not a symbolic link. The rules of O(key_dir) for the path apply.
    type: path
  key_ttl_minutes:
    description:
      - With O(key_root), how long a run lives (the bake's C(bake_ttl_minutes)); a key directory expires that
        long after it was written, as the run's resources expire that long after the run started.
    type: int
    default: 180
  launch_templates:
    description:
      - With O(run_id), launch templates (names or IDs) whose versions made by the run are removed, in
        every region of O(regions) where the template exists, before anything else of the run. The run's
        versions are those whose description carries the marker of M(bakery.ami.ami_launch_template) with
        this run ID; no other version is touched. When one of them is the default version, the default is
        first put back on the version the marker names (the default when the run made its version), or
        on the newest version left (RV(restored_defaults)).
    type: list
    elements: str
    default: []
  wait_timeout:
    description:
      - How long to wait, in seconds (1-86400), for a security group to be released by the terminating
        instances, and for instances that kept a volume to be C(terminated).
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - bakery.ami.attributes
attributes:
  check_mode:
    description: Makes the same lookups and returns what would be removed; calls nothing that changes the account and touches no file.
    support: full
  diff_mode:
    description: The module reports what it removed in its result, not as a diff.
    support: none
  idempotent:
    description: A rerun finds nothing left, reports no change and makes no call that changes the account.
    support: full
notes:
  - The credentials need C(ec2:Describe*) for instances, images, snapshots, volumes, security groups and key
    pairs, and C(ec2:TerminateInstances), C(ec2:DeregisterImage), C(ec2:DeleteSnapshot),
    C(ec2:DeleteSecurityGroup), C(ec2:DeleteKeyPair), C(ec2:DeleteVolume) in every region of O(regions);
    with O(launch_templates) also C(ec2:DescribeLaunchTemplates), C(ec2:DescribeLaunchTemplateVersions),
    C(ec2:ModifyLaunchTemplate) and C(ec2:DeleteLaunchTemplateVersions).
  - C(bakery.ami.ami_builder) with O(bakery.ami.ami_builder#module:state=absent) is this module with O(run_id)
    in one region, without images and key directory.
seealso:
  - module: bakery.ami.ami_builder
  - module: bakery.ami.ami_prune
"""

EXAMPLES = r"""
- name: Remove the run's builder, key pair and security group, and its key directory
  bakery.ami.ami_cleanup:
    run_id: "{{ run_id }}"
    key_dir: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/bakery-ami/keys/{{ run_id }}"
  register: cleanup

- name: The run failed - also remove its images and their copies in every region
  bakery.ami.ami_cleanup:
    run_id: "{{ run_id }}"
    regions: [us-east-1, us-west-2, eu-west-1]
    images: all
    launch_templates: [web]

- name: Sweep what killed runs left, as of now, in three regions
  bakery.ami.ami_cleanup:
    expired_before: "{{ now(utc=true).strftime('%Y-%m-%dT%H:%M:%SZ') }}"
    regions: [us-east-1, us-west-2, eu-west-1]
    images: unfinished
    key_root: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/bakery-ami/keys"
    key_ttl_minutes: 180
  check_mode: true
  register: would_go
"""

RETURN = r"""
selection:
  description: What was selected, C(bakery:run-id=<id>) or C(bakery:expires-at before <time>).
  returned: always
  type: str
  sample: bakery:run-id=20300101000000-abcd1234
removed:
  description:
    - Per region, what the task removed (in check mode, what it would remove), by kind. On failure, what
      was removed before and after the errors.
  returned: always
  type: dict
  sample:
    us-east-1:
      instances: [i-0123456789abcdef0]
      images: []
      security_groups: [sg-0123456789abcdef0]
      key_pairs: [bakery-20300101000000-abcd1234]
      volumes: []
      snapshots: []
  contains:
    instances:
      description: Instances terminated (or already shutting down).
      type: list
      elements: str
    images:
      description: Images deregistered.
      type: list
      elements: str
    security_groups:
      description: Security groups deleted.
      type: list
      elements: str
    key_pairs:
      description: Key pairs deleted (by name).
      type: list
      elements: str
    volumes:
      description: Volumes deleted.
      type: list
      elements: str
    snapshots:
      description: Snapshots deleted.
      type: list
      elements: str
    launch_template_versions:
      description: Launch template versions deleted, as C(<launch template>:<version number>).
      type: list
      elements: str
      returned: with O(launch_templates)
restored_defaults:
  description: Per region, the launch templates whose default version was put back, and on which version.
  returned: with O(launch_templates)
  type: dict
  sample: {"us-east-1": {"web": 3}}
kept:
  description: Per region, images of the selection that were left, with the reason (finished, or C(bakery:keep=true)).
  returned: always
  type: dict
  sample: {"us-east-1": {"ami-0123456789abcdef0": "finished (no bakery:expires-at tag)"}}
key_dirs:
  description: The key directories removed on the controller (in check mode, that would be removed).
  returned: always
  type: list
  elements: str
errors:
  description: Every failure (each region's prefixed with the region), or every problem with the options.
  returned: on failure
  type: list
  elements: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _cleanup
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError


def main():
    argument_spec = dict(
        run_id=dict(type="str"),
        expired_before=dict(type="str"),
        regions=dict(type="list", elements="str"),
        images=dict(type="str", choices=list(_cleanup.IMAGE_CHOICES), default="none"),
        key_dir=dict(type="path", no_log=False),
        key_root=dict(type="path", no_log=False),
        key_ttl_minutes=dict(type="int", default=180, no_log=False),
        wait_timeout=dict(type="int", default=600),
        launch_templates=dict(type="list", elements="str", default=[]),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        request = _cleanup.build_request(module.params, module.region, _validate.known_regions())
        clients = _aws.regional_clients(module, "ec2", request.regions)
        result = _cleanup.Cleanup(clients, request, module.check_mode, warn=module.warn).run()
    except BakeryError as e:  # bad input, and BakeryAWSError from the AWS calls
        module.fail_json(msg=e.msg, **e.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
