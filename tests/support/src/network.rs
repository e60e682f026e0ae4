//! A network on the local endpoint's EC2, made through its API as a user's
//! account would have it: a VPC, one subnet in each of three availability
//! zones of a region, and security groups of the three trust levels real CI
//! pools use (untrusted, trusted, windows). fleetform only reads networks;
//! tests make the ones they name.

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::Client;

/// The trust levels a network's security groups stand for, in the order of
/// [`TestNetwork::security_groups`].
pub const TRUST_LEVELS: [&str; 3] = ["untrusted", "trusted", "windows"];

/// A VPC with three subnets and three security groups in one region.
#[derive(Debug, Clone)]
pub struct TestNetwork {
    /// The region it is in.
    pub region: String,
    /// `vpc-...` id.
    pub vpc_id: String,
    /// (availability zone, subnet id), one per zone, zones in name order.
    pub subnets: Vec<(String, String)>,
    /// (trust level, security group id), in the order of [`TRUST_LEVELS`].
    pub security_groups: Vec<(String, String)>,
    client: Client,
}

/// An EC2 client of the local endpoint ([`crate::endpoint`]) in `region`,
/// with dummy credentials, not counted by any provider.
pub fn ec2_client(region: &str) -> Client {
    let config = aws_sdk_ec2::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(crate::endpoint())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    Client::from_conf(config)
}

impl TestNetwork {
    /// Makes the network in `region`, its objects named after `prefix`.
    ///
    /// # Panics
    /// When the endpoint refuses or the region has fewer than three zones: a
    /// test cannot go on.
    pub async fn create(region: &str, prefix: &str) -> TestNetwork {
        let client = ec2_client(region);
        let zones = client
            .describe_availability_zones()
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe zones of {region}: {e:?}"));
        let mut zones: Vec<String> = zones
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        zones.sort();
        assert!(zones.len() >= 3, "{region} has zones {zones:?}, 3 needed");
        let vpc_id = client
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap_or_else(|e| panic!("create VPC in {region}: {e:?}"))
            .vpc()
            .and_then(|v| v.vpc_id())
            .unwrap_or_else(|| panic!("no VPC id from {region}"))
            .to_string();
        let mut subnets = Vec::new();
        for (n, zone) in zones.iter().take(3).enumerate() {
            let subnet = client
                .create_subnet()
                .vpc_id(&vpc_id)
                .availability_zone(zone)
                .cidr_block(format!("10.0.{n}.0/24"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("create subnet in {zone}: {e:?}"));
            let id = subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .unwrap_or_else(|| panic!("no subnet id in {zone}"))
                .to_string();
            subnets.push((zone.clone(), id));
        }
        let mut security_groups = Vec::new();
        for level in TRUST_LEVELS {
            let group = client
                .create_security_group()
                .vpc_id(&vpc_id)
                .group_name(format!("{prefix}-{level}"))
                .description(format!("{level} workers of {prefix}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("create security group {level}: {e:?}"));
            let id = group
                .group_id()
                .unwrap_or_else(|| panic!("no group id for {level}"))
                .to_string();
            security_groups.push((level.to_string(), id));
        }
        TestNetwork {
            region: region.to_string(),
            vpc_id,
            subnets,
            security_groups,
            client,
        }
    }

    /// [`TestNetwork::create`] for tests without a runtime of their own (or
    /// inside one: it runs on a thread of its own).
    ///
    /// # Panics
    /// As [`TestNetwork::create`].
    pub fn create_blocking(region: &str, prefix: &str) -> TestNetwork {
        let (region, prefix) = (region.to_string(), prefix.to_string());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(TestNetwork::create(&region, &prefix))
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// The subnet ids, zones in name order.
    pub fn subnet_ids(&self) -> Vec<String> {
        self.subnets.iter().map(|(_, id)| id.clone()).collect()
    }

    /// The subnet id in `zone`, if the network has one there.
    pub fn subnet_in(&self, zone: &str) -> Option<&str> {
        self.subnets
            .iter()
            .find(|(z, _)| z == zone)
            .map(|(_, id)| id.as_str())
    }

    /// The id of the security group of a trust level (`untrusted`, `trusted`, `windows`).
    pub fn group(&self, level: &str) -> Option<&str> {
        self.security_groups
            .iter()
            .find(|(l, _)| l == level)
            .map(|(_, id)| id.as_str())
    }

    /// The client the network was made with, for changes behind fleetform's
    /// back (e.g. deleting a subnet).
    pub fn ec2(&self) -> &Client {
        &self.client
    }
}
