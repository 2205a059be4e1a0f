# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Every EC2 and SSM call the collection makes is wrapped here, exactly once: amazon.aws's
# AWSRetry.jittered_backoff retries throttling and transient server errors, and an error handler
# turns botocore exceptions into BakeryAWSError naming the failed operation. BakeryAWSError is a
# BakeryError: a module's one `except BakeryError` at its edge reports it like any other failure,
# with what amazon.aws's fail_json_aws would add (the AWS error code, request metadata, SDK
# versions, the traceback shown at -vvv).

from __future__ import annotations

import threading
import traceback
import typing as t
from collections.abc import Mapping

try:
    import botocore.exceptions
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore itself.

from ansible_collections.amazon.aws.plugins.module_utils.botocore import gather_sdk_versions
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.errors import AWSErrorHandler
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

# AWSRetry already retries RequestLimitExceeded, InternalError, Unavailable and the like.
# Start at 1 s and back off to 15 s: with botocore's own retries underneath, this rides out
# sustained throttling without stalling a bake for minutes on one call.
_RETRY = dict(retries=10, delay=1, backoff=2.0, max_delay=15)


def _retry(**extra: t.Any):
    return AWSRetry.jittered_backoff(**dict(_RETRY, **extra))


class BakeryAWSError(AnsibleAWSError, BakeryError):
    """An AWS call made by bakery.ami failed; the message names the operation.

    As a BakeryError, ``msg`` is the operation and the AWS error text, and ``result`` what
    fail_json_aws would add: the response (error code, request metadata), SDK versions and the
    traceback ansible shows at -vvv.
    """

    # set when the SDK itself lacks the operation (see unsupported())
    unsupported = False

    def __init__(self, message=None, exception=None, **kwargs):
        AnsibleAWSError.__init__(self, message, exception, **kwargs)
        self.msg = str(self)
        self.result = _failure_details(exception)

    @property
    def code(self) -> str | None:
        exc = self.exception
        response = getattr(exc, "response", None) or {}
        return response.get("Error", {}).get("Code")


def _failure_details(exception: BaseException | None) -> dict:
    """What amazon.aws's fail_json_aws reports besides the message."""
    if exception is None:
        return {}
    details: dict = dict(gather_sdk_versions())
    if exception.__traceback__ is not None:
        details["exception"] = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
    response = getattr(exception, "response", None)
    if isinstance(response, dict):
        details.update(camel_dict_to_snake_dict(response))
    return details


def error_code(exc: BaseException) -> str | None:
    """The AWS error code behind a BakeryAWSError or botocore ClientError, if any."""
    if isinstance(exc, BakeryAWSError):
        return exc.code
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code")


class _Handler(AWSErrorHandler):
    _CUSTOM_EXCEPTION = BakeryAWSError


class _ImageHandler(_Handler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"])


class _SnapshotHandler(_Handler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("InvalidSnapshot.NotFound")


class _InstanceHandler(_Handler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("InvalidInstanceID.NotFound")


class _KeyPairHandler(_Handler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("InvalidKeyPair.NotFound")


class _SecurityGroupHandler(_Handler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["InvalidGroup.NotFound", "InvalidGroupId.NotFound"])


class _VolumeHandler(_Handler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("InvalidVolume.NotFound")


class _SubnetHandler(_Handler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("InvalidSubnetID.NotFound")


class _LaunchTemplateHandler(_Handler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound",
                                    "InvalidLaunchTemplateId.Malformed"])


class _ParameterHandler(_Handler):
    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(["ParameterNotFound", "ParameterVersionNotFound"])


def _paginate(client, operation: str, key: str, params: dict) -> list:
    if client.can_paginate(operation):
        return client.get_paginator(operation).paginate(**params).build_full_result().get(key, [])
    return getattr(client, operation)(**params).get(key, [])


# ---------------------------------------------------------------------------------------------
# Clients


def regional_clients(module, service: str, regions, *, on_first_use: bool = False) -> RegionalClients:
    """region -> client for each region, made in the calling thread before any worker starts.

    on_first_use: each client is made when it is first asked for (or by make_all()), from
    whichever thread asks, one at a time (RegionalClients), so a module can start its first call
    before it has paid for the clients of every other region.

    AnsibleAWSModule.client builds a new boto3 session (and parses the service model again) for
    every client; here one session makes them all, on the process's one data loader (a module
    run in a task worker finds the model already parsed: plugin_utils/_in_process.py). The
    connection settings (credentials, profile, endpoint_url, CA bundle, aws_config) are the
    module's, exactly as module.client would use them.
    """
    try:
        clients = _regional_clients(module, service, regions)
    except (ValueError, botocore.exceptions.BotoCoreError) as e:  # a malformed endpoint_url, an unknown profile, ...
        raise BakeryAWSError(message="Couldn't connect to AWS", exception=e) from e
    if not on_first_use:
        clients.make_all()
    return clients


def client(module, service: str = "ec2"):
    """The client of the module's own region (see regional_clients)."""
    return regional_clients(module, service, [module.region])[module.region]


def _regional_clients(module, service: str, regions) -> RegionalClients:
    import botocore.config  # pylint: disable=import-outside-toplevel

    from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info

    _region, endpoint_url, params = get_aws_connection_info(module)
    profile = params.pop("profile_name", None)
    config = botocore.config.Config(user_agent_extra=f"bakery.ami/{module._name}")
    extra = params.pop("aws_config", None)
    if extra is not None:
        config = config.merge(extra)
    session = _session(profile)
    return RegionalClients(
        lambda region: session.client(service, config=config, region_name=region, endpoint_url=endpoint_url, **params),
        regions,
    )


# A boto3 session is not safe to share between threads, and the process has one per profile
# (_session): every client of the process is made under this lock.
_MAKING = threading.RLock()


class RegionalClients(Mapping):
    """region -> client, each made once, on first use, from one session.

    Clients are made one at a time, under the process's lock (_MAKING); the copy step's workers
    ask for theirs from their own threads.
    """

    def __init__(self, make: t.Callable[[str], t.Any], regions):
        self._make = make
        self._regions = list(dict.fromkeys(regions))
        self._made: dict = {}

    def __getitem__(self, region: str):
        with _MAKING:
            if region not in self._made:
                if region not in self._regions:
                    raise KeyError(region)
                try:
                    self._made[region] = self._make(region)
                except (ValueError, botocore.exceptions.BotoCoreError) as e:
                    raise BakeryAWSError(message="Couldn't connect to AWS", exception=e) from e
            return self._made[region]

    def __iter__(self):
        return iter(self._regions)

    def __len__(self) -> int:
        return len(self._regions)

    def make_all(self) -> None:
        """Make every client not made yet (a module does this while it waits on AWS)."""
        for region in self._regions:
            self[region]  # pylint: disable=pointless-statement


# One botocore data loader per process: the service models it parses are cached on it, so every
# session after the first reads no model again, and a process forked from one that warmed it
# (an Ansible task worker, see plugin_utils/_in_process.py) reads none at all.
_DATA_LOADER = None
# One boto3 session per profile and process: a new botocore session registers its ~130 built-in
# event handlers again (about 20 ms here); a task worker forked from the process that warmed the
# data loader also finds its session made. A session holds no connection (its clients do).
_SESSIONS: dict = {}


def _session(profile: str | None):
    import boto3  # pylint: disable=import-outside-toplevel
    import botocore.loaders  # pylint: disable=import-outside-toplevel
    import botocore.session  # pylint: disable=import-outside-toplevel

    global _DATA_LOADER  # pylint: disable=global-statement
    with _MAKING:
        if profile in _SESSIONS:
            return _SESSIONS[profile]
        core = botocore.session.Session(profile=profile)
        if _DATA_LOADER is None:
            _DATA_LOADER = core.get_component("data_loader")
            if type(_DATA_LOADER.file_loader) is botocore.loaders.JSONFileLoader:  # pylint: disable=unidiomatic-typecheck
                _DATA_LOADER.file_loader = _plain_json_file_loader()
        else:
            core.register_component("data_loader", _DATA_LOADER)
        _SESSIONS[profile] = boto3.session.Session(botocore_session=core)
        return _SESSIONS[profile]


def _plain_json_file_loader():
    """botocore's JSON file loader, parsing into plain dicts.

    botocore parses every model file into OrderedDicts, which doubles the time the EC2 model takes
    (0.10 s against 0.05 s here); a dict keeps the order too, and botocore asks nothing else of them.
    """
    import gzip  # pylint: disable=import-outside-toplevel
    import json  # pylint: disable=import-outside-toplevel
    import os  # pylint: disable=import-outside-toplevel

    import botocore.loaders  # pylint: disable=import-outside-toplevel

    class PlainJSONFileLoader(botocore.loaders.JSONFileLoader):
        # the same files in the same order as botocore's: <path>.json, then <path>.json.gz
        def load_file(self, file_path):
            for extension, opener in ((".json", open), (".json.gz", gzip.open)):
                if os.path.isfile(file_path + extension):
                    with opener(file_path + extension, "rb") as handle:
                        return json.loads(handle.read().decode("utf-8"))
            return None

    return PlainJSONFileLoader()


def warm_client_data(services) -> None:
    """Parse the services' models (and endpoint rules) into this process's data loader, now.

    No call is made and no credentials are looked up. Best effort: without boto3, or with a
    broken AWS configuration, the modules report the problem themselves when they run.
    """
    try:
        session = _session(None)
        for service in services:
            session.client(service, region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-")
    except Exception:  # pylint: disable=broad-except
        pass


# ---------------------------------------------------------------------------------------------
# Regions


@_Handler.common_error_handler("describe regions")
@_retry()
def describe_regions(client, **params) -> list:
    return client.describe_regions(**params)["Regions"]


# ---------------------------------------------------------------------------------------------
# Images


@_ImageHandler.list_error_handler("describe images", [])
@_retry()
def describe_images(client, **params) -> list:
    """All pages of DescribeImages. A missing image ID yields [] rather than an error."""
    return _paginate(client, "describe_images", "Images", params)


@_Handler.common_error_handler("describe images")
@_retry()
def describe_images_page(client, **params) -> dict:
    """One page of DescribeImages (MaxResults/NextToken), for callers that stop early."""
    return client.describe_images(**params)


@_Handler.common_error_handler("create image")
@_retry()
def create_image(client, **params) -> dict:
    return client.create_image(**params)


@_Handler.common_error_handler("register image")
@_retry()
def register_image(client, **params) -> dict:
    return client.register_image(**params)


@_Handler.common_error_handler("copy image")
@_retry()
def copy_image(client, **params) -> dict:
    return client.copy_image(**params)


@_ImageHandler.deletion_error_handler("deregister image")
@_retry()
def deregister_image(client, image_id: str) -> bool:
    client.deregister_image(ImageId=image_id)
    return True


@_Handler.common_error_handler("modify image attribute")
@_retry()
def modify_image_attribute(client, image_id: str, **params) -> bool:
    client.modify_image_attribute(ImageId=image_id, **params)
    return True


@_ImageHandler.list_error_handler("describe image attribute", {})
@_retry()
def describe_image_attribute(client, image_id: str, attribute: str) -> dict:
    return client.describe_image_attribute(ImageId=image_id, Attribute=attribute)


@_Handler.common_error_handler("enable image deprecation")
@_retry()
def enable_image_deprecation(client, image_id: str, deprecate_at) -> bool:
    client.enable_image_deprecation(ImageId=image_id, DeprecateAt=deprecate_at)
    return True


@_Handler.common_error_handler("disable image deprecation")
@_retry()
def disable_image_deprecation(client, image_id: str) -> bool:
    client.disable_image_deprecation(ImageId=image_id)
    return True


# ---------------------------------------------------------------------------------------------
# Retirement: disable/enable, deregistration protection, references, block public access


@_Handler.common_error_handler("deregister image with its snapshots")
@_retry()
def deregister_image_with_snapshots(client, image_id: str) -> list:
    """DeregisterImage with DeleteAssociatedSnapshots; EC2's DeleteSnapshotResults.

    Raises BakeryAWSError like every wrapper; a caller falls back to deregister_image and
    delete_snapshot when unsupported_parameter() says the API does not take the parameter.
    """
    return client.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True).get("DeleteSnapshotResults") or []


# What an API (or an SDK too old to know it) answers to a parameter or action it does not have.
UNSUPPORTED_CODES = ("InvalidAction", "UnsupportedOperation", "UnknownParameter", "InvalidParameter",
                     "UnsupportedParameter")


def unsupported(exc: BaseException) -> bool:
    """Whether a failed call failed because the API does not have the action or parameter."""
    if getattr(exc, "unsupported", False):
        return True
    cause = getattr(exc, "exception", exc)
    if type(cause).__name__ in ("ParamValidationError", "UnknownParameterError", "OperationNotPageableError"):
        return True
    return error_code(exc) in UNSUPPORTED_CODES


@_Handler.common_error_handler("disable image")
@_retry()
def disable_image(client, image_id: str) -> bool:
    client.disable_image(ImageId=image_id)
    return True


@_Handler.common_error_handler("enable image")
@_retry()
def enable_image(client, image_id: str) -> bool:
    client.enable_image(ImageId=image_id)
    return True


@_Handler.common_error_handler("enable image deregistration protection")
@_retry()
def enable_image_deregistration_protection(client, image_id: str, with_cooldown: bool) -> str:
    """The protection state EC2 answers (enabled-without-cooldown or enabled-with-cooldown)."""
    return client.enable_image_deregistration_protection(ImageId=image_id, WithCooldown=with_cooldown).get("Return")


@_Handler.common_error_handler("disable image deregistration protection")
@_retry()
def disable_image_deregistration_protection(client, image_id: str) -> str:
    """The protection state EC2 answers (disabled, or disabled-after-<time> for a cooldown)."""
    return client.disable_image_deregistration_protection(ImageId=image_id).get("Return")


@_Handler.common_error_handler("describe image references")
@_retry()
def describe_image_references(client, **params) -> list:
    """All pages of DescribeImageReferences (instances, launch templates, SSM parameters of images)."""
    if not hasattr(client, "describe_image_references"):
        error = BakeryAWSError(message="Failed to describe image references: the installed botocore does not have it")
        error.unsupported = True
        raise error
    return _paginate(client, "describe_image_references", "ImageReferences", params)


@_Handler.common_error_handler("get image block public access state")
@_retry()
def get_image_block_public_access_state(client) -> str:
    """block-new-sharing or unblocked: the region's image block public access setting."""
    return client.get_image_block_public_access_state().get("ImageBlockPublicAccessState")


# ---------------------------------------------------------------------------------------------
# Launch templates


@_Handler.common_error_handler("describe launch templates")
@_retry()
def describe_launch_templates(client, **params) -> list:
    return _paginate(client, "describe_launch_templates", "LaunchTemplates", params)


@_Handler.common_error_handler("describe launch template versions")
@_retry()
def describe_launch_template_versions(client, **params) -> list:
    return _paginate(client, "describe_launch_template_versions", "LaunchTemplateVersions", params)


@_LaunchTemplateHandler.list_error_handler("describe launch templates", [])
@_retry()
def find_launch_templates(client, **params) -> list:
    """DescribeLaunchTemplates by name or ID; [] when the template does not exist."""
    return _paginate(client, "describe_launch_templates", "LaunchTemplates", params)


@_Handler.common_error_handler("create launch template version")
@_retry()
def create_launch_template_version(client, **params) -> dict:
    """CreateLaunchTemplateVersion; answers the new LaunchTemplateVersion."""
    return client.create_launch_template_version(**params)["LaunchTemplateVersion"]


@_Handler.common_error_handler("modify launch template")
@_retry()
def modify_launch_template(client, **params) -> dict:
    """ModifyLaunchTemplate (the default version); answers the LaunchTemplate."""
    return client.modify_launch_template(**params)["LaunchTemplate"]


@_Handler.common_error_handler("delete launch template versions")
@_retry()
def delete_launch_template_versions(client, **params) -> dict:
    """DeleteLaunchTemplateVersions; the answer lists the versions deleted and those that were not."""
    return client.delete_launch_template_versions(**params)


# ---------------------------------------------------------------------------------------------
# Snapshots and volumes


@_SnapshotHandler.list_error_handler("describe snapshots", [])
@_retry()
def describe_snapshots(client, **params) -> list:
    return _paginate(client, "describe_snapshots", "Snapshots", params)


@_SnapshotHandler.deletion_error_handler("delete snapshot")
@_retry(catch_extra_error_codes=["InvalidSnapshot.InUse"])
def delete_snapshot(client, snapshot_id: str) -> bool:
    client.delete_snapshot(SnapshotId=snapshot_id)
    return True


@_Handler.common_error_handler("modify snapshot attribute")
@_retry()
def modify_snapshot_attribute(client, snapshot_id: str, **params) -> bool:
    client.modify_snapshot_attribute(SnapshotId=snapshot_id, **params)
    return True


@_SnapshotHandler.list_error_handler("describe snapshot attribute", {})
@_retry()
def describe_snapshot_attribute(client, snapshot_id: str, attribute: str) -> dict:
    return client.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute=attribute)


@_Handler.common_error_handler("create snapshot")
@_retry(catch_extra_error_codes=["SnapshotCreationPerVolumeRateExceeded"])
def create_snapshot(client, **params) -> dict:
    return client.create_snapshot(**params)


@_VolumeHandler.list_error_handler("describe volumes", [])
@_retry()
def describe_volumes(client, **params) -> list:
    return _paginate(client, "describe_volumes", "Volumes", params)


@_Handler.common_error_handler("create volume")
@_retry()
def create_volume(client, **params) -> dict:
    return client.create_volume(**params)


@_VolumeHandler.deletion_error_handler("delete volume")
@_retry(catch_extra_error_codes=["VolumeInUse"])
def delete_volume(client, volume_id: str) -> bool:
    client.delete_volume(VolumeId=volume_id)
    return True


# ---------------------------------------------------------------------------------------------
# Tags


@_Handler.common_error_handler("create tags")
@_retry(catch_extra_error_codes=["InvalidAMIID.NotFound", "InvalidSnapshot.NotFound", "InvalidInstanceID.NotFound"])
def create_tags(client, resource_ids: list, tags: list) -> bool:
    """Tag resources; NotFound is retried because a resource just created may not be visible yet."""
    client.create_tags(Resources=list(resource_ids), Tags=tags)
    return True


@_Handler.common_error_handler("delete tags")
@_retry()
def delete_tags(client, resource_ids: list, tags: list) -> bool:
    client.delete_tags(Resources=list(resource_ids), Tags=tags)
    return True


# ---------------------------------------------------------------------------------------------
# Instances


@_InstanceHandler.list_error_handler("describe instances", [])
@_retry()
def describe_instances(client, **params) -> list:
    """All instances of all reservations, flattened."""
    reservations = _paginate(client, "describe_instances", "Reservations", params)
    return [instance for reservation in reservations for instance in reservation.get("Instances", [])]


@_Handler.common_error_handler("run instances")
@_retry()
def run_instances(client, **params) -> list:
    return client.run_instances(**params)["Instances"]


@_InstanceHandler.deletion_error_handler("stop instances")
@_retry()
def stop_instances(client, instance_ids: list) -> dict | bool:
    """{instance_id: state after the call}; False when an instance does not exist."""
    response = client.stop_instances(InstanceIds=list(instance_ids))
    return {
        item["InstanceId"]: (item.get("CurrentState") or {}).get("Name")
        for item in response.get("StoppingInstances") or []
    } or True


@_InstanceHandler.deletion_error_handler("terminate instances")
@_retry()
def terminate_instances(client, instance_ids: list) -> bool:
    client.terminate_instances(InstanceIds=list(instance_ids))
    return True


# ---------------------------------------------------------------------------------------------
# Key pairs and security groups (the builder's temporary access)


@_KeyPairHandler.list_error_handler("describe key pairs", [])
@_retry()
def describe_key_pairs(client, **params) -> list:
    return client.describe_key_pairs(**params).get("KeyPairs", [])


@_Handler.common_error_handler("create key pair")
@_retry()
def create_key_pair(client, **params) -> dict:
    return client.create_key_pair(**params)


@_KeyPairHandler.deletion_error_handler("delete key pair")
@_retry()
def delete_key_pair(client, key_name: str) -> bool:
    client.delete_key_pair(KeyName=key_name)
    return True


@_SecurityGroupHandler.list_error_handler("describe security groups", [])
@_retry()
def describe_security_groups(client, **params) -> list:
    return _paginate(client, "describe_security_groups", "SecurityGroups", params)


@_Handler.common_error_handler("create security group")
@_retry()
def create_security_group(client, **params) -> dict:
    return client.create_security_group(**params)


@_Handler.common_error_handler("authorize security group ingress")
@_retry()
def authorize_security_group_ingress(client, **params) -> bool:
    client.authorize_security_group_ingress(**params)
    return True


# DependencyViolation (an instance still holds the group) is the caller's to wait out: ami_builder
# asks again on the waiter's schedule, bounded by its wait_timeout.
@_SecurityGroupHandler.deletion_error_handler("delete security group")
@_retry()
def delete_security_group(client, group_id: str) -> bool:
    client.delete_security_group(GroupId=group_id)
    return True


@_SubnetHandler.list_error_handler("describe subnets", [])
@_retry()
def describe_subnets(client, **params) -> list:
    """All pages of DescribeSubnets. A missing subnet ID yields [] rather than an error."""
    return _paginate(client, "describe_subnets", "Subnets", params)


# ---------------------------------------------------------------------------------------------
# SSM public parameters (current AMI IDs)


@_ParameterHandler.list_error_handler("get SSM parameter", None)
@_retry()
def get_parameter(client, name: str) -> dict | None:
    """The parameter, or None when it does not exist."""
    return client.get_parameter(Name=name)["Parameter"]


# ---------------------------------------------------------------------------------------------
# SSM parameters of this account (image channels)


@_Handler.common_error_handler("put SSM parameter")
@_retry()
def put_parameter(client, **params) -> dict:
    """PutParameter; answers {"Version": n, "Tier": ...}."""
    return client.put_parameter(**params)


@_ParameterHandler.deletion_error_handler("delete SSM parameter")
@_retry()
def delete_parameter(client, name: str) -> bool:
    """False when the parameter did not exist."""
    client.delete_parameter(Name=name)
    return True


@_ParameterHandler.list_error_handler("get SSM parameter history", [])
@_retry()
def get_parameter_history(client, name: str) -> list:
    """Every stored version of the parameter, oldest first; [] when it does not exist."""
    return _paginate(client, "get_parameter_history", "Parameters", {"Name": name})


@_Handler.common_error_handler("get SSM parameters by path")
@_retry()
def get_parameters_by_path(client, path: str) -> list:
    """Every parameter directly under path (not recursive), all pages; [] when there is none."""
    return _paginate(client, "get_parameters_by_path", "Parameters", {"Path": path, "Recursive": False})


@_Handler.common_error_handler("tag SSM parameter")
@_retry(catch_extra_error_codes=["InvalidResourceId"])
def add_parameter_tags(client, name: str, tags: dict) -> bool:
    """Tag a parameter; InvalidResourceId is retried since a parameter just put may not be visible yet."""
    client.add_tags_to_resource(ResourceType="Parameter", ResourceId=name,
                                Tags=[{"Key": key, "Value": value} for key, value in tags.items()])
    return True


@_Handler.common_error_handler("describe SSM parameters")
@_retry()
def describe_parameters(client, **params) -> list:
    return _paginate(client, "describe_parameters", "Parameters", params)


@_Handler.common_error_handler("get SSM parameters")
@_retry()
def get_parameters(client, names: list) -> list:
    """The parameters that exist among names (at most 10 a call)."""
    return client.get_parameters(Names=list(names)).get("Parameters") or []


# ---------------------------------------------------------------------------------------------
# Recycle Bin


@_Handler.common_error_handler("list Recycle Bin rules")
@_retry()
def list_rbin_rules(client, **params) -> list:
    return _paginate(client, "list_rules", "Rules", params)


@_Handler.common_error_handler("create Recycle Bin rule")
@_retry()
def create_rbin_rule(client, **params) -> dict:
    return client.create_rule(**params)


@_Handler.common_error_handler("get Recycle Bin rule")
@_retry()
def get_rbin_rule(client, identifier: str) -> dict:
    return client.get_rule(Identifier=identifier)
