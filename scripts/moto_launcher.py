#!/usr/bin/env python3
"""Runs moto's server (EC2, STS, Auto Scaling, ...) on 127.0.0.1, patched where moto differs
from EC2 in ways fleetform depends on. Used by scripts/dev-ec2 and by test
helpers that want a private server; run it with the python of the dev-ec2
virtualenv (`scripts/dev-ec2 python`).

    moto_launcher.py --host 127.0.0.1 --port 0 --port-file FILE [--parent-pid PID]

--port 0 picks a free port. Once the server answers EC2 (STS, Auto Scaling) requests,
the port number is written to --port-file (temp file + rename), so a caller can
wait for that file to appear and then read it. With --parent-pid the server
exits within about a second of that process disappearing. SIGTERM/SIGINT stop
it cleanly. Logs go to stderr (--quiet drops the per-request lines).

What is patched (moto 5.2.x; all in this process only, nothing on disk):

1. DescribeLaunchTemplates: moto cuts the list to MaxResults (default 15) and
   never returns a NextToken, so a client that pages correctly silently sees
   the first 15 templates. Patched to page like EC2: MaxResults 1..200
   (InvalidParameterValue otherwise); an opaque NextToken whenever more
   remain; the next page continues after the last item returned, in creation
   order (stable even when templates are created or deleted between pages).
   Without MaxResults EC2 makes an "unpaginated call" and returns everything
   (AWS docs, "Pagination in the Amazon EC2 API"), so that is what we do.
   Tags are read live (moto returned a snapshot taken at creation, so
   CreateTags/DeleteTags on a template were invisible here).

2. DescribeLaunchTemplateVersions: same truncation, same fix. moto 5.2 does
   accept the "all templates" form (no LaunchTemplateId/Name, Versions only
   $Default and/or $Latest) but truncates it to 15 without a token, and
   returns a version twice when it is both $Default and $Latest; patched to
   page, return each (template, version) once, and reject version numbers in
   that form as EC2 does. For one template, version numbers outside
   1..latest are VersionNotFound (moto returned the latest version for "0").

3. Every request is served under one lock. moto's backends are plain Python
   objects without locking; EC2 is linearizable per call. This keeps
   concurrent callers (fleetform applies with concurrency 10) from racing
   inside moto, e.g. two CreateLaunchTemplate with the same name both
   succeeding.

4. RunInstances with a ClientToken already used returns the reservation that
   token created (EC2's idempotency contract; moto launched again), or, when
   the other parameters differ (another subnet, instance type, count, ...),
   fails with IdempotentParameterMismatch as EC2 does; and
   CopyImage applies its TagSpecifications (moto ignored them) and honours its
   ClientToken. fleetform's crash-safe applies rely on both.

5. RunInstances from a launch template tags the new volumes with the
   template's volume tag specifications (moto 5.2.5 drops them: volumes must
   carry the fleet's tags from creation), merged with the request's.

6. RunInstances from a launch template applies the template's
   InstanceMarketOptions (a spot template launches spot instances) and
   MetadataOptions (IMDSv2 required), unless the request sets its own; its
   block devices keep their Iops and Throughput (moto dropped them, so an
   io1/io2 volume failed with InvalidParameterDependency).

7. DescribeSubnets, DescribeSecurityGroups and DescribeInstanceTypeOfferings
   page like EC2: MaxResults 5..1000, a NextToken whenever more remain
   (moto returned everything in one answer and no token). Without
   MaxResults, everything, as before.

8. A launch's block device mapping for the image's root device
   (RootDeviceName) makes the root volume with that size and type, as on EC2;
   moto made its default 8 GiB root at /dev/sda1 and a second volume at the
   same device beside it.

Auto Scaling (moto 5.2.5; fleetform's groups):

9. A DesiredCapacity outside [MinSize, MaxSize] (CreateAutoScalingGroup,
   UpdateAutoScalingGroup with the bounds it leaves, SetDesiredCapacity) and
   MinSize above MaxSize are ValidationError, as on AWS (moto accepted them
   and launched that many).

10. MaxInstanceLifetime is stored and returned (moto dropped it); 0 clears
    it; values outside AWS's 86400..31536000 are ValidationError.

11. UpdateAutoScalingGroup without MixedInstancesPolicy keeps the group's
    policy (moto erased it).

12. A group with a MixedInstancesPolicy launches the first override's
    instance type from that override's own launch template when it has one
    (moto launched the template's instance type: none when the template
    names none), one instance at a time into the subnet of the zone holding
    the fewest of the group's instances, ties by the order of
    VPCZoneIdentifier (moto put all in the first subnet). Launched instances
    carry the group's propagated tags and aws:autoscaling:groupName in
    DescribeInstances (moto did that already; the self-test checks it), and
    the group reports each instance's launch template version as launched.

13. StartInstanceRefresh and DescribeInstanceRefreshes (moto has neither:
    it answers a bare HTTP 500). Deterministic, not timed: a refresh lists
    the group's instances at its start; each DescribeInstanceRefreshes of
    the group answers with the refreshes as they stand (newest first;
    MaxRecords, NextToken, InstanceRefreshIds) and then moves each refresh
    in flight one step: one listed instance still in the group is
    terminated and a replacement launched. A group of N instances reads
    InProgress N times, then Successful. A group without instances is
    Successful at once. A start while one is in flight is
    InstanceRefreshInProgress.

14. CreateAutoScalingGroup of a name that exists is AlreadyExists (moto
    replaced the group, orphaning its instances).

15. DetachInstances naming an instance that is not in the group is
    ValidationError, as on AWS (moto ignored it and still lowered the desired
    capacity for it).

16. DescribeAutoScalingGroups pages with an opaque NextToken that survives
    deletions, in creation order (moto's token was the last group's name: a
    group deleted between pages made the next page an HTTP 500); MaxRecords
    1..100, default 50, otherwise ValidationError (moto: HTTP 500).

Checked, not patched (Auto Scaling): DescribeAutoScalingGroups honours
Filters tag:KEY (keys with ':') and follows NextToken/MaxRecords otherwise.
DeleteAutoScalingGroup of a missing group is ValidationError "AutoScalingGroup
name not found", as on AWS. Launched group instances carry the propagated
tags (not the others) and aws:autoscaling:groupName. Not patched, not relied
on: AttachInstances past MaxSize fails with ResourceContention, and the
desired capacity it sets counts instances, not weights.

EC2 (fleetform's import):

17. CreateLaunchTemplateVersion with SourceVersion makes the new version from
    that version's data, with the request's LaunchTemplateData replacing
    only the top-level settings it sets (EC2's rule; moto ignored
    SourceVersion, so a version meant to add tags lost every other setting).
    fleetform's import adds its tag specifications to templates made by hand
    this way.

Checked, not patched: DescribeLaunchTemplateVersions echoes every field of a
template's data as written (security groups, network interfaces, block
devices, market and spot options, instance profile, metadata options, tag
specifications per resource type). DescribeSubnets and DescribeSecurityGroups
with a subnet-id / group-id filter leave out ids that do not exist (EC2 does
the same; only the id-list parameters fail on one). RunInstances refuses
network interfaces beside an instance-level SubnetId
(InvalidParameterCombination), as EC2 does.
 DescribeInstances pages by reservation with
MaxResults/NextToken and returns a NextToken whenever more remain (it pages at
100 when MaxResults is omitted, where EC2 would return everything; a client
that follows NextToken sees all either way). DescribeImages supports the
filters tag:<key> (keys may contain ':', e.g. tag:fleetform:fleet) and
image-id.

--no-patch serves plain moto (for the self-test, which proves the patches
matter).
"""

import argparse
import base64
import io
import itertools
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.request

LOG = logging.getLogger("moto_launcher")

# EC2's documented bounds for MaxResults of DescribeLaunchTemplates and
# DescribeLaunchTemplateVersions.
MAX_RESULTS_MIN = 1
MAX_RESULTS_MAX = 200

ALL_TEMPLATES_MSG = (
    "To describe the launch template data for all your launch templates, for "
    "'--versions' specify '$Latest', '$Default', or both, and omit "
    "'--launch-template-id', '--launch-template-name', and version numbers. To "
    "describe the launch template data for a specific launch template, specify "
    "'--launch-template-id' or '--launch-template-name', and for '--versions' "
    "specify one or more of the following values: '$Latest', '$Default', or one "
    "or more version numbers."
)


# --------------------------------------------------------------------- patch
def apply_patches():
    """Monkeypatches moto's EC2 launch template handlers (see module doc)."""
    from moto.core.responses import ActionResult
    from moto.ec2 import exceptions as ec2_exceptions
    from moto.ec2.models import launch_templates as lt_models
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses import launch_templates as lt_responses

    EC2ClientError = ec2_exceptions.EC2ClientError
    InvalidParameterValue = ec2_exceptions.InvalidParameterValue
    MissingParameter = ec2_exceptions.MissingParameter
    VersionNotFound = ec2_exceptions.InvalidLaunchTemplateVersionNotFound

    # A creation sequence number gives templates a stable total order that
    # survives deletions (ids are random, so they cannot order by themselves).
    seq = itertools.count(1)
    original_init = lt_models.LaunchTemplate.__init__

    def launch_template_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._fleetform_seq = next(seq)

    lt_models.LaunchTemplate.__init__ = launch_template_init

    def template_key(template):
        return (getattr(template, "_fleetform_seq", 0), template.id)

    def template_tags(template):
        # Live tags, as EC2 returns them (moto's template.tags is a snapshot).
        backend = template.ec2_backend
        tags = getattr(backend, "tags", None)
        if isinstance(tags, dict):
            return [{"key": k, "value": v} for k, v in tags.get(template.id, {}).items()]
        return template.get_tags()

    def max_results_param(response):
        raw = response._get_param("MaxResults")
        if raw is None:
            return None  # unpaginated call: everything
        try:
            value = int(raw)
        except (TypeError, ValueError):
            value = None
        if value is None or not MAX_RESULTS_MIN <= value <= MAX_RESULTS_MAX:
            raise InvalidParameterValue(
                f"Value ( {raw} ) for parameter maxResults is invalid. "
                f"Parameter must be between {MAX_RESULTS_MIN} and {MAX_RESULTS_MAX}."
            )
        return value

    def invalid_token():
        return EC2ClientError(
            "InvalidPaginationToken",
            "The specified pagination token is not valid or is expired.",
        )

    def encode_token(operation, key):
        raw = json.dumps({"op": operation, "after": list(key)}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode_token(operation, token, arity):
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
            after = data["after"]
            ok = (
                data.get("op") == operation
                and isinstance(after, list)
                and len(after) == arity
                and all(isinstance(x, (int, str)) for x in after)
            )
        except Exception:
            ok = False
        if not ok:
            raise invalid_token()
        return tuple(after)

    def page(operation, items, key, token, max_results, arity):
        """Items after the token's key, at most max_results; and the next token."""
        items = sorted(items, key=key)
        if token:
            after = decode_token(operation, token, arity)
            try:
                items = [item for item in items if key(item) > after]
            except TypeError:
                raise invalid_token()
        if max_results is None or len(items) <= max_results:
            return items, None
        items = items[:max_results]
        return items, encode_token(operation, key(items[-1]))

    def describe_launch_templates(self):
        max_results = max_results_param(self)
        token = self._get_param("NextToken")
        template_names = self._get_param("LaunchTemplateNames", [])
        template_ids = self._get_param("LaunchTemplateIds", [])
        filters = self._filters_from_querystring()

        self.error_on_dryrun()

        templates = self.ec2_backend.describe_launch_templates(
            template_names=template_names,
            template_ids=template_ids,
            filters=filters,
        )
        templates, next_token = page(
            "DescribeLaunchTemplates", templates, template_key, token, max_results, 2
        )
        result = {
            "LaunchTemplates": [
                {
                    "CreateTime": template.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersionNumber": template.default_version_number,
                    "LatestVersionNumber": template.latest_version_number,
                    "LaunchTemplateId": template.id,
                    "LaunchTemplateName": template.name,
                    "Tags": template_tags(template),
                }
                for template in templates
            ],
            "NextToken": next_token,
        }
        return ActionResult(result)

    def get_version(template, selector):
        text = str(selector)
        if text.lower() == "$latest":
            return template.latest_version()
        if text.lower() == "$default":
            return template.default_version()
        try:
            number = int(text)
        except ValueError:
            number = 0
        if not 1 <= number <= len(template.versions):
            raise VersionNotFound(version=text, template_id=template.id)
        return template.versions[number - 1]

    def describe_launch_template_versions(self):
        name = self._get_param("LaunchTemplateName")
        template_id = self._get_param("LaunchTemplateId")
        versions = self._get_param("Versions", []) or []
        min_version = self._get_int_param("MinVersion")
        max_version = self._get_int_param("MaxVersion")
        max_results = max_results_param(self)
        token = self._get_param("NextToken")

        self.error_on_dryrun()

        backend = self.ec2_backend
        if name:
            template = backend.get_launch_template_by_name(name)
        elif template_id:
            template = backend.get_launch_template(template_id)
        else:
            template = None

        pairs = []
        if template is None:
            # All launch templates of the region: $Default and/or $Latest only.
            if not versions:
                raise MissingParameter(ALL_TEMPLATES_MSG)
            selectors = {str(v).lower() for v in versions}
            if not selectors <= {"$latest", "$default"}:
                raise InvalidParameterValue(ALL_TEMPLATES_MSG)
            for each in list(backend.launch_templates.values()):
                chosen = {}
                if "$default" in selectors:
                    version = each.default_version()
                    chosen[version.number] = version
                if "$latest" in selectors:
                    version = each.latest_version()
                    chosen[version.number] = version
                pairs.extend((each, chosen[number]) for number in sorted(chosen))
        elif versions:
            chosen = {}
            for selector in versions:
                version = get_version(template, selector)
                chosen[version.number] = version
            pairs = [(template, chosen[number]) for number in sorted(chosen)]
        else:
            low = min_version if min_version is not None else 1
            high = max_version if max_version is not None else len(template.versions)
            pairs = [(template, v) for v in template.versions if low <= v.number <= high]

        pairs, next_token = page(
            "DescribeLaunchTemplateVersions",
            pairs,
            lambda pair: template_key(pair[0]) + (pair[1].number,),
            token,
            max_results,
            3,
        )
        result = {
            "LaunchTemplateVersions": [
                {
                    "CreateTime": version.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersion": tmpl.is_default(version),
                    "LaunchTemplateData": version.data,
                    "LaunchTemplateId": tmpl.id,
                    "LaunchTemplateName": tmpl.name,
                    "VersionDescription": version.description,
                    "VersionNumber": version.number,
                }
                for tmpl, version in pairs
            ],
            "NextToken": next_token,
        }
        return ActionResult(result)

    lt_responses.LaunchTemplates.describe_launch_templates = describe_launch_templates
    lt_responses.LaunchTemplates.describe_launch_template_versions = (
        describe_launch_template_versions
    )
    # EC2Response must resolve to the patched handlers (a moto upgrade that
    # overrides them elsewhere would silently undo the patch).
    assert EC2Response.describe_launch_templates is describe_launch_templates
    assert EC2Response.describe_launch_template_versions is describe_launch_template_versions
    LOG.info(
        "patched moto: LaunchTemplates.describe_launch_templates, "
        "LaunchTemplates.describe_launch_template_versions, LaunchTemplate.__init__"
    )
    return page


def apply_idempotency_patches():
    """EC2 behaviour fleetform's crash-safety relies on and moto 5.2 lacks.

    - RunInstances with a ClientToken already used returns the reservation that
      token created, instead of launching again (EC2 "Ensuring idempotency");
      with other parameters (another subnet, instance type, ...) it fails with
      IdempotentParameterMismatch, as on EC2 (moto launched again).
    - CopyImage applies its TagSpecifications to the new image (moto ignores
      them), so a copy carries its tags from creation, as on EC2.
    """
    from moto.core.responses import ActionResult
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.instances import InstanceResponse

    from moto.ec2.exceptions import EC2ClientError

    reservations = {}
    original_run = InstanceResponse.run_instances

    def parameters(response):
        # Everything the request asked for but the token itself (and DryRun,
        # which changes nothing about what would be launched).
        return sorted(
            (name, tuple(values))
            for name, values in response.querystring.items()
            if name not in ("ClientToken", "DryRun")
        )

    def run_instances(self):
        token = self._get_param("ClientToken")
        key = (self.current_account, self.region, token)
        if token and key in reservations:
            launched, asked = reservations[key]
            if parameters(self) != asked:
                # EC2 "Ensuring idempotency": a token reused with other
                # parameters is refused, never answered with the old launch.
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    "Arguments on this idempotent request are inconsistent with "
                    "arguments used in previous request(s).",
                )
            self.error_on_dryrun()
            return ActionResult(launched)
        result = original_run(self)
        if token:
            reservations[key] = (result.result, parameters(self))
        return result

    InstanceResponse.run_instances = run_instances

    copies = {}

    def copy_image(self):
        token = self._get_param("ClientToken")
        key = (self.current_account, self.region, token)
        tags = self._parse_tag_specification().get("image", {})
        self.error_on_dryrun()
        if token and key in copies:
            return ActionResult({"ImageId": copies[key]})
        image = self.ec2_backend.copy_image(
            self._get_param("SourceImageId"),
            self._get_param("SourceRegion"),
            self._get_param("Name"),
            self._get_param("Description"),
        )
        if tags:
            self.ec2_backend.create_tags([image.id], tags)
        if token:
            copies[key] = image.id
        return ActionResult({"ImageId": image.id})

    AmisResponse.copy_image = copy_image
    LOG.info("patched moto: InstanceResponse.run_instances (ClientToken), AmisResponse.copy_image (tags, ClientToken)")


def apply_source_version_patch():
    """CreateLaunchTemplateVersion honours SourceVersion (module doc, 9)."""
    import copy

    from moto.core.responses import ActionResult
    from moto.ec2.responses import launch_templates as lt_responses

    def create_launch_template_version(self):
        name = self._get_param("LaunchTemplateName")
        tmpl_id = self._get_param("LaunchTemplateId")
        if tmpl_id:
            template = self.ec2_backend.get_launch_template(tmpl_id)
        else:
            template = self.ec2_backend.get_launch_template_by_name(name)
        version_description = self._get_param("VersionDescription")
        template_data = self._get_param("LaunchTemplateData", {})
        source = self._get_param("SourceVersion")
        if source:
            # EC2: the source's settings, each top-level one the request sets replaced.
            merged = copy.deepcopy(template.get_version(source).data)
            merged.update(template_data)
            template_data = merged
        self.error_on_dryrun()
        version = template.create_version(template_data, version_description)
        return ActionResult(
            {
                "LaunchTemplateVersion": {
                    "CreateTime": version.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersion": template.is_default(version),
                    "LaunchTemplateData": version.data,
                    "LaunchTemplateId": template.id,
                    "LaunchTemplateName": template.name,
                    "VersionDescription": version.description,
                    "VersionNumber": version.number,
                },
            }
        )

    lt_responses.LaunchTemplates.create_launch_template_version = create_launch_template_version
    LOG.info("patched moto: LaunchTemplates.create_launch_template_version (SourceVersion)")


def apply_launch_configuration_patches(page):
    """Where moto 5.2.5 launches other than EC2 from a launch template's
    volumes, tags, market and metadata options, and where it does not page
    the network reads fleetform makes (see module doc, 5 to 8)."""
    import contextvars

    from moto.core.responses import ActionResult
    from moto.ec2 import exceptions as ec2_exceptions
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses.instances import InstanceResponse
    from moto.ec2.responses.security_groups import SecurityGroups
    from moto.ec2.responses.subnets import Subnets
    from moto.ec2.utils import convert_tag_spec

    # Device name -> (Iops, Throughput) of the launch in progress, for
    # Instance.add_block_device, which moto calls without them.
    volume_extras = contextvars.ContextVar("fleetform_volume_extras", default={})
    original_backend_run = InstanceBackend.run_instances

    def backend_run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
        mappings = kwargs.get("block_device_mappings")
        if kwargs.get("launch_template"):
            template = self._get_template_from_args(kwargs["launch_template"]).data
            # 5. Volumes carry the template's volume tags from creation (moto
            # applied only the request's), the request's winning per key.
            template_tags = convert_tag_spec(template.get("TagSpecifications", []) or [])
            if template_tags.get("volume"):
                tags = dict(kwargs.get("tags") or {})
                tags["volume"] = {**template_tags["volume"], **tags.get("volume", {})}
                kwargs["tags"] = tags
            # 6. The template's market and metadata options apply to the
            # instance unless the request sets its own (moto read only the request's).
            if not kwargs.get("instance_market_options") and template.get("InstanceMarketOptions"):
                kwargs["instance_market_options"] = template["InstanceMarketOptions"]
            if not kwargs.get("metadata_options") and template.get("MetadataOptions"):
                kwargs["metadata_options"] = template["MetadataOptions"]
            if not mappings:
                mappings = template.get("BlockDeviceMappings")
        extras = {}
        for mapping in mappings or []:
            ebs = mapping.get("Ebs") or {}
            extras[mapping.get("DeviceName")] = (ebs.get("Iops"), ebs.get("Throughput"))
        reset = volume_extras.set(extras)
        try:
            return original_backend_run(self, image_id, count, user_data, security_group_names, **kwargs)
        finally:
            volume_extras.reset(reset)

    def add_block_device(self, size, device_path, snapshot_id, encrypted,
                         delete_on_termination, kms_key_id, volume_type=None):
        # 6. With the mapping's IOPS and throughput: moto dropped them, so an
        # io1/io2 volume of a template could not launch at all.
        iops, throughput = volume_extras.get().get(device_path, (None, None))
        volume = self.ec2_backend.create_volume(
            size=size,
            zone_name=self._placement.zone,
            snapshot_id=snapshot_id,
            encrypted=encrypted,
            kms_key_id=kms_key_id,
            volume_type=volume_type,
            iops=int(iops) if iops not in (None, "") else None,
            throughput=int(throughput) if throughput not in (None, "") else None,
        )
        self.ec2_backend.attach_volume(volume.id, self.id, device_path, delete_on_termination)

    original_setup_defaults = Instance.setup_defaults

    def setup_defaults(self):
        # 8. A mapping for the image's root device sizes the root volume (EC2);
        # moto made its default 8 GiB root at /dev/sda1 and then a second
        # volume at the same device.
        if self.root_device_name in volume_extras.get():
            return
        original_setup_defaults(self)

    InstanceBackend.run_instances = backend_run_instances
    Instance.add_block_device = add_block_device
    Instance.setup_defaults = setup_defaults
    assert EC2Backend.run_instances is backend_run_instances

    # 7. DescribeSubnets, DescribeSecurityGroups and
    # DescribeInstanceTypeOfferings page like EC2 (MaxResults 5..1000, a
    # NextToken whenever more remain); moto returned everything at once.
    def paged(original, operation, key, order):
        def handler(self):
            raw = self._get_param("MaxResults")
            token = self._get_param("NextToken")
            max_results = None
            if raw is not None:
                try:
                    max_results = int(raw)
                except (TypeError, ValueError):
                    max_results = None
                if max_results is None or not 5 <= max_results <= 1000:
                    raise ec2_exceptions.InvalidParameterValue(
                        f"Value ( {raw} ) for parameter maxResults is invalid. "
                        "Parameter must be between 5 and 1000."
                    )
            result = original(self)
            if max_results is None and not token:
                return result
            body = dict(result.result)
            items, next_token = page(operation, list(body[key]), order, token, max_results, 2)
            body[key] = items
            body["NextToken"] = next_token
            return ActionResult(body)
        return handler

    Subnets.describe_subnets = paged(
        Subnets.describe_subnets, "DescribeSubnets", "Subnets", lambda s: (s.id, ""))
    SecurityGroups.describe_security_groups = paged(
        SecurityGroups.describe_security_groups, "DescribeSecurityGroups", "SecurityGroups",
        lambda g: (g.id, ""))
    InstanceResponse.describe_instance_type_offerings = paged(
        InstanceResponse.describe_instance_type_offerings, "DescribeInstanceTypeOfferings",
        "InstanceTypeOfferings", lambda o: (o["Location"], o["InstanceType"]))
    assert EC2Response.describe_subnets is Subnets.describe_subnets
    assert EC2Response.describe_security_groups is SecurityGroups.describe_security_groups
    assert EC2Response.describe_instance_type_offerings is InstanceResponse.describe_instance_type_offerings
    LOG.info(
        "patched moto: InstanceBackend.run_instances (template volume tags, market and "
        "metadata options), Instance.add_block_device (IOPS, throughput), "
        "Instance.setup_defaults (a mapped root device), paging of "
        "DescribeSubnets, DescribeSecurityGroups, DescribeInstanceTypeOfferings"
    )


def apply_auto_scaling_patches(page):
    """Where moto 5.2.5's Auto Scaling differs from AWS in ways fleetform's
    groups depend on (see module doc, 9 to 16)."""
    import itertools
    import uuid
    from datetime import datetime, timezone

    from moto.autoscaling import models as asg_models
    from moto.autoscaling.exceptions import AutoscalingClientError
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult, EmptyResult

    Group = asg_models.FakeAutoScalingGroup
    Backend = asg_models.AutoScalingBackend
    ASG_NAME_TAG = asg_models.ASG_NAME_TAG

    def validation(message):
        return AutoscalingClientError("ValidationError", message)

    # 9. Desired capacity outside [MinSize, MaxSize] is refused, as on AWS
    # (moto accepted it and launched that many).
    def check_bounds(min_size, max_size, desired):
        if min_size is not None and max_size is not None and min_size > max_size:
            raise validation(
                f"Max bound, {max_size}, must be greater than or equal to min bound, {min_size}"
            )
        if desired is not None and (
            (min_size is not None and desired < min_size)
            or (max_size is not None and desired > max_size)
        ):
            raise validation(
                f"Desired capacity:{desired} must be between the specified min size:"
                f"{min_size} and max size:{max_size}"
            )

    # 10. MaxInstanceLifetime is stored and returned (moto dropped it); 0
    # clears it; AWS's bounds are enforced.
    def lifetime_param(response):
        raw = response._get_param("MaxInstanceLifetime")
        if raw is None:
            return None
        try:
            value = int(raw)
        except (TypeError, ValueError):
            value = -1
        if value != 0 and not 86400 <= value <= 31536000:
            raise validation(
                "The maximum instance lifetime must be equal to 0, or between 86400 and 31536000 seconds."
            )
        return value

    original_create = AutoScalingResponse.create_auto_scaling_group
    original_update = AutoScalingResponse.update_auto_scaling_group
    original_set_desired = AutoScalingResponse.set_desired_capacity

    def create_auto_scaling_group(self):
        name = self._get_param("AutoScalingGroupName")
        # 14. A second group of one name is AlreadyExists (moto replaced the
        # first, orphaning its instances).
        if name in self.autoscaling_backend.autoscaling_groups:
            raise AutoscalingClientError(
                "AlreadyExists", f"AutoScalingGroup by this name already exists - {name}"
            )
        check_bounds(self._get_int_param("MinSize"), self._get_int_param("MaxSize"),
                     self._get_int_param("DesiredCapacity"))
        lifetime = lifetime_param(self)
        result = original_create(self)
        group = self.autoscaling_backend.autoscaling_groups[name]
        group.max_instance_lifetime = lifetime or None
        return result

    def update_auto_scaling_group(self):
        name = self._get_param("AutoScalingGroupName")
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is not None:
            min_size = self._get_int_param("MinSize")
            max_size = self._get_int_param("MaxSize")
            check_bounds(group.min_size if min_size is None else min_size,
                         group.max_size if max_size is None else max_size,
                         self._get_int_param("DesiredCapacity"))
        lifetime = lifetime_param(self)
        result = original_update(self)
        if group is not None and lifetime is not None:
            group.max_instance_lifetime = lifetime or None
        return result

    def set_desired_capacity(self):
        group = self.autoscaling_backend.autoscaling_groups.get(
            self._get_param("AutoScalingGroupName"))
        if group is not None:
            check_bounds(group.min_size, group.max_size, self._get_int_param("DesiredCapacity"))
        return original_set_desired(self)

    AutoScalingResponse.create_auto_scaling_group = create_auto_scaling_group
    AutoScalingResponse.update_auto_scaling_group = update_auto_scaling_group
    AutoScalingResponse.set_desired_capacity = set_desired_capacity
    Group.max_instance_lifetime = None

    # 11. UpdateAutoScalingGroup without MixedInstancesPolicy keeps the
    # group's policy (moto set it to None).
    original_group_update = Group.update

    def group_update(self, *args, **kwargs):
        if (kwargs.get("mixed_instances_policy") is None
                and not kwargs.get("launch_template")
                and not kwargs.get("launch_config_name")):
            kept = self.mixed_instances_policy
            if kept:
                # moto stores the specification with both id and name, which
                # it refuses to be given back.
                kept = dict(kept)
                kept["LaunchTemplate"] = dict(kept.get("LaunchTemplate") or {})
                spec = dict(kept["LaunchTemplate"].get("LaunchTemplateSpecification") or {})
                if spec.get("LaunchTemplateId"):
                    spec.pop("LaunchTemplateName", None)
                kept["LaunchTemplate"]["LaunchTemplateSpecification"] = spec
            kwargs["mixed_instances_policy"] = kept
        return original_group_update(self, *args, **kwargs)

    Group.update = group_update

    # 12. Launches of a group with a MixedInstancesPolicy use the first
    # override: its instance type and its own launch template when it has one
    # (moto launched the template's instance type: none at all when the
    # template names none), one instance at a time into the subnet of the
    # zone with the fewest of the group's instances, ties broken by the
    # order of VPCZoneIdentifier (moto put every instance in the first
    # subnet). Instances carry the group's propagated tags and
    # aws:autoscaling:groupName; a group instance reports the template
    # version it was launched from.
    original_replace = Group.replace_autoscaling_group_instances

    def replace_instances(self, count_needed, propagated_tags):
        policy = self.mixed_instances_policy or {}
        overrides = (policy.get("LaunchTemplate") or {}).get("Overrides") or []
        template = self.ec2_launch_template
        if template is None or not overrides:
            return original_replace(self, count_needed, propagated_tags)
        first = overrides[0]
        selector = self.launch_template_version
        spec = first.get("LaunchTemplateSpecification") or {}
        if spec.get("LaunchTemplateId"):
            template = self.ec2_backend.get_launch_template(spec["LaunchTemplateId"])
            selector = spec.get("Version") or "$Default"
        elif spec.get("LaunchTemplateName"):
            template = self.ec2_backend.get_launch_template_by_name(spec["LaunchTemplateName"])
            selector = spec.get("Version") or "$Default"
        version = template.get_version(selector)
        instance_type = first.get("InstanceType") or version.instance_type
        tags = dict(propagated_tags)
        tags[ASG_NAME_TAG] = self.name
        tags.update(version.instance_tags)
        subnet_ids = [s for s in (self.vpc_zone_identifier or "").split(",") if s]
        zone_of = {}
        if subnet_ids:
            for subnet in self.ec2_backend.describe_subnets(subnet_ids=subnet_ids):
                zone_of[subnet.id] = subnet.availability_zone
        per_zone = {}
        for state in self.instance_states:
            zone = state.instance.placement.zone
            per_zone[zone] = per_zone.get(zone, 0) + 1
        for _ in range(count_needed):
            subnet_id, zone = None, None
            if subnet_ids:
                subnet_id = min(
                    subnet_ids,
                    key=lambda s: (per_zone.get(zone_of.get(s), 0), subnet_ids.index(s)))
                zone = zone_of.get(subnet_id)
            elif self.availability_zones:
                zone = min(self.availability_zones,
                           key=lambda z: (per_zone.get(z, 0), self.availability_zones.index(z)))
            reservation = self.ec2_backend.run_instances(
                version.image_id,
                1,
                version.user_data,
                version.security_groups,
                instance_type=instance_type,
                tags={"instance": dict(tags)},
                placement=zone,
                launch_template={"LaunchTemplateId": template.id, "Version": str(version.number)},
                is_instance_type_default=False,
                subnet_id=subnet_id,
            )
            for instance in reservation.instances:
                instance.autoscaling_group = self
                instance._fleetform_template = (template, version.number)
                per_zone[instance.placement.zone] = per_zone.get(instance.placement.zone, 0) + 1
                self.instance_states.append(
                    asg_models.InstanceState(
                        instance,
                        protected_from_scale_in=self.new_instances_protected_from_scale_in,
                    )
                )

    Group.replace_autoscaling_group_instances = replace_instances

    original_state_template = asg_models.InstanceState.launch_template

    def state_launch_template(self):
        launched = getattr(self.instance, "_fleetform_template", None)
        if launched is None:
            return original_state_template.fget(self)
        template, number = launched
        return {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name,
                "Version": str(number)}

    asg_models.InstanceState.launch_template = property(state_launch_template)

    # 13. StartInstanceRefresh and DescribeInstanceRefreshes (moto has
    # neither). A refresh is a record on its group: at its start it lists
    # the group's instances; every DescribeInstanceRefreshes naming the group
    # reports each refresh as it stands and then moves each refresh in
    # flight one step: one listed instance still in the group is terminated
    # and a replacement launched (the group's current template version);
    # when none is left the refresh is Successful. So a group of N
    # instances reports InProgress to N describes and Successful after.
    # A refresh of a group without instances is Successful at once. Starting
    # one while another is in flight is InstanceRefreshInProgress.
    IN_FLIGHT = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")

    def group_named(backend, name):
        group = backend.autoscaling_groups.get(name)
        if group is None:
            raise validation(f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")
        return group

    def start_instance_refresh(self):
        group = group_named(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        refreshes = group.__dict__.setdefault("_fleetform_refreshes", [])
        if any(r["Status"] in IN_FLIGHT for r in refreshes):
            raise AutoscalingClientError(
                "InstanceRefreshInProgress",
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
            )
        now = datetime.now(timezone.utc)
        remaining = [s.instance.id for s in group.instance_states]
        refresh = {
            "InstanceRefreshId": str(uuid.uuid4()),
            "AutoScalingGroupName": group.name,
            "Status": "InProgress" if remaining else "Successful",
            "StartTime": now,
            "PercentageComplete": 0 if remaining else 100,
            "InstancesToUpdate": len(remaining),
            "Preferences": self._get_param("Preferences") or {},
            "_remaining": remaining,
            "_total": len(remaining),
        }
        if not remaining:
            refresh["EndTime"] = now
        refreshes.append(refresh)
        return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})

    def step(group, refresh):
        states = {s.instance.id: s for s in group.instance_states}
        while refresh["_remaining"]:
            instance_id = refresh["_remaining"].pop(0)
            state = states.get(instance_id)
            if state is None:
                continue
            group.ec2_backend.terminate_instances([instance_id])
            group.instance_states = [s for s in group.instance_states if s is not state]
            group.set_desired_capacity(group.desired_capacity)
            break
        total = refresh["_total"] or 1
        refresh["InstancesToUpdate"] = len(refresh["_remaining"])
        refresh["PercentageComplete"] = int(100 * (total - len(refresh["_remaining"])) / total)
        if not refresh["_remaining"]:
            refresh["Status"] = "Successful"
            refresh["PercentageComplete"] = 100
            refresh["EndTime"] = datetime.now(timezone.utc)

    def describe_instance_refreshes(self):
        group = group_named(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        ids = self._get_param("InstanceRefreshIds", []) or []
        max_records = self._get_int_param("MaxRecords") or 50
        token = self._get_param("NextToken")
        refreshes = list(reversed(group.__dict__.get("_fleetform_refreshes", [])))  # newest first
        if ids:
            refreshes = [r for r in refreshes if r["InstanceRefreshId"] in ids]
        start = int(token) if token and token.isdigit() else 0
        chosen = refreshes[start:start + max_records]
        answer = [{k: v for k, v in r.items() if not k.startswith("_")} for r in chosen]
        next_token = str(start + max_records) if len(refreshes) > start + max_records else None
        for refresh in group.__dict__.get("_fleetform_refreshes", []):
            if refresh["Status"] in IN_FLIGHT:
                step(group, refresh)
        return ActionResult({"InstanceRefreshes": answer, "NextToken": next_token})

    AutoScalingResponse.start_instance_refresh = start_instance_refresh
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes

    # 15. DetachInstances of an instance that is not in the group is a
    # ValidationError, as on AWS (moto ignored it and still lowered the
    # desired capacity by one for it).
    original_detach = Backend.detach_instances

    def detach_instances(self, group_name, instance_ids, should_decrement):
        group = group_named(self, group_name)
        members = {s.instance.id for s in group.instance_states}
        for instance_id in instance_ids:
            if instance_id not in members:
                raise validation(
                    f"The instance {instance_id} is not part of Auto Scaling group {group_name}.")
        return original_detach(self, group_name, instance_ids, should_decrement)

    Backend.detach_instances = detach_instances

    # 16. DescribeAutoScalingGroups pages with an opaque token that survives
    # deletions (moto's token was the last group's name: a group deleted
    # between pages made the next page an HTTP 500), in creation order;
    # MaxRecords 1..100 (default 50), otherwise ValidationError (moto: 500).
    from moto.ec2.exceptions import EC2ClientError

    group_seq = itertools.count(1)
    original_group_init = Group.__init__

    def group_init(self, *args, **kwargs):
        original_group_init(self, *args, **kwargs)
        self._fleetform_seq = next(group_seq)

    Group.__init__ = group_init

    def describe_auto_scaling_groups(self):
        raw = self._get_param("MaxRecords")
        try:
            max_records = 50 if raw is None else int(raw)
        except (TypeError, ValueError):
            max_records = 0
        if not 1 <= max_records <= 100:
            raise validation(
                f"1 validation error detected: Value '{raw}' at 'maxRecords' failed to satisfy "
                "constraint: Member must have value between 1 and 100")
        groups = self.autoscaling_backend.describe_auto_scaling_groups(
            self._get_param("AutoScalingGroupNames", []), filters=self._get_param("Filters", []))
        token = self._get_param("NextToken")
        try:
            groups, next_token = page(
                "DescribeAutoScalingGroups", groups,
                lambda g: (getattr(g, "_fleetform_seq", 0), g.name), token, max_records, 2)
        except EC2ClientError:
            raise AutoscalingClientError("InvalidNextToken", f"The token '{token}' is invalid.")
        return ActionResult({"AutoScalingGroups": groups, "NextToken": next_token})

    AutoScalingResponse.describe_auto_scaling_groups = describe_auto_scaling_groups
    assert AutoScalingResponse.describe_instance_refreshes is describe_instance_refreshes
    LOG.info(
        "patched moto: Auto Scaling desired-capacity bounds, MaxInstanceLifetime, "
        "UpdateAutoScalingGroup keeping its policy, launches by override and zone, "
        "Start/DescribeInstanceRefreshes, AlreadyExists, DetachInstances of non-members, "
        "DescribeAutoScalingGroups paging"
    )


class SerializedApp:
    """WSGI middleware: one request at a time through moto (see module doc).

    The request body is read before taking the lock, and the response is
    read in full before releasing it, so a slow client cannot hold the lock.
    """

    def __init__(self, app, latency=0.0):
        self.app = app
        self.lock = threading.Lock()
        self.latency = latency

    def __call__(self, environ, start_response):
        length = environ.get("CONTENT_LENGTH")
        if length:
            try:
                size = int(length)
            except ValueError:
                size = -1
            if size >= 0:
                environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(size))
        if self.latency > 0:
            # Outside the lock: concurrent requests wait side by side, as they
            # do on EC2, where a call's time is network and service latency,
            # not a share of one interpreter.
            time.sleep(self.latency)
        with self.lock:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]


# --------------------------------------------------------------------- server
def process_gone(pid, watch_ppid):
    """True when `pid` no longer exists (a zombie counts as gone)."""
    if watch_ppid and os.getppid() != pid:
        return True  # we were re-parented: our parent exited
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state == "Z"
    except (OSError, IndexError):
        return False


def warm_up(url):
    """Makes one EC2, one STS and one Auto Scaling request so moto builds those apps before the
    port is announced; the first request of a test is then not the slow one."""
    requests = [
        ("ec2", "Action=DescribeRegions&Version=2016-11-15", b"DescribeRegionsResponse"),
        ("sts", "Action=GetCallerIdentity&Version=2011-06-15", b"GetCallerIdentityResponse"),
        ("autoscaling", "Action=DescribeAutoScalingGroups&Version=2011-01-01",
         b"DescribeAutoScalingGroupsResponse"),
    ]
    for service, body, expect in requests:
        req = urllib.request.Request(
            url + "/",
            data=body.encode(),
            method="POST",
            headers={
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/"
                f"us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0",
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            },
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = resp.read()
        if expect not in data:
            raise RuntimeError(f"unexpected {service} warm-up answer: {data[:300]!r}")


def write_atomically(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Stop(Exception):
    pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--port-file", help="write the port here once the server answers")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    parser.add_argument("--no-patch", action="store_true", help="serve plain, unpatched moto")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="added to every request, outside the request lock, to emulate "
                             "EC2's round trip for benchmarks of parallelism (default 0)")
    args = parser.parse_args(argv)

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s moto_launcher[%(process)d] %(message)s",
    )
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def on_signal(signum, _frame):
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # Checked before the (slow) moto import too: a parent that died during
    # start-up must not leave us running.
    watch_ppid = args.parent_pid is not None and args.parent_pid == os.getppid()
    if args.parent_pid is not None and process_gone(args.parent_pid, watch_ppid):
        LOG.info("parent %d is gone; not starting", args.parent_pid)
        return 0

    # moto reads these when its modules load; no real AWS call can happen.
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)

    import moto
    from moto.moto_server import werkzeug_app
    from werkzeug.serving import make_server

    LOG.info("moto %s (%s)", moto.__version__, "unpatched" if args.no_patch else "patched")
    if not args.no_patch:
        page = apply_patches()
        apply_idempotency_patches()
        apply_launch_configuration_patches(page)
        apply_auto_scaling_patches(page)
        apply_source_version_patch()

    app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
    if not args.no_patch:
        app = SerializedApp(app, latency=max(args.latency_ms, 0.0) / 1000.0)
    server_kwargs = {}
    handler = getattr(werkzeug_app, "MotoRequestHandler", None)
    if handler is not None:
        server_kwargs["request_handler"] = handler
    server = make_server(args.host, args.port, app, threaded=True, **server_kwargs)
    port = server.server_address[1]
    os.environ["MOTO_PORT"] = str(port)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="moto-server", daemon=True
    )
    thread.start()
    url = f"http://{args.host}:{port}"
    try:
        warm_up(url)
        if args.port_file:
            write_atomically(args.port_file, f"{port}\n")
        LOG.info("listening on %s", url)
        while True:
            time.sleep(1.0)
            if args.parent_pid is not None and process_gone(args.parent_pid, watch_ppid):
                LOG.info("parent %d is gone; exiting", args.parent_pid)
                break
            if not thread.is_alive():
                LOG.error("server thread died; exiting")
                return 1
    except Stop as stop:
        LOG.info("%s; exiting", stop)
    finally:
        server.shutdown()
        server.server_close()
        if args.port_file:
            try:
                with open(args.port_file) as f:
                    ours = f.read().strip() == str(port)
                if ours:
                    os.remove(args.port_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown (slow with moto loaded): stopping is prompt.
    os._exit(code)
