"""Creates, on a local EC2 endpoint, the networks scripts/gen-fleet --networks
names (a VPC per region, a subnet in each of its zones a, b and c, a security
group per level and region) and prints their ids as the JSON --network-ids reads.

  python bench_networks.py ENDPOINT_URL REGION[,REGION...]

Run with the local endpoint's Python (scripts/dev-ec2 python), which has boto3.
"""
import json
import sys

import boto3

LEVELS = ["untrusted", "trusted", "windows"]


def main():
    url, regions = sys.argv[1], [r for r in sys.argv[2].split(",") if r]
    ids = {"subnets": {}, "security_groups": {level: {} for level in LEVELS}}
    for region in regions:
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=url,
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        for index, letter in enumerate("abc"):
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{index}.0/24",
                                       AvailabilityZone=f"{region}{letter}")["Subnet"]["SubnetId"]
            ids["subnets"][f"{region}{letter}"] = subnet
        for level in LEVELS:
            group = ec2.create_security_group(GroupName=f"bench-{level}", Description=level,
                                              VpcId=vpc)["GroupId"]
            ids["security_groups"][level][region] = [group]
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
