#!/usr/bin/env python3
"""Turn `fleetform output --json` into Taskcluster worker pool definitions.

Reads the output document on stdin and prints, on stdout, one JSON document:

    {"workerPools": [POOL, ...], "skipped": [{"workerPoolId": ..., "reason": ...}, ...]}

Each worker type with `scaling = "direct"` becomes one worker pool for the
Taskcluster AWS provider named by --provider-id:

    {"workerPoolId": <the worker type's id>, "providerId": ..., "description": ...,
     "owner": ..., "emailOnError": false,
     "config": {"minCapacity": N, "maxCapacity": N,
                "launchConfigs": [{"region": ..., "capacityPerInstance": <weight>,
                                   "launchConfig": {"LaunchTemplate": {"LaunchTemplateId": ...,
                                                                       "Version": ...},
                                                    "SubnetId": ..., "InstanceType": ...}}]}}

with one launch config per region, subnet and instance type (an instance type
launches from its own template when it has one; a zone the network excludes it
from is left out; without a network there is no SubnetId and EC2 picks). The
template version is the default version fleetform recorded, or "$Default".

Worker types with `scaling = "asg"` are listed under "skipped": an Auto
Scaling group launches their instances, not a provisioner. So is a region no
apply has made the launch template of yet.

Standard library only. Example:

    fleetform output --json infra/ | python3 taskcluster_pools.py --provider-id aws > pools.json
"""

import argparse
import json
import sys

FORMAT_VERSION = "1"


def fail(message):
    print(f"taskcluster_pools: {message}", file=sys.stderr)
    sys.exit(1)


def template_ref(template):
    version = template.get("default_version")
    return {
        "LaunchTemplateId": template["id"],
        "Version": "$Default" if version is None else str(version),
    }


def bounds(worker_type):
    """The pool's capacity: the worker type's own over all regions, or the sum of its regions'."""
    capacity = worker_type["capacity"]
    if capacity["scope"] == "worker_type":
        return capacity["min"], capacity["max"]
    regions = worker_type["regions"]
    return (
        sum(r["min"] or 0 for r in regions),
        sum(r["max"] or 0 for r in regions),
    )


def pool(worker_type, args, skipped):
    launch_configs = []
    for region in worker_type["regions"]:
        if region["launch_template"] is None:
            skipped.append(
                {
                    "workerPoolId": worker_type["id"],
                    "region": region["region"],
                    "reason": "no launch template recorded in this region yet: run fleetform apply",
                }
            )
            continue
        subnets = region["subnets"] or [None]
        for subnet in subnets:
            for it in region["instance_types"]:
                if subnet is not None and subnet["zone"] in it["excluded_zones"]:
                    continue
                template = it["launch_template"]
                if template is None:
                    skipped.append(
                        {
                            "workerPoolId": worker_type["id"],
                            "region": region["region"],
                            "instanceType": it["instance_type"],
                            "reason": "its own launch template is not recorded yet: run fleetform apply",
                        }
                    )
                    continue
                launch_config = {"LaunchTemplate": template_ref(template)}
                if subnet is not None:
                    launch_config["SubnetId"] = subnet["subnet_id"]
                launch_config["InstanceType"] = it["instance_type"]
                launch_configs.append(
                    {
                        "region": region["region"],
                        "capacityPerInstance": it["weight"],
                        "launchConfig": launch_config,
                    }
                )
    min_capacity, max_capacity = bounds(worker_type)
    return {
        "workerPoolId": worker_type["id"],
        "providerId": args.provider_id,
        "description": args.description
        or f"{worker_type['address']} of fleet {args.fleet}, from fleetform output",
        "owner": args.owner,
        "emailOnError": False,
        "config": {
            "minCapacity": min_capacity,
            "maxCapacity": max_capacity,
            "launchConfigs": launch_configs,
        },
    }


def main():
    parser = argparse.ArgumentParser(
        description="Turn `fleetform output --json` (on stdin) into Taskcluster worker pool "
        "definitions (on stdout). One pool per worker type with direct scaling; worker types "
        "with scaling = \"asg\" are listed as skipped, since an Auto Scaling group launches "
        "their instances.",
    )
    parser.add_argument("--provider-id", required=True, help="the Taskcluster AWS provider's id")
    parser.add_argument("--owner", default="", help="the pools' owner (an email address)")
    parser.add_argument("--description", default="", help="the pools' description")
    args = parser.parse_args()
    try:
        output = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        fail(f"stdin is not JSON ({e}); pipe `fleetform output --json` into it")
    if not isinstance(output, dict) or output.get("format_version") != FORMAT_VERSION:
        fail(
            f"expected the output of `fleetform output --json` with format_version "
            f"\"{FORMAT_VERSION}\", got {output.get('format_version') if isinstance(output, dict) else 'another document'!r}"
        )
    args.fleet = output["fleet"]
    pools, skipped = [], []
    for worker_type in output["worker_types"]:
        if worker_type["scaling"] == "asg":
            skipped.append(
                {
                    "workerPoolId": worker_type["id"],
                    "reason": "scaling = \"asg\": its Auto Scaling groups launch its instances",
                }
            )
            continue
        pools.append(pool(worker_type, args, skipped))
    json.dump({"workerPools": pools, "skipped": skipped}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
