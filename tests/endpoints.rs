//! Where the binary sends each service's requests, against the local endpoint
//! (moto_server) and counting proxies in front of it: fleetform's flags win,
//! then the SDK's own settings (`AWS_ENDPOINT_URL_<SERVICE>`,
//! `AWS_ENDPOINT_URL`, the profile's `services` section), and only then
//! fleetform's default that S3 follows a loopback `--endpoint-url`.

use fleetform_test_support::fault::{Decide, Fault, FaultProxy, Injection};
use fleetform_test_support::s3::TestBucket;
use fleetform_test_support::{endpoint, unique_fleet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tempfile::TempDir;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy one";

const STATE_KEY: &str = "endpoints/state";

/// A fleet of one worker type in us-east-1, its state where `backend` says.
fn fleet_dir(prefix: &str, backend: &str) -> TempDir {
    let fleet = unique_fleet(prefix);
    let dir = tempfile::tempdir().expect("tempdir");
    let hcl = format!(
        "{backend}fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\"]\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n    \"us-east-1\" = \"ami-785db401\"\n  }}\n}}\n\nworker_type \"builder\" {{\n  ami_set  = ami_set.linux\n  key_pair = key_pair.workers\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = 1\n    max = 2\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write config");
    std::fs::write(dir.path().join("workers.pub"), KEY).expect("write key");
    dir
}

fn s3_fleet(prefix: &str) -> (TempDir, TestBucket) {
    let bucket = TestBucket::create(prefix);
    let backend = format!(
        "backend \"s3\" {{\n  bucket = \"{}\"\n  key    = \"{STATE_KEY}\"\n  region = \"us-east-1\"\n}}\n\n",
        bucket.name
    );
    (fleet_dir(prefix, &backend), bucket)
}

/// The requests a proxy saw, by service: S3 (no `Action`), STS, EC2.
#[derive(Default)]
struct Seen {
    s3: AtomicUsize,
    sts: AtomicUsize,
    ec2: AtomicUsize,
}

impl Seen {
    fn s3(&self) -> usize {
        self.s3.load(Ordering::SeqCst)
    }
    fn sts(&self) -> usize {
        self.sts.load(Ordering::SeqCst)
    }
    fn ec2(&self) -> usize {
        self.ec2.load(Ordering::SeqCst)
    }
}

/// A proxy in front of the local endpoint that counts what it sees,
/// forwards EC2 and STS requests when `forward` is set, and answers every
/// S3 request with 501 (as a proxy for EC2 alone does).
fn counting_proxy(forward: bool) -> (FaultProxy, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let counted = Arc::clone(&seen);
    let refuse = |code: &str| {
        Some(Injection::Error(Fault {
            status: 501,
            code: code.into(),
        }))
    };
    let decide: Decide = Arc::new(move |_region: &str, action: &str| {
        let counter = match action {
            "" => &counted.s3,
            "GetCallerIdentity" => &counted.sts,
            _ => &counted.ec2,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        if action.is_empty() || !forward {
            refuse("NotImplemented")
        } else {
            None
        }
    });
    let proxy = FaultProxy::start_deciding(endpoint(), decide, None).expect("proxy");
    (proxy, seen)
}

/// The binary with no endpoint, credential or profile setting of the
/// environment it runs in, then `env`.
fn fleetform(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetform"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("AWS_") || key.starts_with("FLEETFORM_") {
            command.env_remove(&key);
        }
    }
    command
        .args(args)
        .arg("--no-color")
        .arg(dir)
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command.output().expect("runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_recorded_in(bucket: &TestBucket) {
    let keys = bucket.keys(STATE_KEY);
    assert!(
        keys.iter().any(|k| k.ends_with("versions/000001.json")),
        "version 1 is in the bucket: {keys:?}"
    );
}

#[test]
fn s3_state_goes_where_aws_endpoint_url_s3_says_not_to_the_ec2_proxy() {
    let (dir, bucket) = s3_fleet("ep-s3-env");
    let (proxy, seen) = counting_proxy(true);
    let out = fleetform(
        &["apply", "--auto-approve"],
        dir.path(),
        &[
            ("FLEETFORM_EC2_ENDPOINT", proxy.url.as_str()),
            ("AWS_ENDPOINT_URL_S3", endpoint()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(seen.s3(), 0, "no S3 request went to the EC2 proxy");
    assert!(seen.ec2() > 0, "EC2 went through --endpoint-url");
    assert_recorded_in(&bucket);
}

#[test]
fn s3_state_goes_where_the_profile_services_section_says() {
    let (dir, bucket) = s3_fleet("ep-s3-profile");
    let (proxy, seen) = counting_proxy(true);
    let profile = tempfile::tempdir().expect("tempdir");
    let config = profile.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\nservices = local-state\n\n[services local-state]\ns3 =\n  endpoint_url = {}\n",
            endpoint()
        ),
    )
    .expect("write profile");
    let out = fleetform(
        &["apply", "--auto-approve"],
        dir.path(),
        &[
            ("FLEETFORM_EC2_ENDPOINT", proxy.url.as_str()),
            ("AWS_CONFIG_FILE", config.to_str().expect("utf-8 path")),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(seen.s3(), 0, "no S3 request went to the EC2 proxy");
    assert_recorded_in(&bucket);
}

#[test]
fn the_s3_endpoint_flag_wins_over_aws_endpoint_url_s3() {
    let (dir, bucket) = s3_fleet("ep-s3-flag");
    let (proxy, seen) = counting_proxy(false);
    let out = fleetform(
        &["apply", "--auto-approve", "--s3-endpoint-url", endpoint()],
        dir.path(),
        &[
            ("FLEETFORM_EC2_ENDPOINT", endpoint()),
            ("AWS_ENDPOINT_URL_S3", proxy.url.as_str()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(proxy.requests(), 0, "AWS_ENDPOINT_URL_S3 lost to the flag");
    assert_eq!(seen.s3(), 0);
    assert_recorded_in(&bucket);
}

#[test]
fn without_the_flag_ec2_and_sts_go_where_the_sdk_settings_say() {
    let dir = fleet_dir("ep-ec2-env", "");
    let (proxy, seen) = counting_proxy(true);
    let out = fleetform(
        &["plan"],
        dir.path(),
        &[
            ("AWS_ENDPOINT_URL", endpoint()),
            ("AWS_ENDPOINT_URL_EC2", proxy.url.as_str()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("to add"), "{}", text(&out));
    assert!(seen.ec2() > 0, "EC2 followed AWS_ENDPOINT_URL_EC2");
    assert_eq!(seen.sts(), 0, "STS followed AWS_ENDPOINT_URL");
}

#[test]
fn the_endpoint_flag_wins_over_aws_endpoint_url_ec2_and_sts() {
    let dir = fleet_dir("ep-ec2-flag", "");
    let (proxy, _seen) = counting_proxy(false);
    let out = fleetform(
        &["plan"],
        dir.path(),
        &[
            ("FLEETFORM_EC2_ENDPOINT", endpoint()),
            ("AWS_ENDPOINT_URL_EC2", proxy.url.as_str()),
            ("AWS_ENDPOINT_URL_STS", proxy.url.as_str()),
            ("AWS_ENDPOINT_URL", proxy.url.as_str()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        proxy.requests(),
        0,
        "the SDK's settings lost to --endpoint-url"
    );
}
