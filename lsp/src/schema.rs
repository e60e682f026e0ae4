//! The shape of the language for completion: which attributes and nested
//! blocks each block takes, and the values of the enumerated attributes.
//!
//! The engine checks attributes against lists written inline in its decoder
//! (private, and being extended); until it exposes them, this table follows
//! the language as README.md documents it. Values the engine does list publicly (volume
//! types) come from there.

/// Block types allowed at the top level of a file.
pub(crate) const TOP_LEVEL: &[&str] = &[
    "fleet",
    "variable",
    "locals",
    "key_pair",
    "ami_set",
    "network",
    "worker_type",
    "backend",
];

/// Attributes and nested blocks of a block, by its type.
pub(crate) fn block(ident: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    let (attributes, blocks): (&[&str], &[&str]) = match ident {
        "fleet" => (
            &[
                "account_id",
                "regions",
                "rollback_window",
                "consistency_grace",
            ],
            &["budget", "limits", "rollout"],
        ),
        "budget" => (&["max_hourly_usd"], &[]),
        "limits" => (&["max_launches", "max_terminations", "max_deletions"], &[]),
        "rollout" => (&["canary_regions"], &[]),
        "variable" => (
            &["default", "description", "sensitive", "type"],
            &["validation"],
        ),
        "validation" => (&["condition", "error_message"], &[]),
        "key_pair" => (&["public_key", "name", "ec2_name", "for_each"], &[]),
        "ami_set" => (
            &[
                "virtualization",
                "architecture",
                "images",
                "retain",
                "copy_to",
                "for_each",
            ],
            &["lookup", "source"],
        ),
        "lookup" => (&["name", "owners"], &[]),
        "source" => (&["region", "image", "copy_to"], &[]),
        "network" => (
            &[
                "subnets",
                "security_groups",
                "exclude",
                "assign_public_ip",
                "for_each",
            ],
            &[],
        ),
        "worker_type" => (
            &[
                "ami_set",
                "key_pair",
                "network",
                "regions",
                "market",
                "scaling",
                "max_lifetime",
                "user_data",
                "tags",
                "iam_instance_profile",
                "name",
                "ec2_name",
                "for_each",
            ],
            &[
                "instance_type",
                "capacity",
                "rollout",
                "root_volume",
                "volume",
                "spot",
                "metadata",
                "instance_refresh",
                "dynamic",
            ],
        ),
        "instance_type" => (&["capacity", "regions", "user_data"], &["volume"]),
        "capacity" => (&["min", "max", "scope"], &[]),
        "root_volume" | "volume" => (&["size_gb", "type", "iops", "throughput", "encrypted"], &[]),
        "spot" => (&["max_price"], &[]),
        "metadata" => (&["http_tokens", "hop_limit"], &[]),
        "instance_refresh" => (&["min_healthy_percentage"], &[]),
        "dynamic" => (&["for_each", "labels"], &["content"]),
        "backend" => (&["path", "bucket", "key", "region"], &[]),
        _ => return None,
    };
    Some((attributes, blocks))
}

/// The values an enumerated attribute takes, given the block it is in.
pub(crate) fn values(block: Option<&str>, attribute: &str) -> Vec<&'static str> {
    match (block, attribute) {
        (_, "market") => vec!["spot", "on-demand"],
        (_, "virtualization") => vec!["hvm", "pv"],
        (_, "architecture") => vec!["x86_64", "arm64"],
        (_, "scaling") => vec!["direct", "asg"],
        (Some("capacity"), "scope") => vec!["region", "worker_type"],
        (_, "http_tokens") => vec!["required", "optional"],
        (Some("volume" | "root_volume"), "type") => fleetform_engine::model::VolumeType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect(),
        _ => Vec::new(),
    }
}
