# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launch template versions as the EC2 API reference describes them, where moto 5.x differs.

- CreateLaunchTemplateVersion with ``SourceVersion``: the new version starts from the source
  version's data and the request's ``LaunchTemplateData`` overrides its top-level keys (moto kept
  only the request's data). A source version that does not exist answers
  ``InvalidLaunchTemplateId.VersionNotFound``; a ``VersionDescription`` over 255 characters
  answers ``InvalidParameterValue``.
- DeleteLaunchTemplateVersions (moto did not have it): each version number is deleted or listed
  as unsuccessful with a ``ResponseError``: ``launchTemplateVersionDoesNotExist``, or
  ``unexpectedError`` for the template's default version, which EC2 never deletes.
- ``ClientToken``: the same token answers the version it made (while that version exists) without
  making another, so a retry after a lost answer makes no second version (moto ignored it).
- Version numbers are never reused and a version is found by its number, not its position (moto
  indexed a list, so a deletion would have shifted every later version); ``$Latest`` is the
  highest number left, and ``MinVersion``/``MaxVersion`` select by number.

``DescribeLaunchTemplateVersions`` still ignores ``Filters`` (as moto does): bakery.ami reads a
template's versions and selects them itself. ``install()`` is called once by patches.install().
"""
from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import EC2ClientError, InvalidLaunchTemplateVersionNotFound
from moto.ec2.models.launch_templates import LaunchTemplate, LaunchTemplateBackend, LaunchTemplateVersion
from moto.ec2.responses import EC2Response

MAX_DESCRIPTION = 255
_INSTALLED = False
_ORIGINAL: dict[str, Any] = {}


def _numbers(template: LaunchTemplate) -> dict[int, LaunchTemplateVersion]:
    return {version.number: version for version in template.versions}


def create_version(self: LaunchTemplate, data: dict[str, Any], description: str) -> LaunchTemplateVersion:
    number = max([getattr(self, "_bakery_last_number", 0)] + [version.number for version in self.versions]) + 1
    self._bakery_last_number = number
    version = LaunchTemplateVersion(self, number, data, description)
    self.versions.append(version)
    return version


def get_version(self: LaunchTemplate, num: Any) -> LaunchTemplateVersion:
    text = str(num).lower()
    if text == "$latest":
        return self.latest_version()
    if text == "$default":
        return self.default_version()
    try:
        return _numbers(self)[int(num)]
    except (KeyError, ValueError):
        raise InvalidLaunchTemplateVersionNotFound(template_id=self.id, version=num) from None


def default_version(self: LaunchTemplate) -> LaunchTemplateVersion:
    return _numbers(self)[self.default_version_number]


def latest_version(self: LaunchTemplate) -> LaunchTemplateVersion:
    return max(self.versions, key=lambda version: version.number)


def describe_launch_template_versions(self: LaunchTemplateBackend, template_name: str, template_id: str,
                                      versions: list[str], min_version: int, max_version: int,
                                      max_results: int) -> list:
    if (min_version or max_version) and not versions and (template_name or template_id):
        template = self.get_launch_template_by_name(template_name) if template_name else \
            self.get_launch_template(template_id)
        low, high = min_version or 0, max_version or float("inf")
        found = [(template, version) for version in sorted(template.versions, key=lambda v: v.number)
                 if low <= version.number <= high]
        return found[:max_results]
    return _ORIGINAL["describe_launch_template_versions"](self, template_name, template_id, versions, min_version,
                                                          max_version, max_results)


def _template_of(response: EC2Response) -> LaunchTemplate:
    name = response._get_param("LaunchTemplateName")
    template_id = response._get_param("LaunchTemplateId")
    if name:
        return response.ec2_backend.get_launch_template_by_name(name)
    return response.ec2_backend.get_launch_template(template_id)


def _r_create_launch_template_version(self: EC2Response) -> Any:
    token = self._get_param("ClientToken")
    if token:
        template = _template_of(self)
        made = getattr(template, "_bakery_tokens", {}).get(token)
        if made is not None and made in _numbers(template):
            return _version_answer(self, template, _numbers(template)[made])
        answer = _create_version(self)
        template._bakery_tokens = dict(getattr(template, "_bakery_tokens", {}), **{token: template.latest_version().number})
        return answer
    return _create_version(self)


def _version_answer(self: EC2Response, template: LaunchTemplate, version: LaunchTemplateVersion) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"LaunchTemplateVersion": {
        "CreateTime": version.create_time,
        "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
        "DefaultVersion": template.is_default(version),
        "LaunchTemplateData": version.data,
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "VersionDescription": version.description,
        "VersionNumber": version.number,
    }})


def _create_version(self: EC2Response) -> Any:
    description = self._get_param("VersionDescription")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise EC2ClientError("InvalidParameterValue", f"VersionDescription: at most {MAX_DESCRIPTION} characters")
    source = self._get_param("SourceVersion")
    if source:
        template = _template_of(self)
        base = dict(template.get_version(source).data)
        base.update(self._get_param("LaunchTemplateData", {}) or {})
        # moto's response reads the data through _get_param: hand it the merged data
        original_get_param = self._get_param

        def get_param(name: str, if_none: Any = None) -> Any:
            if name == "LaunchTemplateData":
                return base
            return original_get_param(name, if_none)

        self._get_param = get_param  # type: ignore[method-assign]
        try:
            return _ORIGINAL["create_launch_template_version"](self)
        finally:
            del self._get_param
    return _ORIGINAL["create_launch_template_version"](self)


def _r_delete_launch_template_versions(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    template = _template_of(self)
    deleted: list = []
    failed: list = []
    for value in self._get_param("Versions", []) or []:
        entry = {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name}
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        versions = _numbers(template)
        if number is None or number not in versions:
            failed.append(dict(entry, VersionNumber=number or 0, ResponseError={
                "Code": "launchTemplateVersionDoesNotExist",
                "Message": f"The specified launch template version, {value}, does not exist"}))
            continue
        if number == template.default_version_number:
            failed.append(dict(entry, VersionNumber=number, ResponseError={
                "Code": "unexpectedError",
                "Message": "The default version of a launch template cannot be deleted"}))
            continue
        template.versions.remove(versions[number])
        deleted.append(dict(entry, VersionNumber=number))
    return ActionResult({"SuccessfullyDeletedLaunchTemplateVersions": deleted,
                         "UnsuccessfullyDeletedLaunchTemplateVersions": failed})


def install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    LaunchTemplate.create_version = create_version
    LaunchTemplate.get_version = get_version
    LaunchTemplate.default_version = default_version
    LaunchTemplate.latest_version = latest_version
    _ORIGINAL["describe_launch_template_versions"] = LaunchTemplateBackend.describe_launch_template_versions
    LaunchTemplateBackend.describe_launch_template_versions = describe_launch_template_versions
    _ORIGINAL["create_launch_template_version"] = EC2Response.create_launch_template_version
    EC2Response.create_launch_template_version = _r_create_launch_template_version
    EC2Response.delete_launch_template_versions = _r_delete_launch_template_versions
