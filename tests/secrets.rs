//! Sensitive variables end to end against the local EC2 endpoint: a canary
//! secret, given by `-var`, by `-var-file` or by the environment, reaches
//! the launch template in EC2 and nothing else: not stdout or stderr of any
//! command, not the plan file, the Markdown comment, any state file or the
//! journal. Plan files and rollback need the secret supplied again.

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{ObserveRequest, Provider};
use fleetform_test_support::{endpoint, unique_fleet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy one";

/// Text of a private key kept beside the configuration; it must never be
/// copied into state.
const PRIVATE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nprivate-key-canary-5d1e\n-----END OPENSSH PRIVATE KEY-----\n";

/// How the secret is given.
#[derive(Clone, Copy)]
enum Source {
    Flag,
    VarFile,
    Environment,
}

struct Fleet {
    dir: TempDir,
    secret: String,
    source: Source,
}

impl Fleet {
    fn new(prefix: &str, source: Source) -> Fleet {
        let fleet = unique_fleet(prefix);
        let secret = format!("canary-{fleet}-s3cr3t");
        let dir = tempfile::tempdir().expect("tempdir");
        let hcl = format!(
            r#"fleet "{fleet}" {{
  account_id = "123456789012"
  regions    = ["us-east-1"]
}}

variable "token" {{
  sensitive = true
}}

locals {{
  settings = {{ token = var.token, worker = "linux" }}
}}

key_pair "workers" {{
  public_key = file("workers.pub")
}}

ami_set "linux" {{
  images = {{
    "us-east-1" = "ami-785db401"
  }}
}}

worker_type "linux" {{
  ami_set   = ami_set.linux
  key_pair  = key_pair.workers
  user_data = templatefile("userdata/worker.sh", local.settings)

  instance_type "m5.large" {{ capacity = 1 }}

  capacity {{
    min = 1
    max = 2
  }}
}}
"#
        );
        std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
        std::fs::write(dir.path().join("workers.pub"), KEY).expect("write");
        std::fs::write(dir.path().join("id_ed25519"), PRIVATE_KEY).expect("write");
        std::fs::create_dir(dir.path().join("userdata")).expect("mkdir");
        std::fs::write(
            dir.path().join("userdata/worker.sh"),
            "#!/bin/sh\n# worker ${worker}\nexport TOKEN='${token}'\nexec start-worker\n",
        )
        .expect("write");
        Fleet {
            dir,
            secret,
            source,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs fleetform with `args`, the config directory last, and the secret
    /// given as `value` (if any) the way this fleet gives it.
    fn run_with(&self, args: &[&str], value: Option<&str>, last: Option<&Path>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fleetform"));
        command
            .arg("--no-color")
            .args(args)
            .env("FLEETFORM_EC2_ENDPOINT", endpoint())
            .env_remove("FLEETFORM_VAR_token")
            // Another fleet's secret in a shared CI environment: never recorded.
            .env("FLEETFORM_VAR_other_fleet_password", "other-fleet-s3cr3t")
            .stdin(Stdio::null());
        if let Some(value) = value {
            match self.source {
                Source::Flag => {
                    command.arg("-var").arg(format!("token={value}"));
                }
                Source::VarFile => {
                    // Kept beside the configuration, as people do.
                    let file = self.path().join("secrets.vars");
                    std::fs::write(&file, format!("token = \"{value}\"\n")).expect("write");
                    command.arg("-var-file").arg(file);
                }
                Source::Environment => {
                    command.env("FLEETFORM_VAR_token", value);
                }
            }
        }
        command.arg(last.unwrap_or(self.path()));
        let output = command.output().expect("fleetform runs");
        self.assert_no_secret(&output, args);
        output
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, Some(&self.secret.clone()), None)
    }

    fn run_without_secret(&self, args: &[&str]) -> Output {
        self.run_with(args, None, None)
    }

    /// Neither stream of `output` holds the secret (nor a part of it long
    /// enough to matter).
    fn assert_no_secret(&self, output: &Output, args: &[&str]) {
        for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(&self.secret) && !text.contains("s3cr3t"),
                "the secret reached {name} of `fleetform {}`:\n{text}",
                args.join(" ")
            );
        }
    }

    /// No file under `dir` (every byte) holds the secret or the private key.
    fn assert_files_clean(&self, dir: &Path) {
        for file in files_under(dir) {
            let bytes = std::fs::read(&file).expect("read");
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("s3cr3t"),
                "the secret reached {}",
                file.display()
            );
            assert!(
                !text.contains("private-key-canary"),
                "the private key reached {}",
                file.display()
            );
        }
    }

    /// The user data of the default version of the fleet's launch template in EC2.
    fn live_user_data(&self) -> Option<String> {
        let loaded = fleetform_engine::load_dir(
            self.path(),
            &fleetform_engine::Inputs {
                vars: vec![format!("token={}", self.secret)],
                ..Default::default()
            },
        );
        let config = loaded.config.expect("valid config");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let provider = runtime
            .block_on(AwsProvider::connect(&ConnectOptions {
                endpoint_url: Some(endpoint().to_string()),
                ..ConnectOptions::default()
            }))
            .expect("connects");
        let observation = runtime.block_on(provider.observe(&ObserveRequest::for_config(&config)));
        let templates = observation.regions["us-east-1"]
            .launch_templates
            .complete()?
            .clone();
        templates.first()?.default_data.as_ref()?.user_data.clone()
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The whole life of a fleet whose user data renders a secret.
fn secret_never_leaves_memory_except_to_ec2(prefix: &str, source: Source) {
    let fleet = Fleet::new(prefix, source);
    let out_dir = tempfile::tempdir().expect("tempdir");
    let plan_file = out_dir.path().join("plan.bin");
    let markdown = out_dir.path().join("plan.md");
    let (plan_arg, md_arg) = (
        plan_file.display().to_string(),
        markdown.display().to_string(),
    );

    // Plan: human, JSON, Markdown and a plan file.
    let plan = fleet.run(&["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("user_data = (sensitive: 4 lines)"),
        "{}",
        stdout(&plan)
    );
    let json = fleet.run(&["plan", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan json");
    let template = value["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["resource"] == "launch_template"))
        .expect("a launch template action");
    assert_eq!(template["sensitive"], serde_json::json!(["user_data"]));
    let saved = fleet.run(&["plan", "-out", &plan_arg, "--markdown", &md_arg]);
    assert_eq!(saved.status.code(), Some(0), "{}", stderr(&saved));
    fleet.assert_files_clean(out_dir.path());
    let saved_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_file).expect("plan file")).expect("json");
    assert!(
        saved_json["sensitive"]["variables"]["token"]
            .as_str()
            .is_some_and(|d| d.starts_with("$argon2id$")),
        "{saved_json}"
    );
    let secret = fleet.secret.clone();
    for args in [&["show"][..], &["show", "--json"]] {
        let shown = fleet.run_with(args, None, Some(&plan_file));
        assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    }

    // A plan file cannot be applied without the secret, nor with another one.
    let without = fleet.run_with(&["apply"], None, Some(&plan_file));
    assert_eq!(without.status.code(), Some(1), "{}", stderr(&without));
    assert!(stderr(&without).contains("`token`"), "{}", stderr(&without));
    let wrong = fleet.run_with(&["apply"], Some("canary-wrong-value"), Some(&plan_file));
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("FF010") && stderr(&wrong).contains("sensitive variable `token`"),
        "{}",
        stderr(&wrong)
    );
    assert_eq!(fleet.live_user_data(), None, "nothing was created");
    let applied = fleet.run_with(&["apply"], Some(&secret), Some(&plan_file));
    assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));

    // EC2 holds the real user data: the worker reads it there.
    let live = fleet.live_user_data().expect("the template has user data");
    assert!(live.contains(&fleet.secret), "{live}");

    // A second change, applied from the directory: its diff is described.
    let script = fleet.path().join("userdata/worker.sh");
    let text = std::fs::read_to_string(&script).expect("read");
    std::fs::write(
        &script,
        text.replace("exec start-worker", "exec start-worker --v2"),
    )
    .expect("write");
    let changed = fleet.run(&["plan"]);
    assert!(
        stdout(&changed).contains("user_data: (sensitive: 4 lines, changed)"),
        "{}",
        stdout(&changed)
    );
    let second = fleet.run(&["apply", "--auto-approve"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(fleet
        .live_user_data()
        .is_some_and(|d| d.contains("--v2") && d.contains(&fleet.secret)));

    // Everything that reads the state.
    for args in [
        &["history"][..],
        &["history", "--json"],
        &["show", "--version", "1"],
        &["show", "--version", "2", "--json"],
        &["diff", "1", "2"],
    ] {
        let out = fleet.run_without_secret(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    // The state commands read EC2 for the configuration, variables included.
    for args in [
        &["state", "list"][..],
        &["state", "list", "--json"],
        &["state", "show", "worker_type.linux"],
    ] {
        let out = fleet.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let diff = fleet.run_without_secret(&["diff", "1", "2"]);
    assert!(stdout(&diff).contains("--v2"), "{}", stdout(&diff));

    // Rollback needs the secret again, and returns the template with it.
    let refused = fleet.run_without_secret(&["rollback", "--to", "1", "--auto-approve"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("needs the sensitive variable `token`"),
        "{}",
        stderr(&refused)
    );
    let rolled = fleet.run(&["rollback", "--to", "1", "--auto-approve"]);
    assert_eq!(rolled.status.code(), Some(0), "{}", stderr(&rolled));
    let live = fleet.live_user_data().expect("user data");
    assert!(
        !live.contains("--v2") && live.contains(&fleet.secret),
        "{live}"
    );

    // Every byte of the state (versions, index, journal, lock) and of the plan file.
    fleet.assert_files_clean(&fleet.path().join(".fleetform"));
    fleet.assert_files_clean(out_dir.path());
    let version: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fleet.path().join(".fleetform/versions/000001.json")).expect("version 1"),
    )
    .expect("version json");
    let snapshot: Vec<&str> = version["sources"]
        .as_object()
        .expect("sources")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        snapshot,
        ["fleet.hcl", "userdata/worker.sh", "workers.pub"],
        "the snapshot holds the configuration and the files it reads, nothing else"
    );
}

#[test]
fn a_secret_given_by_flag_reaches_only_ec2() {
    secret_never_leaves_memory_except_to_ec2("sflag", Source::Flag);
}

#[test]
fn a_secret_given_by_a_var_file_reaches_only_ec2() {
    secret_never_leaves_memory_except_to_ec2("sfile", Source::VarFile);
}

#[test]
fn a_secret_given_by_the_environment_reaches_only_ec2() {
    secret_never_leaves_memory_except_to_ec2("senv", Source::Environment);
}

#[test]
fn a_secret_is_refused_outside_user_data_and_hidden_in_diagnostics() {
    let fleet = Fleet::new("sdiag", Source::Flag);
    let path = fleet.path().join("fleet.hcl");
    let hcl = std::fs::read_to_string(&path).expect("read");
    // A tag from the secret, and an expression on it that fails.
    let hcl = hcl.replace(
        "  instance_type \"m5.large\"",
        "  tags = { token = var.token }\n  instance_type \"m5.large\"",
    );
    std::fs::write(&path, hcl).expect("write");
    std::fs::write(
        fleet.path().join("extra.hcl"),
        "locals {\n  broken = var.token + 1\n}\n",
    )
    .expect("write");
    let out = fleet.run(&["validate", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let messages: Vec<&str> = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter_map(|d| d["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("`tags`") && m.contains("cannot take a sensitive value")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("uses a sensitive value, so the details are not shown")),
        "{messages:?}"
    );
    fleet.run(&["validate"]);
}

#[test]
fn a_secret_in_a_default_is_a_warning_and_never_shown_in_a_snippet() {
    let fleet = Fleet::new("sdefault", Source::Flag);
    let path = fleet.path().join("fleet.hcl");
    let hcl = std::fs::read_to_string(&path).expect("read");
    let secret = fleet.secret.clone();
    std::fs::write(
        &path,
        hcl.replace(
            "  sensitive = true\n",
            &format!("  sensitive = true\n  default   = \"{secret}\"\n"),
        ),
    )
    .expect("write");
    // The value comes from the default: run without -var.
    let out = fleet.run_without_secret(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sensitive variable `token` has a default"),
        "{}",
        stderr(&out)
    );
}
