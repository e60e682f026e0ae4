#!/usr/bin/env python3
"""Self-test of scripts/moto_launcher.py. Run with the dev-ec2 virtualenv:

    "$(scripts/dev-ec2 python)" scripts/moto_launcher_test.py

Starts the launcher (patched) and the launcher with --no-patch on free ports
of 127.0.0.1 and checks, with boto3, that the patched server pages launch
templates and launch template versions like EC2 does, that the unpatched one
visibly truncates (so the patch matters), a few other EC2 behaviours fleetform
relies on, and that --parent-pid stops the server. Every wait is bounded.
Prints `N passed, M failed`; exits 1 on any failure. Arguments, if any,
run only the tests whose name contains one of them (`... asg_`).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "moto_launcher.py")
REGION = "us-east-1"
START_TIMEOUT = 60  # s; first start imports moto (a few seconds on a cold cache)
MAX_PAGES = 100  # bound on any paging loop
TEMPLATES = 40
AMI = "ami-12c6146b"  # one of moto's default AMIs

for _name, _value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
    ("AWS_DEFAULT_REGION", REGION),
):
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)


class Launcher:
    """A launcher process on a free port; stopped by stop() (and, as a
    safety net, when this test process exits, through --parent-pid)."""

    def __init__(self, name, extra=(), parent_pid=None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"moto-launcher-test-{name}-")
        self.port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "w")
        parent = os.getpid() if parent_pid is None else parent_pid
        cmd = [
            sys.executable, LAUNCHER, "--host", "127.0.0.1", "--port", "0",
            "--port-file", self.port_file, "--parent-pid", str(parent), "--quiet",
            *extra,
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.endpoint = None

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name}: launcher exited ({self.proc.returncode}) during start-up:\n{self.log_tail()}")
            try:
                with open(self.port_file) as f:
                    port = int(f.read().strip())
                self.endpoint = f"http://127.0.0.1:{port}"
                return self.endpoint
            except (OSError, ValueError):
                time.sleep(0.1)
        raise AssertionError(f"{self.name}: no port file after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines=30):
        self.log.flush()
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])

    def client(self, service="ec2", validate=True):
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30,
                          parameter_validation=validate),
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------ helpers
def error_code(call):
    try:
        call()
    except ClientError as err:
        return err.response["Error"]["Code"]
    return None


def collect(call, key, **kwargs):
    """Follows NextToken; returns (items, page sizes, pages with a token)."""
    items, sizes, tokens = [], [], []
    token = None
    for _ in range(MAX_PAGES):
        args = dict(kwargs)
        if token:
            args["NextToken"] = token
        resp = call(**args)
        items.extend(resp[key])
        sizes.append(len(resp[key]))
        token = resp.get("NextToken")
        tokens.append(bool(token))
        if not token:
            return items, sizes, tokens
    raise AssertionError(f"more than {MAX_PAGES} pages")


def create_templates(ec2, count=TEMPLATES, prefix="fleet-wt"):
    names = []
    for i in range(count):
        name = f"{prefix}-{i:03d}"
        ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
            TagSpecifications=[{
                "ResourceType": "launch-template",
                "Tags": [{"Key": "fleetform:fleet", "Value": f"f{i % 2}"}],
            }],
        )
        names.append(name)
    return names


def templates_paged_fully(ec2, names):
    """Check (a): DescribeLaunchTemplates with MaxResults=15 yields all
    templates, with a NextToken on every page but the last."""
    items, sizes, tokens = collect(ec2.describe_launch_templates, "LaunchTemplates", MaxResults=15)
    got = [t["LaunchTemplateName"] for t in items]
    problems = []
    if sorted(got) != sorted(names):
        problems.append(f"got {len(got)} templates ({len(set(got))} distinct), want {len(names)}")
    if tokens != [True] * (len(tokens) - 1) + [False]:
        problems.append(f"NextToken per page: {tokens}")
    if any(size > 15 for size in sizes):
        problems.append(f"page sizes {sizes} exceed MaxResults")
    return problems, sizes


def default_versions_paged_fully(ec2, names):
    """Check (b): DescribeLaunchTemplateVersions, Versions=[$Default], no
    template given, yields the default version of every template."""
    items, sizes, tokens = collect(
        ec2.describe_launch_template_versions, "LaunchTemplateVersions",
        Versions=["$Default"], MaxResults=15,
    )
    got = [v["LaunchTemplateName"] for v in items]
    problems = []
    if sorted(got) != sorted(names):
        problems.append(f"got {len(got)} versions ({len(set(got))} templates), want {len(names)}")
    if not all(v["DefaultVersion"] for v in items):
        problems.append("a returned version is not the default")
    if tokens != [True] * (len(tokens) - 1) + [False]:
        problems.append(f"NextToken per page: {tokens}")
    return problems, sizes


# ------------------------------------------------------------------ tests
class Suite:
    def __init__(self):
        self.patched = None
        self.plain = None
        self.names = []
        self.plain_names = []

    def setup(self):
        self.patched = Launcher("patched")
        self.plain = Launcher("unpatched", extra=["--no-patch"])
        self.patched.wait_ready()
        self.plain.wait_ready()
        self.ec2 = self.patched.client()
        self.plain_ec2 = self.plain.client()
        self.names = create_templates(self.ec2)
        self.plain_names = create_templates(self.plain_ec2)

    def teardown(self):
        for launcher in (self.patched, self.plain):
            if launcher is not None:
                launcher.stop()

    # (a)
    def test_describe_launch_templates_pages_all(self):
        problems, sizes = templates_paged_fully(self.ec2, self.names)
        assert not problems, "; ".join(problems)
        assert sizes == [15, 15, 10], sizes

    # (b)
    def test_default_versions_of_all_templates_page_all(self):
        problems, sizes = default_versions_paged_fully(self.ec2, self.names)
        assert not problems, "; ".join(problems)
        assert sizes == [15, 15, 10], sizes

    # (c)
    def test_unpatched_moto_truncates_templates(self):
        problems, sizes = templates_paged_fully(self.plain_ec2, self.plain_names)
        assert problems, "unpatched moto paged DescribeLaunchTemplates correctly; is the patch still needed?"
        assert sizes == [15], f"expected one truncated page of 15, got {sizes}"

    # (c)
    def test_unpatched_moto_truncates_default_versions(self):
        problems, sizes = default_versions_paged_fully(self.plain_ec2, self.plain_names)
        assert problems, "unpatched moto paged DescribeLaunchTemplateVersions correctly; is the patch still needed?"
        assert sizes == [15], f"expected one truncated page of 15, got {sizes}"

    def test_run_instances_client_token_is_idempotent(self):
        def twice(ec2):
            token = f"tok-{time.monotonic_ns()}"
            a = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken=token)
            b = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken=token)
            return a["Instances"][0]["InstanceId"], b["Instances"][0]["InstanceId"]
        first, again = twice(self.ec2)
        assert first == again, f"a repeated ClientToken launched again: {first} then {again}"
        first, again = twice(self.plain_ec2)
        assert first != again, "unpatched moto honours ClientToken now; is the patch still needed?"

    def test_copy_image_applies_its_tags(self):
        # Not the fleetform:fleet key: test_describe_images_filters counts every image carrying it.
        spec = [{"ResourceType": "image", "Tags": [{"Key": "purpose", "Value": "launcher-copy-test"}]}]
        def copy_tags(ec2):
            image = ec2.copy_image(SourceImageId=AMI, SourceRegion="us-east-1", Name="copy", TagSpecifications=spec)
            described = ec2.describe_images(ImageIds=[image["ImageId"]])["Images"][0]
            return {t["Key"]: t["Value"] for t in described.get("Tags", [])}
        assert copy_tags(self.ec2).get("purpose") == "launcher-copy-test"
        assert "purpose" not in copy_tags(self.plain_ec2), "unpatched moto tags copies now; is the patch still needed?"

    def test_no_max_results_returns_everything(self):
        resp = self.ec2.describe_launch_templates()
        got = [t["LaunchTemplateName"] for t in resp["LaunchTemplates"]]
        assert set(self.names) <= set(got) and not resp.get("NextToken"), (len(got), resp.get("NextToken"))
        resp = self.ec2.describe_launch_template_versions(Versions=["$Default"])
        got = [v["LaunchTemplateName"] for v in resp["LaunchTemplateVersions"]]
        assert set(self.names) <= set(got) and not resp.get("NextToken"), (len(got), resp.get("NextToken"))

    def test_default_and_latest_versions(self):
        ec2 = self.ec2
        prefix = "dl-wt"
        names = create_templates(ec2, 5, prefix)
        # dl-wt-000: v2 latest, v1 default. dl-wt-001: v2 latest and default.
        for name in names[:2]:
            ec2.create_launch_template_version(
                LaunchTemplateName=name, LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.small"})
        ec2.modify_launch_template(LaunchTemplateName=names[1], DefaultVersion="2")

        def versions(selectors):
            items, _, _ = collect(ec2.describe_launch_template_versions, "LaunchTemplateVersions",
                                  Versions=selectors, MaxResults=7)
            return sorted((v["LaunchTemplateName"], v["VersionNumber"]) for v in items
                          if v["LaunchTemplateName"].startswith(prefix))

        assert versions(["$Default"]) == [(names[0], 1), (names[1], 2)] + [(n, 1) for n in names[2:]]
        assert versions(["$Latest"]) == [(names[0], 2), (names[1], 2)] + [(n, 1) for n in names[2:]]
        both = versions(["$Default", "$Latest"])
        assert both == [(names[0], 1), (names[0], 2), (names[1], 2)] + [(n, 1) for n in names[2:]], both

    def test_versions_of_one_template_page(self):
        ec2 = self.ec2
        ec2.create_launch_template(LaunchTemplateName="many-versions", LaunchTemplateData={"ImageId": AMI})
        for _ in range(4):
            ec2.create_launch_template_version(LaunchTemplateName="many-versions",
                                               LaunchTemplateData={"ImageId": AMI})
        items, sizes, _ = collect(ec2.describe_launch_template_versions, "LaunchTemplateVersions",
                                  LaunchTemplateName="many-versions", MaxResults=2)
        assert [v["VersionNumber"] for v in items] == [1, 2, 3, 4, 5] and sizes == [2, 2, 1], (items, sizes)
        resp = ec2.describe_launch_template_versions(LaunchTemplateName="many-versions",
                                                     Versions=["$Latest", "1", "$Default"])
        assert [v["VersionNumber"] for v in resp["LaunchTemplateVersions"]] == [1, 5]

    def test_bad_arguments_are_rejected(self):
        ec2 = self.patched.client(validate=False)  # let the server see them
        assert error_code(lambda: ec2.describe_launch_templates(MaxResults=0)) == "InvalidParameterValue"
        assert error_code(lambda: ec2.describe_launch_templates(MaxResults=201)) == "InvalidParameterValue"
        assert error_code(lambda: ec2.describe_launch_templates(MaxResults=200)) is None
        assert error_code(lambda: ec2.describe_launch_templates(NextToken="garbage")) == "InvalidPaginationToken"
        first = ec2.describe_launch_templates(MaxResults=1)["NextToken"]
        assert error_code(lambda: ec2.describe_launch_template_versions(
            Versions=["$Default"], NextToken=first)) == "InvalidPaginationToken"
        assert error_code(lambda: ec2.describe_launch_template_versions(
            Versions=["$Latest", "2"])) == "InvalidParameterValue"
        assert error_code(lambda: ec2.describe_launch_template_versions(
            LaunchTemplateName=self.names[0], Versions=["0"])) == "InvalidLaunchTemplateId.VersionNotFound"

    def test_paging_is_stable_across_changes(self):
        ec2 = self.ec2
        prefix = "stable-wt"
        names = create_templates(ec2, 12, prefix)
        filters = [{"Name": "launch-template-name", "Values": [f"{prefix}-*"]}]
        first = ec2.describe_launch_templates(Filters=filters, MaxResults=5)
        seen = [t["LaunchTemplateName"] for t in first["LaunchTemplates"]]
        # Delete the last template returned and add a new one, then go on.
        ec2.delete_launch_template(LaunchTemplateName=seen[-1])
        create_templates(ec2, 1, f"{prefix}-new")
        rest, _, _ = collect(ec2.describe_launch_templates, "LaunchTemplates",
                             Filters=filters, MaxResults=5, NextToken=first["NextToken"])
        seen += [t["LaunchTemplateName"] for t in rest]
        assert seen == names + [f"{prefix}-new-000"], seen

    def test_tag_filter_and_live_tags(self):
        ec2 = self.ec2
        items, _, _ = collect(ec2.describe_launch_templates, "LaunchTemplates",
                              Filters=[{"Name": "tag:fleetform:fleet", "Values": ["f0"]}], MaxResults=7)
        got = sorted(t["LaunchTemplateName"] for t in items if t["LaunchTemplateName"] in self.names)
        assert got == self.names[0::2], got
        template = ec2.describe_launch_templates(LaunchTemplateNames=[self.names[1]])["LaunchTemplates"][0]
        ec2.create_tags(Resources=[template["LaunchTemplateId"]], Tags=[{"Key": "extra", "Value": "yes"}])
        template = ec2.describe_launch_templates(LaunchTemplateNames=[self.names[1]])["LaunchTemplates"][0]
        tags = {t["Key"]: t["Value"] for t in template["Tags"]}
        assert tags == {"fleetform:fleet": "f1", "extra": "yes"}, tags

    def test_concurrent_creates_yield_one_template(self):
        results = []

        def create():
            client = self.patched.client()
            code = error_code(lambda: client.create_launch_template(
                LaunchTemplateName="race-wt", LaunchTemplateData={"ImageId": AMI}))
            results.append(code)

        threads = [threading.Thread(target=create) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(results) == 12, f"{len(results)} of 12 calls finished"
        assert results.count(None) == 1, results
        resp = self.ec2.describe_launch_templates(
            Filters=[{"Name": "launch-template-name", "Values": ["race-wt"]}])
        assert len(resp["LaunchTemplates"]) == 1

    def test_describe_instances_pages(self):
        ec2 = self.ec2
        ids = []
        for _ in range(7):
            resp = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                     TagSpecifications=[{"ResourceType": "instance",
                                                         "Tags": [{"Key": "fleetform:fleet", "Value": "paging"}]}])
            ids.append(resp["Instances"][0]["InstanceId"])
        items, sizes, tokens = collect(
            ec2.describe_instances, "Reservations", MaxResults=5,
            Filters=[{"Name": "tag:fleetform:fleet", "Values": ["paging"]}])
        got = sorted(i["InstanceId"] for r in items for i in r["Instances"])
        assert got == sorted(ids), got
        assert sizes == [5, 2] and tokens == [True, False], (sizes, tokens)

    def test_describe_images_filters(self):
        ec2 = self.ec2
        instance = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        images = {}
        for fleet in ("alpha", "beta"):
            image = ec2.create_image(InstanceId=instance, Name=f"fleetform-{fleet}")["ImageId"]
            ec2.create_tags(Resources=[image], Tags=[{"Key": "fleetform:fleet", "Value": fleet}])
            images[fleet] = image
        resp = ec2.describe_images(Filters=[{"Name": "tag:fleetform:fleet", "Values": ["alpha"]}])
        assert [i["ImageId"] for i in resp["Images"]] == [images["alpha"]], resp["Images"]
        resp = ec2.describe_images(Filters=[{"Name": "tag:fleetform:fleet", "Values": ["*"]}],
                                   Owners=["self"])
        assert sorted(i["ImageId"] for i in resp["Images"]) == sorted(images.values())
        resp = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [images["beta"]]}])
        assert [i["ImageId"] for i in resp["Images"]] == [images["beta"]]
        tags = {t["Key"]: t["Value"] for t in resp["Images"][0].get("Tags", [])}
        assert tags == {"fleetform:fleet": "beta"}, tags
        resp = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [images["beta"]]},
                                            {"Name": "tag:fleetform:fleet", "Values": ["alpha"]}])
        assert resp["Images"] == []

    # ----------------------------------------------- launch configuration
    def network(self, ec2, cidr, subnets=1, groups=1):
        """A VPC with `subnets` subnets in us-east-1a.. and `groups` groups."""
        vpc = ec2.create_vpc(CidrBlock=f"{cidr}.0.0/16")["Vpc"]["VpcId"]
        zones = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"]
        subnet_ids = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr}.{n}.0/24",
                              AvailabilityZone=zones[n % len(zones)])["Subnet"]["SubnetId"]
            for n in range(subnets)
        ]
        group_ids = [
            ec2.create_security_group(GroupName=f"g{cidr}-{n}", Description="test", VpcId=vpc)["GroupId"]
            for n in range(groups)
        ]
        return subnet_ids, group_ids

    def launch_from(self, ec2, name, data, **run):
        template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
        template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        resp = ec2.run_instances(LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
                                 MinCount=1, MaxCount=1, **run)
        return resp["Instances"][0]

    def volumes_of(self, ec2, instance_id):
        return ec2.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]

    def test_template_volume_tags_tag_the_volumes_at_launch(self):
        data = {
            "ImageId": AMI,
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvdb",
                                     "Ebs": {"VolumeSize": 20, "VolumeType": "gp3", "DeleteOnTermination": True}}],
            "TagSpecifications": [{"ResourceType": "volume",
                                   "Tags": [{"Key": "fleetform:fleet", "Value": "volumes"}]}],
        }
        def tagged(ec2, name):
            instance = self.launch_from(ec2, name, data, TagSpecifications=[
                {"ResourceType": "volume", "Tags": [{"Key": "request", "Value": "yes"}]}])
            volumes = self.volumes_of(ec2, instance["InstanceId"])
            return [{t["Key"]: t["Value"] for t in v.get("Tags", [])} for v in volumes]
        volumes = tagged(self.ec2, "volume-tags")
        assert len(volumes) == 2, volumes  # moto's default root and /dev/xvdb
        assert all(v == {"fleetform:fleet": "volumes", "request": "yes"} for v in volumes), volumes
        plain = tagged(self.plain_ec2, "volume-tags")
        assert all("fleetform:fleet" not in v for v in plain), \
            f"unpatched moto tags volumes from the template now ({plain}); is the patch still needed?"

    def test_a_reused_client_token_with_other_parameters_is_a_mismatch(self):
        def again(ec2):
            token = f"mismatch-{time.monotonic_ns()}"
            first = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.large",
                                      ClientToken=token)["Instances"][0]["InstanceId"]
            same = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.large",
                                     ClientToken=token)["Instances"][0]["InstanceId"]
            other = error_code(lambda: ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1,
                                                         InstanceType="c5.large", ClientToken=token))
            return first, same, other
        first, same, other = again(self.ec2)
        assert first == same, (first, same)
        assert other == "IdempotentParameterMismatch", other
        _, _, other = again(self.plain_ec2)
        assert other is None, "unpatched moto refuses a mismatched token now; is the patch still needed?"

    def test_template_market_metadata_and_iops_apply_to_the_launch(self):
        data = {
            "ImageId": AMI,
            "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": "0.5"}},
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvdb",
                                     "Ebs": {"VolumeSize": 20, "VolumeType": "io1", "Iops": 500,
                                             "DeleteOnTermination": True}}],
        }
        instance = self.launch_from(self.ec2, "market-metadata", data)
        assert instance.get("InstanceLifecycle") == "spot", instance.get("InstanceLifecycle")
        options = instance["MetadataOptions"]
        assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("required", 2), options
        io1 = [v for v in self.volumes_of(self.ec2, instance["InstanceId"]) if v["VolumeType"] == "io1"]
        assert [v.get("Iops") for v in io1] == [500], io1
        code = error_code(lambda: self.launch_from(self.plain_ec2, "market-metadata", data))
        assert code == "InvalidParameterDependency", \
            f"unpatched moto launches a template's io1 volume now ({code}); is the patch still needed?"
        del data["BlockDeviceMappings"]
        plain = self.launch_from(self.plain_ec2, "market-metadata-2", data)
        assert plain.get("InstanceLifecycle") != "spot" and plain["MetadataOptions"]["HttpTokens"] == "optional", \
            "unpatched moto applies the template's market and metadata options now; is the patch still needed?"

    def test_a_mapped_root_device_sizes_the_root_volume(self):
        root = self.ec2.describe_images(ImageIds=[AMI])["Images"][0]["RootDeviceName"]
        data = {"ImageId": AMI, "BlockDeviceMappings": [
            {"DeviceName": root, "Ebs": {"VolumeSize": 60, "VolumeType": "gp3", "DeleteOnTermination": True}}]}
        def at_root(ec2, name):
            instance = self.launch_from(ec2, name, data)
            return sorted((v["Size"], v["VolumeType"]) for v in self.volumes_of(ec2, instance["InstanceId"])
                          if any(a["Device"] == root for a in v["Attachments"]))
        assert at_root(self.ec2, "root-volume") == [(60, "gp3")], at_root(self.ec2, "root-volume-2")
        plain = at_root(self.plain_ec2, "root-volume")
        assert plain != [(60, "gp3")], \
            f"unpatched moto sizes the root from the mapping now ({plain}); is the patch still needed?"

    def test_network_reads_page(self):
        def pages(ec2, cidr):
            subnets, groups = self.network(ec2, cidr, subnets=7, groups=7)
            found = {}
            for name, call, key, flt, ids in (
                ("subnets", ec2.describe_subnets, "Subnets", "subnet-id", subnets),
                ("groups", ec2.describe_security_groups, "SecurityGroups", "group-id", groups),
            ):
                items, sizes, _ = collect(call, key, MaxResults=5,
                                          Filters=[{"Name": flt, "Values": ids + ["subnet-0000", "sg-0000"]}])
                found[name] = (len(items), sizes)
            items, sizes, _ = collect(ec2.describe_instance_type_offerings, "InstanceTypeOfferings",
                                      MaxResults=5, LocationType="availability-zone",
                                      Filters=[{"Name": "instance-type", "Values": ["m5.large", "c5.large"]}])
            pairs = {(o["InstanceType"], o["Location"]) for o in items}
            found["offerings"] = (len(items), len(pairs), sizes)
            return found
        found = pages(self.ec2, "10.31")
        assert found["subnets"] == (7, [5, 2]), found
        assert found["groups"] == (7, [5, 2]), found
        count, distinct, sizes = found["offerings"]
        assert count == distinct > 5 and all(s <= 5 for s in sizes), found
        plain = pages(self.plain_ec2, "10.31")
        assert plain["subnets"][1] == [7] and len(plain["offerings"][2]) == 1, \
            f"unpatched moto pages the network reads now ({plain}); is the patch still needed?"
        ec2 = self.patched.client(validate=False)
        assert error_code(lambda: ec2.describe_subnets(MaxResults=4)) == "InvalidParameterValue"

    def test_launch_template_data_is_echoed_and_subnet_filters_skip_missing_ids(self):
        # Checked, not patched: what fleetform's read-back relies on.
        subnets, groups = self.network(self.ec2, "10.32", subnets=1, groups=1)
        data = {
            "ImageId": AMI,
            "InstanceType": "m5.large",
            "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": groups, "AssociatePublicIpAddress": False}],
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvdb", "Ebs": {
                "VolumeSize": 20, "VolumeType": "gp3", "Iops": 4000, "Throughput": 200,
                "Encrypted": True, "DeleteOnTermination": True}}],
            "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": "0.68"}},
            "IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:instance-profile/w"},
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "i", "Value": "1"}]},
                                  {"ResourceType": "volume", "Tags": [{"Key": "v", "Value": "2"}]}],
        }
        self.ec2.create_launch_template(LaunchTemplateName="echo", LaunchTemplateData=data)
        echoed = self.ec2.describe_launch_template_versions(
            LaunchTemplateName="echo", Versions=["$Default"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        for key, value in data.items():
            assert echoed.get(key) == value, (key, echoed.get(key), value)
        found = self.ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": subnets + ["subnet-0123456789abcdef0"]}])
        assert [s["SubnetId"] for s in found["Subnets"]] == subnets, found["Subnets"]
        code = error_code(lambda: self.ec2.run_instances(
            ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=subnets[0],
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnets[0]}]))
        assert code == "InvalidParameterCombination", code

    # ------------------------------------------------------- Auto Scaling
    def asg_fixture(self, ec2, name, cidr, subnets=3, instance_type=None, template=None, **group):
        """A launch template without an instance type, `subnets` subnets in
        distinct zones, and a group over them with a MixedInstancesPolicy of
        two overrides (m5.large weight 1 first); returns (asg client, group
        name, template id, subnet ids)."""
        subnet_ids, _ = self.network(ec2, cidr, subnets=subnets, groups=0)
        data = {"ImageId": AMI}
        if instance_type:
            data["InstanceType"] = instance_type
        template = ec2.create_launch_template(LaunchTemplateName=template or f"asg-{name}", LaunchTemplateData=data)
        template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        launcher = self.patched if ec2 is self.ec2 else self.plain
        asg = launcher.client("autoscaling")
        args = dict(
            AutoScalingGroupName=name, MinSize=0, MaxSize=6, DesiredCapacity=0,
            VPCZoneIdentifier=",".join(subnet_ids),
            MixedInstancesPolicy={
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": "$Default"},
                    "Overrides": [{"InstanceType": "m5.large", "WeightedCapacity": "1"},
                                  {"InstanceType": "m5.xlarge", "WeightedCapacity": "2"}],
                },
                "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 100},
            },
            Tags=[{"Key": "fleetform:fleet", "Value": f"asg-{name}", "PropagateAtLaunch": True}],
        )
        args.update(group)
        asg.create_auto_scaling_group(**args)
        return asg, name, template_id, subnet_ids

    def group_of(self, asg, name):
        return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]

    # 9
    def test_asg_desired_capacity_outside_the_bounds_is_refused(self):
        def outside(ec2, cidr, other):
            asg, name, _, _ = self.asg_fixture(ec2, f"bounds-{cidr}", cidr, subnets=1)
            codes = [
                error_code(lambda: asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=7)),
                error_code(lambda: asg.update_auto_scaling_group(
                    AutoScalingGroupName=name, MaxSize=2, DesiredCapacity=3)),
                error_code(lambda: asg.update_auto_scaling_group(
                    AutoScalingGroupName=name, MinSize=1, DesiredCapacity=0)),
            ]
            created = error_code(lambda: self.asg_fixture(ec2, f"bounds-c-{cidr}", other, subnets=1,
                                                          MaxSize=2, DesiredCapacity=3))
            return codes + [created], len(self.group_of(asg, name)["Instances"])
        codes, count = outside(self.ec2, "10.40", "10.50")
        assert codes == ["ValidationError"] * 4 and count == 0, (codes, count)
        plain, count = outside(self.plain_ec2, "10.40", "10.50")
        assert None in plain, f"unpatched moto refuses a desired capacity outside the bounds now ({plain}); is the patch still needed?"

    # 10
    def test_asg_max_instance_lifetime_is_kept(self):
        def lifetime(ec2, cidr):
            asg, name, _, _ = self.asg_fixture(ec2, f"lifetime-{cidr}", cidr, subnets=1,
                                               MaxInstanceLifetime=345600)
            created = self.group_of(asg, name).get("MaxInstanceLifetime")
            asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=5)
            kept = self.group_of(asg, name).get("MaxInstanceLifetime")
            asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxInstanceLifetime=86400)
            changed = self.group_of(asg, name).get("MaxInstanceLifetime")
            asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxInstanceLifetime=0)
            cleared = self.group_of(asg, name).get("MaxInstanceLifetime")
            return created, kept, changed, cleared
        got = lifetime(self.ec2, "10.41")
        assert got == (345600, 345600, 86400, None), got
        plain = lifetime(self.plain_ec2, "10.41")
        assert plain[0] is None, f"unpatched moto keeps MaxInstanceLifetime now ({plain}); is the patch still needed?"

    # 11
    def test_asg_update_without_a_policy_keeps_the_policy(self):
        def policy_after(ec2, cidr):
            asg, name, template_id, _ = self.asg_fixture(ec2, f"keep-{cidr}", cidr, subnets=1)
            asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=4)
            return self.group_of(asg, name).get("MixedInstancesPolicy"), template_id
        policy, template_id = policy_after(self.ec2, "10.42")
        assert policy, "the policy was erased"
        spec = policy["LaunchTemplate"]["LaunchTemplateSpecification"]
        assert spec["LaunchTemplateId"] == template_id and spec["Version"] == "$Default", spec
        assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == ["m5.large", "m5.xlarge"], policy
        plain, _ = policy_after(self.plain_ec2, "10.42")
        assert not plain, f"unpatched moto keeps the policy now ({plain}); is the patch still needed?"

    # 12
    def test_asg_launches_the_override_type_spread_over_the_zones_with_the_group_tags(self):
        def launched(ec2, cidr):
            asg, name, template_id, subnets = self.asg_fixture(ec2, f"spread-{cidr}", cidr, subnets=3)
            asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=4)
            ids = [i["InstanceId"] for i in self.group_of(asg, name)["Instances"]]
            reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
            instances = [i for r in reservations for i in r["Instances"]]
            return name, subnets, instances, self.group_of(asg, name)["Instances"]
        name, subnets, instances, members = launched(self.ec2, "10.43")
        assert len(instances) == 4, instances
        assert {i["InstanceType"] for i in instances} == {"m5.large"}, [i["InstanceType"] for i in instances]
        per_subnet = sorted(sum(1 for i in instances if i["SubnetId"] == s) for s in subnets)
        assert per_subnet == [1, 1, 2], per_subnet
        for instance in instances:
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            assert tags.get("aws:autoscaling:groupName") == name and tags.get("fleetform:fleet") == f"asg-{name}", tags
        assert all(m["LaunchTemplate"]["Version"] == "1" for m in members), members
        _, plain_subnets, plain, _ = launched(self.plain_ec2, "10.43")
        types = {i.get("InstanceType") for i in plain}
        used = {i.get("SubnetId") for i in plain}
        assert types != {"m5.large"} and len(used) == 1, \
            f"unpatched moto launches the overrides' types across zones now ({types}, {used}); is the patch still needed?"

    # 13
    def test_asg_instance_refreshes_run_and_block_a_second_one(self):
        asg, name, _, _ = self.asg_fixture(self.ec2, "refresh", "10.44", subnets=2, DesiredCapacity=2)
        before = {i["InstanceId"] for i in self.group_of(asg, name)["Instances"]}
        first = asg.start_instance_refresh(AutoScalingGroupName=name,
                                           Preferences={"MinHealthyPercentage": 90})["InstanceRefreshId"]
        again = error_code(lambda: asg.start_instance_refresh(AutoScalingGroupName=name))
        assert again == "InstanceRefreshInProgress", again
        statuses = []
        for _ in range(4):
            refreshes = asg.describe_instance_refreshes(AutoScalingGroupName=name, MaxRecords=1)["InstanceRefreshes"]
            statuses.append((refreshes[0]["InstanceRefreshId"], refreshes[0]["Status"]))
        assert statuses == [(first, "InProgress")] * 2 + [(first, "Successful")] * 2, statuses
        after = {i["InstanceId"] for i in self.group_of(asg, name)["Instances"]}
        assert len(after) == 2 and not after & before, (before, after)
        second = asg.start_instance_refresh(AutoScalingGroupName=name)["InstanceRefreshId"]
        newest = asg.describe_instance_refreshes(AutoScalingGroupName=name, MaxRecords=1)["InstanceRefreshes"]
        assert second != first and newest[0]["InstanceRefreshId"] == second, (first, second, newest)
        plain = self.plain.client("autoscaling")
        try:
            plain.describe_instance_refreshes(AutoScalingGroupName=name)
            missing = False
        except Exception:  # moto answers an action it lacks with a bare 500 page
            missing = True
        assert missing, "unpatched moto has instance refreshes now; is the patch still needed?"

    # 14, 15
    def test_asg_a_second_create_is_already_exists_and_detaching_a_stranger_is_refused(self):
        def both(ec2, cidr, other):
            asg, name, _, _ = self.asg_fixture(ec2, f"twice-{cidr}", cidr, subnets=1, DesiredCapacity=1)
            again = error_code(lambda: self.asg_fixture(ec2, name, other, subnets=1, template=f"again-{name}"))
            stranger = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
            detach = error_code(lambda: asg.detach_instances(
                AutoScalingGroupName=name, InstanceIds=[stranger], ShouldDecrementDesiredCapacity=True))
            return again, detach, self.group_of(asg, name)["DesiredCapacity"]
        got = both(self.ec2, "10.45", "10.55")
        assert got == ("AlreadyExists", "ValidationError", 1), got
        plain = both(self.plain_ec2, "10.45", "10.55")
        assert plain[0] is None and plain[1] is None, \
            f"unpatched moto refuses a second create or a stranger's detach now ({plain}); is the patch still needed?"

    # 16
    def test_asg_paging_survives_a_deletion_and_bounds_max_records(self):
        def pages(launcher, ec2, cidr):
            asg = launcher.client("autoscaling")
            subnets, _ = self.network(ec2, cidr, subnets=1, groups=0)
            template = ec2.create_launch_template(LaunchTemplateName=f"asg-deleted-{cidr}",
                                                  LaunchTemplateData={"ImageId": AMI})
            template_id = template["LaunchTemplate"]["LaunchTemplateId"]
            names = [f"deleted-{cidr}-{n}" for n in range(5)]
            for name in names:
                asg.create_auto_scaling_group(
                    AutoScalingGroupName=name, MinSize=0, MaxSize=1, VPCZoneIdentifier=subnets[0],
                    LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Default"},
                    Tags=[{"Key": "fleetform:fleet", "Value": f"deleted-{cidr}", "PropagateAtLaunch": True}])
            flt = [{"Name": "tag:fleetform:fleet", "Values": [f"deleted-{cidr}"]}]
            first = asg.describe_auto_scaling_groups(MaxRecords=2, Filters=flt)
            seen = [g["AutoScalingGroupName"] for g in first["AutoScalingGroups"]]
            asg.delete_auto_scaling_group(AutoScalingGroupName=seen[-1], ForceDelete=True)
            try:
                rest, _, _ = collect(asg.describe_auto_scaling_groups, "AutoScalingGroups", MaxRecords=2,
                                     Filters=flt, NextToken=first["NextToken"])
                seen += [g["AutoScalingGroupName"] for g in rest]
            except Exception as err:  # moto answers with a bare HTTP 500
                return None, type(err).__name__
            big = error_code(lambda: launcher.client("autoscaling", validate=False)
                             .describe_auto_scaling_groups(MaxRecords=101))
            return seen, big
        seen, big = pages(self.patched, self.ec2, "10.47")
        assert seen == [f"deleted-10.47-{n}" for n in range(5)], seen
        assert big == "ValidationError", big
        plain, _ = pages(self.plain, self.plain_ec2, "10.47")
        assert plain is None, f"unpatched moto pages past a deleted group now ({plain}); is the patch still needed?"

    def test_asg_describe_filters_by_tag_and_pages(self):
        # Checked, not patched: Filters tag:KEY and NextToken/MaxRecords.
        asg = self.patched.client("autoscaling")
        subnets, _ = self.network(self.ec2, "10.46", subnets=1, groups=0)
        template = self.ec2.create_launch_template(LaunchTemplateName="asg-paging", LaunchTemplateData={"ImageId": AMI})
        template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        for n in range(5):
            asg.create_auto_scaling_group(
                AutoScalingGroupName=f"paging-{n}", MinSize=0, MaxSize=1, VPCZoneIdentifier=subnets[0],
                LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Default"},
                Tags=[{"Key": "fleetform:fleet", "Value": "paging" if n < 4 else "other", "PropagateAtLaunch": True}])
        items, sizes, tokens = collect(asg.describe_auto_scaling_groups, "AutoScalingGroups", MaxRecords=3,
                                       Filters=[{"Name": "tag:fleetform:fleet", "Values": ["paging"]}])
        assert sorted(g["AutoScalingGroupName"] for g in items) == [f"paging-{n}" for n in range(4)], items
        assert sizes == [3, 1] and tokens == [True, False], (sizes, tokens)

    def test_a_version_from_a_source_version_keeps_its_settings(self):
        def tag_only_version(ec2):
            name = f"source-{time.monotonic_ns()}"
            t = ec2.create_launch_template(
                LaunchTemplateName=name,
                LaunchTemplateData={
                    "ImageId": AMI,
                    "InstanceType": "t3.micro",
                    "UserData": "ZWNobyBoaQ==",
                    "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "ci"}]}],
                },
            )["LaunchTemplate"]
            made = ec2.create_launch_template_version(
                LaunchTemplateId=t["LaunchTemplateId"],
                SourceVersion="1",
                LaunchTemplateData={
                    "TagSpecifications": [{"ResourceType": "instance", "Tags": [
                        {"Key": "team", "Value": "ci"}, {"Key": "fleetform:fleet", "Value": "f"}]}],
                },
            )["LaunchTemplateVersion"]
            data = ec2.describe_launch_template_versions(
                LaunchTemplateId=t["LaunchTemplateId"], Versions=[str(made["VersionNumber"])]
            )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
            return data
        data = tag_only_version(self.ec2)
        assert data.get("ImageId") == AMI and data.get("InstanceType") == "t3.micro", data
        assert data.get("UserData") == "ZWNobyBoaQ==", data
        tags = {t["Key"]: t["Value"] for spec in data["TagSpecifications"] for t in spec["Tags"]}
        assert tags == {"team": "ci", "fleetform:fleet": "f"}, tags
        plain = tag_only_version(self.plain_ec2)
        assert "ImageId" not in plain, f"unpatched moto honoured SourceVersion; is the patch still needed? {plain}"

    def test_sts_answers(self):
        arn = self.patched.client("sts").get_caller_identity()["Arn"]
        assert arn.startswith("arn:aws:"), arn

    # (d)
    def test_parent_pid_exit(self):
        parent = subprocess.Popen(["sleep", "120"])
        launcher = Launcher("parent-pid", parent_pid=parent.pid)
        try:
            launcher.wait_ready()
            time.sleep(1.5)  # more than one poll: it must stay while the parent lives
            assert launcher.proc.poll() is None, "launcher exited while its parent was alive"
            parent.kill()
            parent.wait(timeout=5)  # reap it, as its real parent would
            start = time.monotonic()
            while launcher.proc.poll() is None and time.monotonic() - start < 5:
                time.sleep(0.1)
            elapsed = time.monotonic() - start
            assert launcher.proc.poll() is not None, f"launcher still running 5 s after its parent died:\n{launcher.log_tail()}"
            assert launcher.proc.returncode == 0, launcher.proc.returncode
            assert not os.path.exists(launcher.port_file), "port file left behind"
            print(f"    launcher exited {elapsed:.1f} s after its parent")
        finally:
            if parent.poll() is None:
                parent.kill()
                parent.wait(timeout=5)
            launcher.stop()


def main():
    suite = Suite()
    tests = [getattr(suite, name) for name in dir(Suite) if name.startswith("test_")]
    order = [
        "test_describe_launch_templates_pages_all",
        "test_default_versions_of_all_templates_page_all",
        "test_unpatched_moto_truncates_templates",
        "test_unpatched_moto_truncates_default_versions",
    ]
    tests.sort(key=lambda t: (order.index(t.__name__) if t.__name__ in order else len(order), t.__name__))
    if len(sys.argv) > 1:  # only the tests whose name contains one of the arguments
        tests = [t for t in tests if any(word in t.__name__ for word in sys.argv[1:])]
    passed = failed = 0
    try:
        suite.setup()
    except Exception:
        traceback.print_exc()
        suite.teardown()
        print(f"0 passed, {len(tests)} failed (setup failed)")
        return 1
    try:
        for test in tests:
            start = time.monotonic()
            try:
                test()
            except Exception as err:
                failed += 1
                print(f"FAIL {test.__name__}: {type(err).__name__}: {err}")
                traceback.print_exc(limit=3, file=sys.stdout)
            else:
                passed += 1
                print(f"ok   {test.__name__} ({time.monotonic() - start:.1f} s)")
            sys.stdout.flush()
    finally:
        suite.teardown()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
