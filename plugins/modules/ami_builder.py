#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ami_builder
short_description: Launch or remove the temporary builder instance of a bake run, with its security group and key pair
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - With O(state=running), makes sure the run's builder instance exists, with a temporary security group
    admitting SSH only from O(ssh_cidrs), optionally an ed25519 key pair whose private key is
    written to O(key_file) (and its public key to O(key_file)C(.pub), returned as RV(public_key)),
    and the instance with IMDSv2 required and an encrypted root volume.
  - Every resource is named C(bakery-<run_id>) and tagged C(bakery:run-id), C(Name),
    C(bakery:expires-at) (with O(expires_at)) and O(tags), so O(state=absent) and the collection's
    sweep find them.
  - Idempotent with few API calls. One C(DescribeInstances) by the C(bakery:run-id) tag finds a
    builder of the run that is not terminated; when there is one nothing is changed (with O(wait),
    a C(pending) builder is waited for). Otherwise the security group and the key pair are created
    directly (an existing one of the same name is reused) and the instance is launched with a
    C(ClientToken) derived from O(run_id) and the security group, so a retried request never
    launches a second instance.
  - Every call that changes the account survives a lost answer (EC2 acted, the answer never came and the
    retry meets what the first attempt made). A duplicate security group or SSH rule is the run's own
    and is used (the group is read back); C(RunInstances) carries its C(ClientToken); tags are set
    idempotently; and a key pair of the run whose private key O(key_file) does not hold (EC2 hands a
    private key out only once) is deleted and created again, with a warning. Removals that find a
    resource already gone count it as removed.
  - With O(state=absent), removes everything of the run in the module's region with the collection's one
    removal engine, the one of M(bakery.ami.ami_cleanup) with O(bakery.ami.ami_cleanup#module:run_id) (its
    options O(bakery.ami.ami_cleanup#module:images), O(bakery.ami.ami_cleanup#module:key_dir) and
    O(bakery.ami.ami_cleanup#module:regions) left out). It terminates the run's instances, then deletes its
    security groups (as soon as the terminating instances release them, asked again up to O(wait_timeout)),
    key pairs and C(available) volumes, all found by the C(bakery:run-id) tag. Key pairs are looked for only
    when one of the instances found used a key pair, and volumes only when one of them kept a volume at
    termination (then the instances are waited for until C(terminated)); with no instance found, both are
    always looked for. It carries on after a failure and fails at the end listing every error.
  - With O(purpose=test), the same for the run's test instance (the image test stage of a bake), another
    instance of the run, launched from the new image into the run's security group with the run's key pair,
    tagged C(bakery:purpose=test) and named C(bakery-<run_id>-test). Its lookup asks for that tag, its
    C(ClientToken) holds the purpose and O(image_id), and the builder's lookup leaves test instances out, so the
    builder and the test instance of one run never answer for each other and a rerun finds each again.
    O(state=absent) with O(purpose=test) only terminates the run's test instances and waits until they are
    C(terminated); the security group and key pair stay for the run's cleanup.
  - Every option is checked before any API call.
options:
  run_id:
    description:
      - Identifies the bake run; 6-64 letters, digits and C(-).
      - The value of the tag C(bakery:run-id) and, as C(bakery-<run_id>), the name of every resource.
    type: str
    required: true
  state:
    description:
      - V(running) makes sure the builder exists (and runs, with O(wait)); V(absent) removes everything of the run.
    type: str
    choices: [running, absent]
    default: running
  image_id:
    description:
      - The image to launch, an image ID or C(resolve:ssm:<parameter>). Required with O(state=running).
    type: str
  instance_type:
    description:
      - The instance type of the builder, the same as O(instance_types) with this one type.
      - Without it and without O(instance_types), V(t3.micro).
      - Mutually exclusive with O(instance_types).
    type: str
  instance_types:
    description:
      - The instance types to try, in order, 1-20 types, each once. C(RunInstances) is asked with the first;
        when EC2 refuses it because that type cannot be had there now, the next is tried, and so on.
      - The refusals that move on to the next type are C(InsufficientInstanceCapacity) (no capacity for the type
        in the zone), C(Unsupported) (the type is not offered in the subnet's zone), C(InstanceLimitExceeded) and
        C(VcpuLimitExceeded) (the account's quota of the type or of its class is used up). Any other error fails
        the task at once. When every type is refused, the task fails with one message listing each type and its
        refusal.
      - Each attempt carries its own C(ClientToken) (from O(run_id), the security group and the type), so a lost
        answer of any attempt never launches a second instance.
      - RV(instance_type) is the type launched, RV(instance_type_attempts) every attempt.
      - Mutually exclusive with O(instance_type).
    type: list
    elements: str
    version_added: 0.2.0
  subnet_id:
    description:
      - The subnet of the builder. Without it EC2 uses a default subnet of the default VPC.
    type: str
  vpc_id:
    description:
      - The VPC of the security group. Without it, the VPC of O(subnet_id) (one C(DescribeSubnets));
        without either, the default VPC.
    type: str
  ssh_cidrs:
    description:
      - IPv4 and IPv6 CIDR blocks allowed to reach port 22 of the builder.
      - Empty means no ingress rule at all (nothing can connect, for example a builder that is only
        snapshotted).
      - Ranges that open SSH to the whole internet are refused unless O(allow_open_ssh=true), that is
        V(0.0.0.0/0), V(::/0), and any set of ranges that together cover all of IPv4 or all of IPv6
        (for example V(0.0.0.0/1) with V(128.0.0.0/1)).
    type: list
    elements: str
    default: []
  allow_open_ssh:
    description: Accept O(ssh_cidrs) that open SSH to the whole internet (V(0.0.0.0/0), V(::/0), or ranges covering all of IPv4 or IPv6 together).
    type: bool
    default: false
  key_file:
    description:
      - Create the ed25519 key pair C(bakery-<run_id>) and write its private key to this path, mode C(0600),
        and its public key (OpenSSH line, comment C(bakery-<run_id>)) to the same path with C(.pub), mode
        C(0644), each atomically, the public key first. The directory must exist; a run-scoped directory
        (the C(bakery.ami.builder) role uses C(<cache>/keys/<run_id>), mode C(0700)) is best.
      - The two files mark the key as the run's. A file at either path that is not the run's (another key,
        any other file, a directory or a symbolic link) is never written over; the task fails naming
        O(key_file) before any API call.
      - When the key pair already exists and O(key_file) holds its private key, both are used. When it exists
        and O(key_file) does not hold its private key (an answer of C(CreateKeyPair) lost, or the file removed),
        the run's key pair (tagged with O(run_id)) is deleted and created again. When the builder already
        runs with the key pair and the file is gone, the task fails, since EC2 hands out a private key only once.
      - Without it the builder has no key pair.
    type: path
  associate_public_ip:
    description:
      - Whether the builder gets a public IPv4 address. Only when set, the instance is launched with a network
        interface that carries the security group and O(subnet_id); unset leaves it to the subnet's setting.
    type: bool
  root_device_name:
    description: The root device of the image (the source image's C(root_device_name)).
    type: str
    default: /dev/xvda
  volume_size:
    description: Size of the root volume in GiB (1-16384). EC2 refuses one smaller than the image's.
    type: int
    default: 8
  volume_type:
    description: The root volume type.
    type: str
    choices: [gp2, gp3, io1, io2, st1, sc1, standard]
    default: gp3
  kms_key_id:
    description:
      - The KMS key (key ID, alias or ARN) of the encrypted root volume. Without it the account's
        default EBS key is used. The root volume is always encrypted.
    type: str
  expires_at:
    description:
      - ISO-8601 time (UTC unless an offset is given) after which the collection's sweep may remove what the
        run left behind; tagged C(bakery:expires-at) in the form C(YYYY-MM-DDTHH:MM:SSZ).
      - Must lie in the future with O(state=running) (a builder already expired is one any sweep removes at once).
    type: str
  tags:
    description:
      - Extra tags on every resource, at most 47 (EC2 allows 50 per resource). C(bakery:run-id),
        C(bakery:expires-at) and C(Name) come from O(run_id) and O(expires_at).
    type: dict
  wait:
    description:
      - With O(state=running), wait until the builder is C(running).
      - With O(state=absent) the module always waits until the security group is free to delete (and,
        when an instance kept a volume, until the instances are C(terminated)).
    type: bool
    default: true
  wait_timeout:
    description: How long to wait for the instance (and, with O(state=absent), for its security group to be free), in seconds.
    type: int
    default: 600
  purpose:
    description:
      - Which instance of the run this is. V(builder) is the instance customized and imaged; V(test) is the
        instance a bake launches from its new image to test it (tagged C(bakery:purpose=test)).
      - The run's security group and key pair serve both; the builder's lookup leaves test instances out and a
        test instance's lookup finds only those of the run tagged C(bakery:purpose=test).
      - With O(state=absent), V(test) terminates only the run's test instances (the default removes everything of the run).
    type: str
    choices: [builder, test]
    default: builder
    version_added: 0.2.0
  user_data:
    description:
      - The user data of the instance (a cloud-config document or a script), at most 16384 bytes. Without it,
        none. The bake gives its test instance the bake's launch user-data, the one consumers launch the image with.
    type: str
    version_added: 0.2.0
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - bakery.ami.attributes
attributes:
  check_mode:
    description: Looks the run's resources up and reports what would be made or removed; changes nothing.
    support: full
  diff_mode:
    description: The module reports its changes in its result, not as a diff.
    support: none
  idempotent:
    description:
      - A rerun with the same O(run_id) finds the builder (or nothing left to remove) and reports no change
        without any call that changes the account.
    support: full
notes:
  - The instance requires IMDSv2 (C(HttpTokens=required), hop limit 1), its root volume is encrypted and
    deleted with it, and a shutdown from inside stops it (C(InstanceInitiatedShutdownBehavior=stop)).
  - A run ID is meant for one builder (and one test instance) at a time. A builder that exists is returned as it is, even when
    other options differ; remove it with O(state=absent) to launch another.
  - When the builder was terminated some other way, run O(state=absent) before launching again, so
    that its security group (and with it the C(ClientToken)) is made anew; otherwise EC2 may answer the
    launch with the terminated instance.
seealso:
  - module: bakery.ami.ami_cleanup
  - module: bakery.ami.ami_create
  - module: amazon.aws.ec2_instance
"""

EXAMPLES = r"""
- name: Launch the builder of this run, reachable over SSH from the controller's network
  bakery.ami.ami_builder:
    run_id: "{{ run_id }}"
    image_id: "{{ source.image.image_id }}"
    root_device_name: "{{ source.image.root_device_name }}"
    volume_size: 16
    subnet_id: subnet-0123456789abcdef0
    associate_public_ip: true
    ssh_cidrs: [203.0.113.0/24]
    key_file: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/bakery-ami/keys/{{ run_id }}/id_ed25519"
    expires_at: "2030-01-01T00:00:00Z"
    tags:
      cost-center: images
  register: builder

- name: Launch the builder with the first of these types EC2 has capacity for
  bakery.ami.ami_builder:
    run_id: "{{ run_id }}"
    image_id: "{{ source.image.image_id }}"
    instance_types: [m7i.large, m6i.large, m5.large]
    subnet_id: subnet-0123456789abcdef0
  register: builder

- name: Show which type was launched and why the others were not
  ansible.builtin.debug:
    msg: "{{ builder.instance_type }} after {{ builder.instance_type_attempts }}"

- name: Launch the run's test instance from the new image, with the launch user-data
  bakery.ami.ami_builder:
    run_id: "{{ run_id }}"
    purpose: test
    image_id: "{{ new_image_id }}"
    ssh_cidrs: [203.0.113.0/24]
    key_file: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/bakery-ami/keys/{{ run_id }}/id_ed25519"
    user_data: "{{ lookup('ansible.builtin.file', 'launch-user-data.yml') }}"
    expires_at: "2030-01-01T00:00:00Z"
  register: test_instance

- name: Terminate the run's test instance (and wait until it is terminated)
  bakery.ami.ami_builder:
    run_id: "{{ run_id }}"
    purpose: test
    state: absent

- name: Remove everything of the run (in an always section)
  bakery.ami.ami_builder:
    run_id: "{{ run_id }}"
    state: absent
  register: removed
  ignore_errors: true
"""

RETURN = r"""
instance_id:
  description: The builder instance. Null in check mode when it would be launched.
  returned: state is running
  type: str
  sample: i-0123456789abcdef0
state:
  description: The state of the instance (C(running) after a wait). Null in check mode for a new builder.
  returned: state is running
  type: str
  sample: running
private_ip:
  description: The private IPv4 address of the builder.
  returned: state is running
  type: str
public_ip:
  description: The public IPv4 address of the builder, if it has one.
  returned: state is running
  type: str
subnet_id:
  description: The subnet of the builder.
  returned: state is running
  type: str
vpc_id:
  description: The VPC of the builder.
  returned: state is running
  type: str
security_group_id:
  description: The builder's security group. Null in check mode when it would be created.
  returned: state is running
  type: str
  sample: sg-0123456789abcdef0
key_name:
  description: The key pair of the builder, C(bakery-<run_id>); null without O(key_file).
  returned: state is running
  type: str
key_file:
  description: The private key file (O(key_file)).
  returned: state is running
  type: str
public_key:
  description:
    - The builder's public key, an OpenSSH line with the comment C(bakery-<run_id>) (also in O(key_file)C(.pub));
      null without O(key_file), and in check mode when the key pair would be made.
    - The bake passes it to the generalize role as C(generalize_bake_authorized_key), so that the run's key
      never ships in an image.
  returned: state is running
  type: str
  sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbc bakery-20300101000000-abcd1234
tags:
  description: The tags of the instance (in check mode for a new builder, the tags it would get).
  returned: state is running
  type: dict
instance_type:
  description:
    - The instance type of the builder, the one of O(instance_types) that launched (for a builder that already
      existed, its type). In check mode for a new builder, the first type it would try.
  returned: state is running
  type: str
  sample: m6i.large
instance_type_attempts:
  description:
    - Every C(RunInstances) attempt of this task, in order, with the error code that refused it (null for the one
      that launched). Empty when the builder already existed or in check mode. Also returned when every type was
      refused.
  returned: state is running
  type: list
  elements: dict
  contains:
    instance_type:
      description: The type asked for.
      type: str
    error_code:
      description: EC2's refusal (V(InsufficientInstanceCapacity), V(Unsupported), V(InstanceLimitExceeded), V(VcpuLimitExceeded)) or null.
      type: str
  sample: [{"instance_type": "m7i.large", "error_code": "InsufficientInstanceCapacity"}, {"instance_type": "m6i.large", "error_code": null}]
created:
  description: What this task made (or would make in check mode), among V(key_pair), V(security_group), V(instance).
  returned: state is running
  type: list
  elements: str
removed:
  description: What the task removed (or would remove in check mode), by kind. On failure, what was removed before it.
  returned: state is absent
  type: dict
  contains:
    instances:
      description: Terminated instances.
      type: list
      elements: str
    security_groups:
      description: Deleted security groups.
      type: list
      elements: str
    key_pairs:
      description: Deleted key pairs.
      type: list
      elements: str
    volumes:
      description: Deleted volumes.
      type: list
      elements: str
errors:
  description: Every failure of a removal (O(state=absent)) or every problem with the options.
  returned: on failure
  type: list
  elements: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _builder
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError


def main():
    argument_spec = dict(
        run_id=dict(type="str", required=True),
        state=dict(type="str", choices=["running", "absent"], default="running"),
        image_id=dict(type="str"),
        instance_type=dict(type="str"),
        instance_types=dict(type="list", elements="str"),
        subnet_id=dict(type="str"),
        vpc_id=dict(type="str"),
        ssh_cidrs=dict(type="list", elements="str", default=[]),
        allow_open_ssh=dict(type="bool", default=False),
        key_file=dict(type="path", no_log=False),
        associate_public_ip=dict(type="bool"),
        root_device_name=dict(type="str", default="/dev/xvda"),
        volume_size=dict(type="int", default=8),
        volume_type=dict(type="str", choices=list(_validate.VOLUME_TYPES), default="gp3"),
        kms_key_id=dict(type="str", no_log=False),
        expires_at=dict(type="str"),
        tags=dict(type="dict"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=600),
        purpose=dict(type="str", choices=list(_builder.PURPOSES), default="builder"),
        user_data=dict(type="str"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec, supports_check_mode=True, mutually_exclusive=[("instance_type", "instance_types")]
    )
    try:
        request = _builder.build_request(module.params)
        builder = _builder.Builder(_aws.client(module, "ec2"), request, module.check_mode, warn=module.warn)
        result = builder.run()
    except BakeryError as e:  # BuilderError, and BakeryAWSError from the AWS calls
        module.fail_json(msg=e.msg, **e.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
