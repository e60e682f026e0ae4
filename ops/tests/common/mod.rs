//! What the ops test binaries share: a small fleet and an empty EC2.

use fleetform_engine::provider::{Observation, Observed, RegionObservation};
use fleetform_engine::{Inputs, Loaded};
use std::collections::BTreeMap;

/// EC2 read completely in us-east-1, holding nothing of the fleet.
pub fn empty_observation() -> Observation {
    Observation {
        regions: BTreeMap::from([(
            "us-east-1".to_string(),
            RegionObservation {
                key_pairs: Observed::Complete { items: Vec::new() },
                images: Observed::Complete { items: Vec::new() },
                launch_templates: Observed::Complete { items: Vec::new() },
                instances: Observed::Complete { items: Vec::new() },
                subnets: Observed::nothing(),
                security_groups: Observed::nothing(),
                offerings: Observed::nothing(),
                auto_scaling_groups: Observed::nothing(),
                adoptable: Observed::nothing(),
            },
        )]),
        api_calls: 0,
    }
}

/// A fleet of one worker type that launches nothing, loaded from `dir`.
pub fn fleet(dir: &std::path::Path) -> Loaded {
    std::fs::write(
        dir.join("fleet.hcl"),
        r#"fleet "ops-test" {
  account_id = "123456789012"
  regions    = ["us-east-1"]
}

key_pair "workers" {
  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEm4t1QbPzCEOY3vN7Jz1oa9kFjC8m9sR0W0kq4d9Q1a ops@test"
}

ami_set "ubuntu" {
  images = {
    "us-east-1" = "ami-785db401"
  }
}

worker_type "linux" {
  ami_set  = ami_set.ubuntu
  key_pair = key_pair.workers

  instance_type "t3.medium" { capacity = 1 }

  capacity {
    min = 0
    max = 0
  }
}
"#,
    )
    .unwrap();
    let loaded = fleetform_engine::load_dir(dir, &Inputs::default());
    assert!(
        loaded.config.is_some() && !loaded.has_errors(),
        "the test fleet loads: {:?}",
        loaded.diagnostics
    );
    loaded
}
