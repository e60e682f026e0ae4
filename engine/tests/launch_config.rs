//! Launch configurations in the language: `network` blocks, volumes, spot and
//! metadata options, instance profiles, per-instance-type regions, user data
//! and volumes, and `region` evaluated per region. Each is decoded into the
//! model, and each mistake is a diagnostic with its code, its place (file,
//! line, column) and help. Pure engine: nothing here talks to a cloud.

use fleetform_engine::diagnostic::Severity;
use fleetform_engine::model::{HttpTokens, Market, Metadata, VolumeType};
use fleetform_engine::{load_dir, Inputs, Loaded};
use std::path::Path;
use tempfile::TempDir;

/// A fleet using every part of the launch configuration.
const FLEET: &str = r#"fleet "test" {
  regions = ["us-east-1", "us-west-2"]
}

ami_set "linux" {
  images = {
    "us-east-1" = "ami-785db401"
    "us-west-2" = "ami-785db402"
  }
}

network "untrusted" {
  subnets = {
    "us-east-1a" = "subnet-0123456789abcdef0"
    "us-east-1b" = "subnet-0fedcba9876543210"
    "us-west-2a" = "subnet-00000000000000001"
  }
  security_groups = {
    "us-east-1" = ["sg-0123456789abcdef0"]
    "us-west-2" = ["sg-0fedcba9876543210", "sg-12345678"]
  }
  exclude = {
    "us-east-1b" = ["c5d", "c5.4xlarge"]
  }
  assign_public_ip = false
}

worker_type "gecko" {
  ami_set              = ami_set.linux
  network              = network.untrusted
  iam_instance_profile = "arn:aws:iam::123456789012:instance-profile/gecko-${region}"
  market               = "spot"
  user_data            = templatefile("w.sh", { group = region })
  tags                 = { group = "${region}-workers" }
  root_volume {
    size_gb    = 60
    type       = "gp3"
    iops       = 4000
    throughput = 250
    encrypted  = true
  }
  volume "/dev/xvdb" {
    size_gb = 120
    type    = "gp3"
  }
  instance_type "c5.4xlarge" {
    capacity = 1
    volume "/dev/xvdb" {
      size_gb = 200
      type    = "gp3"
    }
    volume "/dev/xvdc" {
      size_gb = 500
      type    = "st1"
    }
  }
  instance_type "c5d.4xlarge" {
    capacity  = 2
    regions   = ["us-east-1"]
    user_data = "capacity=2 ${region}"
  }
  capacity {
    max = 10
  }
  spot {
    max_price = 0.68
  }
  metadata {
    http_tokens = "optional"
    hop_limit   = 2
  }
}
"#;

/// A worker type that uses none of it.
const PLAIN: &str = r#"
worker_type "plain" {
  ami_set   = ami_set.linux
  user_data = "static"
  tags      = { team = "ci" }
  instance_type "m5.large" { capacity = 1 }
  capacity {
    max = 2
  }
}
"#;

fn config(text: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fleet.hcl"), text).expect("write");
    std::fs::write(dir.path().join("w.sh"), "group=${group}\n").expect("write");
    dir
}

fn load(dir: &Path) -> Loaded {
    load_dir(dir, &Inputs::default())
}

fn codes(loaded: &Loaded) -> Vec<&'static str> {
    loaded.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Where the `n`th (0-based) occurrence of `needle` starts, plus `skip` bytes.
fn position(text: &str, needle: &str, n: usize, skip: usize) -> (usize, usize) {
    let offset = text
        .match_indices(needle)
        .nth(n)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("`{needle}` #{n} is not in the text"));
    line_col(text, offset + skip)
}

/// The one diagnostic of a load, with its file, line and column.
fn only(loaded: &Loaded) -> (fleetform_engine::diagnostic::JsonDiagnostic, Severity) {
    assert_eq!(
        loaded.diagnostics.len(),
        1,
        "expected one diagnostic: {:#?}",
        loaded.diagnostics
    );
    let d = &loaded.diagnostics[0];
    (d.to_json(&loaded.sources), d.severity)
}

#[test]
fn every_new_block_and_attribute_decodes_into_the_model() {
    let dir = config(&format!("{FLEET}{PLAIN}"));
    let loaded = load(dir.path());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let config = loaded.config.expect("valid");

    let network = &config.networks["untrusted"];
    assert_eq!(network.subnets.len(), 3);
    assert_eq!(network.subnets["us-east-1b"], "subnet-0fedcba9876543210");
    assert_eq!(
        network.security_groups["us-west-2"],
        vec![
            "sg-0fedcba9876543210".to_string(),
            "sg-12345678".to_string()
        ]
    );
    assert_eq!(
        network.exclude["us-east-1b"],
        vec!["c5d".to_string(), "c5.4xlarge".to_string()]
    );
    assert_eq!(network.assign_public_ip, Some(false));
    for key in [
        "subnets.us-east-1a",
        "subnets.us-west-2a",
        "security_groups.us-east-1",
        "exclude.us-east-1b",
        "assign_public_ip",
    ] {
        assert!(network.origin.attributes.contains_key(key), "{key}");
    }

    let wt = &config.worker_types["gecko"];
    assert_eq!(wt.network.as_deref(), Some("untrusted"));
    assert_eq!(wt.market, Market::Spot);
    let root = wt.root_volume.as_ref().expect("root volume");
    assert_eq!(
        (root.size_gb, root.volume_type, root.iops, root.throughput),
        (60, VolumeType::Gp3, Some(4000), Some(250))
    );
    assert_eq!(root.encrypted, Some(true));
    assert_eq!(wt.volumes["/dev/xvdb"].size_gb, 120);
    assert_eq!(
        wt.spot.as_ref().and_then(|s| s.max_price.as_deref()),
        Some("0.68")
    );
    assert_eq!(
        wt.metadata,
        Metadata {
            http_tokens: HttpTokens::Optional,
            hop_limit: 2
        }
    );
    let c5 = &wt.instance_types[0];
    assert_eq!(c5.volumes["/dev/xvdb"].size_gb, 200);
    assert_eq!(c5.volumes["/dev/xvdc"].volume_type, VolumeType::St1);
    let merged = wt.volumes_of(c5);
    assert_eq!(merged.len(), 2);
    assert_eq!(merged["/dev/xvdb"].size_gb, 200, "the instance type's wins");
    let c5d = &wt.instance_types[1];
    assert_eq!(c5d.regions.as_deref(), Some(&["us-east-1".to_string()][..]));
    assert!(c5d.used_in("us-east-1") && !c5d.used_in("us-west-2"));
    assert_eq!(wt.volumes_of(c5d).len(), 1, "inherits the worker type's");
    for key in [
        "network",
        "iam_instance_profile",
        "root_volume",
        "root_volume.size_gb",
        "root_volume.iops",
        "volume./dev/xvdb",
        "volume./dev/xvdb.size_gb",
        "spot",
        "spot.max_price",
        "metadata.hop_limit",
        "instance_type.c5.4xlarge.volume./dev/xvdb",
        "instance_type.c5.4xlarge.volume./dev/xvdc.type",
        "instance_type.c5d.4xlarge.regions",
        "instance_type.c5d.4xlarge.user_data",
    ] {
        assert!(wt.origin.attributes.contains_key(key), "{key}");
    }

    // Nothing new is set: the defaults, and no per-region values.
    let plain = &config.worker_types["plain"];
    assert!(plain.regional.is_empty());
    assert_eq!(plain.metadata, Metadata::default());
    assert_eq!(plain.metadata.http_tokens, HttpTokens::Required);
    assert_eq!(plain.metadata.hop_limit, 1);
    assert!(plain.network.is_none() && plain.spot.is_none() && plain.root_volume.is_none());
    assert_eq!(plain.user_data_in("us-west-2"), Some("static"));
    assert_eq!(plain.tags_in("us-east-1")["team"], "ci");
}

#[test]
fn region_is_evaluated_once_per_region_of_the_worker_type() {
    let dir = config(FLEET);
    let config = load(dir.path()).config.expect("valid");
    let wt = &config.worker_types["gecko"];
    assert_eq!(
        wt.regional.keys().collect::<Vec<_>>(),
        ["us-east-1", "us-west-2"]
    );
    assert_eq!(wt.user_data_in("us-east-1"), Some("group=us-east-1\n"));
    assert_eq!(wt.user_data_in("us-west-2"), Some("group=us-west-2\n"));
    assert_eq!(wt.tags_in("us-west-2")["group"], "us-west-2-workers");
    assert_eq!(
        wt.iam_instance_profile_in("us-west-2"),
        Some("arn:aws:iam::123456789012:instance-profile/gecko-us-west-2")
    );
    // The base value is the first region's, so "is it set" still holds.
    assert_eq!(wt.user_data.as_deref(), Some("group=us-east-1\n"));
    let c5d = &wt.instance_types[1];
    assert_eq!(
        wt.instance_user_data_in(c5d, "us-east-1"),
        Some("capacity=2 us-east-1")
    );
    // Only in the regions the instance type is used in.
    assert!(wt.regional["us-west-2"].instance_user_data.is_empty());
    // Its own user data gives it a template of its own; c5.4xlarge has one
    // for its volumes.
    assert!(wt.has_own_template(c5d, "us-east-1"));
    assert!(wt.has_own_template(&wt.instance_types[0], "us-west-2"));
}

#[test]
fn a_sensitive_instance_type_user_data_is_marked_and_allowed_only_there() {
    let text = FLEET.replace(
        "user_data = \"capacity=2 ${region}\"",
        "user_data = \"token=${var.token}\"",
    );
    let text = format!("variable \"token\" {{\n  sensitive = true\n}}\n{text}");
    let dir = config(&text);
    let inputs = Inputs {
        vars: vec!["token=s3cr3t".into()],
        ..Inputs::default()
    };
    let loaded = load_dir(dir.path(), &inputs);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let model = loaded.config.expect("valid");
    let wt = &model.worker_types["gecko"];
    assert!(wt.instance_types[1].user_data_sensitive);
    assert!(wt.instance_user_data_sensitive(&wt.instance_types[1]));
    assert!(!wt.user_data_sensitive);
    assert!(!wt.instance_user_data_sensitive(&wt.instance_types[0]));
    // Masking reaches the sensitive instance type's data, and nothing else.
    assert!(wt.has_sensitive_user_data());
    let mut masked = wt.clone();
    masked.map_sensitive_user_data(|_| "(masked)".to_string());
    assert_eq!(
        masked.instance_types[1].user_data.as_deref(),
        Some("(masked)")
    );
    assert_eq!(masked.user_data_in("us-west-2"), Some("group=us-west-2\n"));
    let json = serde_json::to_string(&masked).expect("json");
    assert!(!json.contains("s3cr3t"), "{json}");

    // Anywhere else a secret is refused, without showing it.
    let bad = text.replace(
        "iam_instance_profile = \"arn:aws:iam::123456789012:instance-profile/gecko-${region}\"",
        "iam_instance_profile = var.token",
    );
    let dir = config(&bad);
    let loaded = load_dir(dir.path(), &inputs);
    let (d, _) = only(&loaded);
    assert_eq!(d.code, "invalid-value");
    assert_eq!((d.line, d.column), {
        let (l, c) = position(&bad, "var.token", 0, 0);
        (Some(l), Some(c))
    });
    assert!(d.message.contains("iam_instance_profile"), "{}", d.message);
    assert!(!d.message.contains("s3cr3t"));
    let help = d.help.unwrap_or_default();
    assert!(help.contains("only `user_data`"), "{help}");
}

/// One mistake: the text changed from `from` to `to`, the code expected, where
/// (the `n`th occurrence of `needle` in the changed text, `skip` bytes in) and
/// a part of the help.
struct Case {
    what: &'static str,
    from: &'static str,
    to: &'static str,
    code: &'static str,
    at: (&'static str, usize, usize),
    help: &'static str,
}

const CASES: &[Case] = &[
    Case {
        what: "a worker type region without a subnet",
        from: "    \"us-west-2a\" = \"subnet-00000000000000001\"\n",
        to: "",
        code: "FF012",
        at: ("network.untrusted", 0, 0),
        help: "add a subnet of a zone of us-west-2",
    },
    Case {
        what: "a worker type region without security groups",
        from: "    \"us-west-2\" = [\"sg-0fedcba9876543210\", \"sg-12345678\"]\n",
        to: "",
        code: "FF012",
        at: ("network.untrusted", 0, 0),
        help: "`\"us-west-2\" = [\"sg-...\"]`",
    },
    Case {
        what: "a subnet zone outside the fleet's regions",
        from: "\"us-east-1b\" = \"subnet-0fedcba9876543210\"",
        to: "\"eu-west-1b\" = \"subnet-0fedcba9876543210\"",
        code: "FF012",
        at: ("\"subnet-0fedcba9876543210\"", 0, 0),
        help: "us-east-1, us-west-2",
    },
    Case {
        what: "an exclude zone outside the fleet's regions",
        from: "\"us-east-1b\" = [\"c5d\"",
        to: "\"us-east-2b\" = [\"c5d\"",
        code: "FF012",
        at: ("[\"c5d\", \"c5.4xlarge\"]", 0, 0),
        help: "a fleet region's name and a letter",
    },
    Case {
        what: "an exclude naming a family no worker type uses",
        from: "[\"c5d\", \"c5.4xlarge\"]",
        to: "[\"c5d\", \"r5ad\"]",
        code: "FF013",
        at: ("[\"c5d\", \"r5ad\"]", 0, 0),
        help: "remove the entry",
    },
    Case {
        what: "a volume larger than its type allows",
        from: "size_gb = 120",
        to: "size_gb = 20000",
        code: "invalid-value",
        at: ("20000", 0, 0),
        help: "choose a size in the range",
    },
    Case {
        what: "IOPS outside the type's range",
        from: "iops       = 4000",
        to: "iops       = 17000",
        code: "invalid-value",
        at: ("17000", 0, 0),
        help: "choose IOPS in the range",
    },
    Case {
        what: "more IOPS per GiB than the type allows",
        from: "size_gb    = 60",
        to: "size_gb    = 6",
        code: "invalid-value",
        at: ("4000", 0, 0),
        help: "at least 8 GiB",
    },
    Case {
        what: "throughput outside the type's range",
        from: "throughput = 250",
        to: "throughput = 1001",
        code: "invalid-value",
        at: ("1001", 0, 0),
        help: "choose throughput in the range",
    },
    Case {
        what: "throughput the volume's IOPS cannot carry",
        from: "iops       = 4000\n    throughput = 250",
        to: "iops       = 3000\n    throughput = 900",
        code: "invalid-value",
        at: ("900", 0, 0),
        help: "raise `iops` to 3600 or more, or lower `throughput` to 750 MiB/s",
    },
    Case {
        what: "an io1 volume without iops",
        from: "size_gb = 120\n    type    = \"gp3\"",
        to: "size_gb = 120\n    type    = \"io1\"",
        code: "invalid-value",
        at: ("\"io1\"", 0, 0),
        help: "add `iops = N` (100 to 64000)",
    },
    Case {
        what: "an st1 root volume",
        from: "size_gb    = 60\n    type       = \"gp3\"\n    iops       = 4000\n    throughput = 250\n",
        to: "size_gb    = 500\n    type       = \"st1\"\n",
        code: "invalid-value",
        at: ("\"st1\"", 0, 0),
        help: "HDD volumes (st1, sc1) cannot boot",
    },
    Case {
        what: "a device name EC2 does not attach volumes at",
        from: "  volume \"/dev/xvdb\" {\n    size_gb = 120",
        to: "  volume \"/dev/sda1\" {\n    size_gb = 120",
        code: "invalid-value",
        at: ("volume \"/dev/sda1\"", 0, 0),
        help: "`/dev/xvdb` through `/dev/xvdz`",
    },
    Case {
        what: "two names for one device",
        from: "    volume \"/dev/xvdb\" {\n      size_gb = 200",
        to: "    volume \"/dev/sdb\" {\n      size_gb = 200",
        code: "duplicate",
        at: ("volume \"/dev/sdb\"", 0, 0),
        help: "EC2 attaches both at device b",
    },
    Case {
        what: "a device declared twice in one block",
        from: "  volume \"/dev/xvdb\" {\n    size_gb = 120\n    type    = \"gp3\"\n  }\n",
        to: "  volume \"/dev/xvdb\" {\n    size_gb = 120\n    type    = \"gp3\"\n  }\n  volume \"/dev/xvdb\" {\n    size_gb = 130\n    type    = \"gp3\"\n  }\n",
        code: "duplicate",
        at: ("volume \"/dev/xvdb\"", 1, 0),
        help: "declare each device once",
    },
    Case {
        what: "spot options on an on-demand worker type",
        from: "market               = \"spot\"",
        to: "market               = \"on-demand\"",
        code: "invalid-value",
        at: ("spot {", 0, 0),
        help: "set `market = \"spot\"`",
    },
    Case {
        what: "a spot price that is not above 0",
        from: "max_price = 0.68",
        to: "max_price = 0",
        code: "invalid-value",
        at: ("max_price = 0", 0, 12),
        help: "per instance-hour",
    },
    Case {
        what: "a hop limit above 64",
        from: "hop_limit   = 2",
        to: "hop_limit   = 65",
        code: "invalid-value",
        at: ("= 65", 0, 2),
        help: "containers need 2",
    },
    Case {
        what: "an http_tokens setting EC2 does not have",
        from: "http_tokens = \"optional\"",
        to: "http_tokens = \"sometimes\"",
        code: "invalid-value",
        at: ("\"sometimes\"", 0, 0),
        help: "\"required\", \"optional\"",
    },
    Case {
        what: "an instance type region outside its worker type's",
        from: "regions   = [\"us-east-1\"]",
        to: "regions   = [\"eu-west-1\"]",
        code: "region",
        at: ("[\"eu-west-1\"]", 0, 0),
        help: "us-east-1, us-west-2",
    },
    Case {
        what: "a worker type region no instance type is used in",
        from: "  instance_type \"c5.4xlarge\" {\n    capacity = 1\n",
        to: "  instance_type \"c5.4xlarge\" {\n    capacity = 1\n    regions  = [\"us-east-1\"]\n",
        code: "region",
        at: ("worker_type \"gecko\"", 0, 0),
        help: "add us-west-2 to the `regions` of an instance type",
    },
    Case {
        what: "a reference to an undeclared network",
        from: "network              = network.untrusted",
        to: "network              = network.untrustd",
        code: "undefined-reference",
        at: ("network.untrustd", 0, 0),
        help: "did you mean `network.untrusted`?",
    },
    Case {
        what: "an unknown attribute of a network",
        from: "assign_public_ip = false",
        to: "assign_public_ips = false",
        code: "unknown-attribute",
        at: ("assign_public_ips", 0, 0),
        help: "did you mean `assign_public_ip`?",
    },
    Case {
        what: "an unknown attribute of a volume",
        from: "    size_gb = 120\n",
        to: "    size_gb = 120\n    iopss   = 3000\n",
        code: "unknown-attribute",
        at: ("iopss", 0, 0),
        help: "did you mean `iops`?",
    },
    Case {
        what: "a subnet id of the wrong shape",
        from: "\"subnet-0123456789abcdef0\"",
        to: "\"subnet-nope\"",
        code: "invalid-value",
        at: ("\"subnet-nope\"", 0, 0),
        help: "subnet-0123456789abcdef0",
    },
    Case {
        what: "a security group given by name",
        from: "[\"sg-0123456789abcdef0\"]",
        to: "[\"untrusted\"]",
        code: "invalid-value",
        at: ("[\"untrusted\"]", 0, 0),
        help: "names are not accepted",
    },
    Case {
        what: "an instance profile that is neither a name nor an ARN",
        from: "\"arn:aws:iam::123456789012:instance-profile/gecko-${region}\"",
        to: "\"gecko workers\"",
        code: "invalid-value",
        at: ("\"gecko workers\"", 0, 0),
        help: "instance-profile/NAME",
    },
    Case {
        what: "`region` in an attribute that is the same in every region",
        from: "    max = 10\n",
        to: "    max = length(region)\n",
        code: "invalid-value",
        at: ("region)", 0, 0),
        help: "`region` may be used in `user_data`, `tags` and `iam_instance_profile`",
    },
    Case {
        what: "`region` in the worker type's own `regions`",
        from: "  ami_set              = ami_set.linux\n",
        to: "  ami_set              = ami_set.linux\n  regions              = [region]\n",
        code: "invalid-value",
        at: ("region]", 0, 0),
        help: "holds for every region at once",
    },
    Case {
        what: "`region` outside any worker type",
        from: "fleet \"test\" {",
        to: "locals {\n  where = region\n}\n\nfleet \"test\" {",
        code: "undefined-reference",
        at: ("region\n}", 0, 0),
        help: "outside a worker type there is none",
    },
];

#[test]
fn every_mistake_is_one_diagnostic_at_its_place_with_help() {
    // Every case is tried, and every failure listed, before the test fails.
    let mut failures: Vec<String> = Vec::new();
    for case in CASES {
        assert!(
            FLEET.contains(case.from),
            "{}: `{}` is not in the fleet",
            case.what,
            case.from
        );
        let text = FLEET.replacen(case.from, case.to, 1);
        let dir = config(&text);
        let loaded = load(dir.path());
        if codes(&loaded) != vec![case.code] {
            failures.push(format!(
                "{}: expected [{}], got {:#?}",
                case.what, case.code, loaded.diagnostics
            ));
            continue;
        }
        let (d, severity) = only(&loaded);
        let (needle, n, skip) = case.at;
        let (line, column) = position(&text, needle, n, skip);
        if d.file.as_deref() != Some("fleet.hcl")
            || (d.line, d.column) != (Some(line), Some(column))
        {
            failures.push(format!(
                "{}: at {:?}:{:?}:{:?}, expected {line}:{column} ({}, {:?})",
                case.what, d.file, d.line, d.column, d.message, d.label
            ));
        }
        let help = d.help.clone().unwrap_or_default();
        if !help.contains(case.help) {
            failures.push(format!(
                "{}: help `{help}` lacks `{}`",
                case.what, case.help
            ));
        }
        // Only the unused exclude is a warning: it blocks nothing.
        let warning = case.code == "FF013";
        let expected = if warning {
            Severity::Warning
        } else {
            Severity::Error
        };
        if severity != expected || loaded.config.is_some() != warning {
            failures.push(format!(
                "{}: {severity:?}, config {}",
                case.what,
                loaded.config.is_some()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn an_instance_type_may_add_a_device_its_worker_type_lacks() {
    // /dev/xvdc exists only on c5.4xlarge: no diagnostic, and only it has it.
    let dir = config(FLEET);
    let loaded = load(dir.path());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let config = loaded.config.expect("valid");
    let wt = &config.worker_types["gecko"];
    assert!(wt
        .volumes_of(&wt.instance_types[0])
        .contains_key("/dev/xvdc"));
    assert!(!wt
        .volumes_of(&wt.instance_types[1])
        .contains_key("/dev/xvdc"));
}

#[test]
fn fmt_keeps_the_new_blocks_and_their_comments() {
    let commented = FLEET
        .replace("  subnets = {", "  # one subnet per zone\n  subnets = {")
        .replace(
            "  root_volume {",
            "  root_volume { # the image's root device",
        )
        .replace(
            "    max_price = 0.68",
            "    max_price = 0.68 # USD per hour",
        );
    // Scrambled indentation, so formatting has work to do.
    let scrambled: String = commented
        .lines()
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    let formatted = fleetform_engine::fmt::format_source(&scrambled).expect("parses");
    for kept in [
        "# one subnet per zone",
        "# the image's root device",
        "# USD per hour",
        "  root_volume {",
        "    volume \"/dev/xvdb\" {",
        "  spot {",
        "  metadata {",
        "network \"untrusted\" {",
    ] {
        assert!(formatted.contains(kept), "`{kept}` lost:\n{formatted}");
    }
    assert_eq!(
        fleetform_engine::fmt::format_source(&formatted).expect("parses"),
        formatted,
        "fmt is not idempotent"
    );
    let original = load(config(&commented).path()).config.expect("valid");
    let reformatted = load(config(&formatted).path()).config.expect("valid");
    assert_eq!(
        serde_json::to_value(&original).expect("json"),
        serde_json::to_value(&reformatted).expect("json")
    );
}

#[test]
fn the_launch_configuration_example_in_the_readme_is_valid() {
    // README's first block declares the fleet and the AMI set the launch
    // configuration example uses; together they are one configuration.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let block = |from: usize| {
        let start = from + readme[from..].find("```hcl\n").expect("an hcl block") + 7;
        let end = start + readme[start..].find("```").expect("closed");
        readme[start..end].to_string()
    };
    let section = readme
        .find("### Launch configuration")
        .expect("the section");
    let text = format!("{}\n{}", block(0), block(section));
    let dir = config(&text);
    for sub in ["keys", "userdata"] {
        let from = root.join("examples/quickstart").join(sub);
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
            std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name()))
                .expect("copy");
        }
    }
    let loaded = load(dir.path());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let config = loaded.config.expect("valid");
    let wt = &config.worker_types["gecko-t-linux"];
    assert_eq!(wt.network.as_deref(), Some("untrusted"));
    assert_eq!(wt.tags_in("us-east-1")["pool"], "us-east-1-gecko");
    assert_eq!(wt.volumes.len(), 1);
}

#[test]
fn a_sensitive_user_data_per_region_is_sensitive_in_every_region() {
    let text = FLEET.replace(
        "user_data            = templatefile(\"w.sh\", { group = region })",
        "user_data            = \"token=${var.token} in ${region}\"",
    );
    let text = format!("variable \"token\" {{\n  sensitive = true\n}}\n{text}");
    let dir = config(&text);
    let inputs = Inputs {
        vars: vec!["token=s3cr3t".into()],
        ..Inputs::default()
    };
    let loaded = load_dir(dir.path(), &inputs);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let config = loaded.config.expect("valid");
    let wt = &config.worker_types["gecko"];
    assert!(wt.user_data_sensitive);
    assert_eq!(
        wt.user_data_in("us-west-2"),
        Some("token=s3cr3t in us-west-2")
    );
    let mut masked = wt.clone();
    masked.map_sensitive_user_data(|_| "(masked)".to_string());
    for region in ["us-east-1", "us-west-2"] {
        assert_eq!(masked.user_data_in(region), Some("(masked)"), "{region}");
    }
    // Tags and the instance type's own user data are not sensitive: kept.
    assert_eq!(masked.tags_in("us-west-2")["group"], "us-west-2-workers");
    assert_eq!(
        masked.instance_user_data_in(&masked.instance_types[1], "us-east-1"),
        Some("capacity=2 us-east-1")
    );
    let json = serde_json::to_string(&masked).expect("json");
    assert!(!json.contains("s3cr3t"), "{json}");
}

#[test]
fn a_spot_price_is_kept_as_written() {
    for (written, kept) in [
        ("0.680", "0.680"),
        ("1", "1"),
        ("\"0.5\"", "0.5"),
        ("0.1 + 0.2", "0.30000000000000004"),
    ] {
        let text = FLEET.replace("max_price = 0.68", &format!("max_price = {written}"));
        let loaded = load(config(&text).path());
        assert!(
            loaded.diagnostics.is_empty(),
            "{written}: {:#?}",
            loaded.diagnostics
        );
        let config = loaded.config.expect("valid");
        let spot = config.worker_types["gecko"].spot.clone().expect("spot");
        assert_eq!(spot.max_price.as_deref(), Some(kept), "{written}");
    }
}
