//! The `fleetform` binary end to end: exit codes, JSON output, `fmt` on disk,
//! and the checked-in JSON Schemas.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fleetform(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("the binary runs")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn validate_accepts_every_example() {
    for name in ["quickstart", "firefox-ci"] {
        let dir = root().join("examples").join(name);
        let out = fleetform(&["validate", dir.to_str().expect("utf-8 path")]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(stdout(&out).contains("is valid"), "{}", stdout(&out));
    }
}

#[test]
fn validate_json_lists_every_diagnostic_with_file_line_and_column() {
    let out = fleetform(&["validate", "--json", "tests/fixtures/ten-mistakes"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["format_version"], "1");
    assert_eq!(report["valid"], false);
    let diagnostics = report["diagnostics"].as_array().expect("array");
    assert_eq!(diagnostics.len(), 10);
    for d in diagnostics {
        assert!(
            d["file"].is_string() && d["line"].is_u64() && d["column"].is_u64(),
            "{d}"
        );
        assert_eq!(d["severity"], "error");
    }
    let codes: Vec<&str> = diagnostics
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    for code in [
        "FF002",
        "FF003",
        "FF007",
        "capacity-range",
        "undefined-reference",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
}

#[test]
fn validate_human_output_names_the_file_and_exits_1() {
    let out = fleetform(&["validate", "--no-color", "tests/fixtures/ten-mistakes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("tests/fixtures/ten-mistakes/workers.hcl:2:13"),
        "{err}"
    );
    assert!(err.contains("10 errors"), "{err}");
    assert!(!err.contains('\u{1b}'), "--no-color still coloured: {err}");
}

#[test]
fn bad_directories_exit_1_without_panicking() {
    let empty = tempfile::tempdir().expect("tempdir");
    for dir in [Path::new("/nonexistent/fleetform"), empty.path()] {
        let out = fleetform(&["validate", dir.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_no_panic(&out);
    }
}

#[test]
fn terraform_style_single_dash_var_flags_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fleet.hcl"),
        "variable \"region\" {}\nfleet \"x\" {\n  regions = [var.region]\n}\n",
    )
    .expect("write");
    let path = dir.path().to_str().expect("utf-8");
    let out = fleetform(&["validate", "-var", "region=us-east-1", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = fleetform(&["validate", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("variable `region` has no value"));
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let out = fleetform(&["validate", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(1));
    let out = fleetform(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("Exit codes"), "{}", stdout(&out));
}

#[test]
fn fmt_check_passes_on_the_examples() {
    for name in ["quickstart", "firefox-ci"] {
        let dir = root().join("examples").join(name);
        let out = fleetform(&["fmt", "--check", dir.to_str().expect("utf-8")]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn fmt_rewrites_in_place_keeping_comments_and_check_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("fleet.hcl");
    let messy = "# keep me\nfleet \"x\" {\nregions = [\"us-east-1\"] # and me\n      account_id = \"123456789012\"\n}\n";
    std::fs::write(&file, messy).expect("write");
    let path = dir.path().to_str().expect("utf-8");

    let out = fleetform(&["fmt", "--check", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("fleet.hcl"), "{}", stdout(&out));
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        messy,
        "--check wrote"
    );

    let out = fleetform(&["fmt", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let formatted = std::fs::read_to_string(&file).expect("read");
    assert_eq!(
        formatted,
        "# keep me\nfleet \"x\" {\n  regions    = [\"us-east-1\"] # and me\n  account_id = \"123456789012\"\n}\n"
    );
    let out = fleetform(&["fmt", "--check", path]);
    assert_eq!(out.status.code(), Some(0), "not idempotent");
}

#[test]
fn fmt_leaves_a_file_that_does_not_parse_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("broken.hcl");
    std::fs::write(&file, "fleet {\n").expect("write");
    let out = fleetform(&["fmt", dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid HCL"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "fleet {\n");
}

/// The schemas under schemas/ are generated from the Rust types; this fails when
/// they are stale. Regenerate with `UPDATE_SCHEMAS=1 cargo test --test cli schemas`.
#[test]
fn checked_in_schemas_match_the_rust_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut schemas = fleetform_engine::schema::all();
    schemas.push(("state.schema.json", fleetform_state::state_schema()));
    for (name, text) in schemas {
        let path = root().join("schemas").join(name);
        if update {
            std::fs::write(&path, &text).expect("write schema");
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "schemas/{name} is stale: run `UPDATE_SCHEMAS=1 cargo test --test cli schemas`"
        );
    }
}

#[test]
fn the_language_example_in_the_readme_is_valid() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let start = readme.find("```hcl\n").expect("an hcl block") + "```hcl\n".len();
    let end = start + readme[start..].find("```").expect("closed");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fleet.hcl"), &readme[start..end]).expect("write");
    for sub in ["keys", "userdata"] {
        let from = root().join("examples/quickstart").join(sub);
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
            std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name()))
                .expect("copy");
        }
    }
    let out = fleetform(&["validate", dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn fleetform_at(endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(args)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint)
        .env_remove("NO_COLOR")
        .output()
        .expect("the binary runs")
}

#[test]
fn state_list_shows_what_ec2_holds_for_the_fleet() {
    let endpoint = fleetform_test_support::endpoint();
    let out = fleetform_at(endpoint, &["state", "list", "examples/quickstart"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listing = stdout(&out);
    assert!(
        listing.contains("ami_set.ubuntu") && listing.contains("ami-785db401"),
        "{listing}"
    );
    assert!(stderr(&out).contains("API calls"), "{}", stderr(&out));
}

#[test]
fn state_list_refuses_credentials_of_another_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fleet.hcl"),
        "fleet \"elsewhere\" {\n  account_id = \"999999999999\"\n  regions    = [\"us-east-1\"]\n}\n",
    )
    .expect("write");
    let out = fleetform_at(
        fleetform_test_support::endpoint(),
        &[
            "state",
            "list",
            "--no-color",
            dir.path().to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("FF009"), "{err}");
    assert!(
        err.contains("123456789012") && err.contains("999999999999"),
        "{err}"
    );
    assert!(
        stdout(&out).is_empty(),
        "nothing listed for the wrong account"
    );
}

#[test]
fn state_list_names_an_unreachable_endpoint() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = fleetform_at(
        &format!("http://127.0.0.1:{port}"),
        &["state", "list", "--no-color", "examples/quickstart"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("Connection refused"), "{err}");
    assert_no_panic(&out);
}

#[test]
fn no_credentials_is_a_clear_error_not_a_hang() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetform"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("AWS_") || key == "FLEETFORM_EC2_ENDPOINT" {
            command.env_remove(&key);
        }
    }
    let out = command
        .args(["state", "list", "--no-color", "examples/quickstart"])
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no AWS credentials found"), "{err}");
    assert_no_panic(&out);
}

#[test]
fn state_list_names_a_region_that_could_not_be_read_and_exits_1() {
    let proxy = fleetform_test_support::fault::FaultProxy::start(
        fleetform_test_support::endpoint(),
        std::sync::Arc::new(|region: &str, action: &str| {
            region == "us-west-2" && action == "DescribeInstances"
        }),
    )
    .expect("proxy starts");
    let out = fleetform_at(&proxy.url, &["state", "list", "examples/firefox-ci"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("us-west-2: instances could not be read completely")
            && err.contains("InternalError"),
        "{err}"
    );
    assert!(
        !err.contains("us-east-1: instances"),
        "only the failing region is named: {err}"
    );
    assert!(
        proxy.injected() >= 2,
        "retried before giving up: {}",
        proxy.injected()
    );
    // Everything else was still read and listed.
    assert!(
        stdout(&out).contains("ami_set.docker-worker"),
        "{}",
        stdout(&out)
    );
}

/// `fleetform ARGS` on a pseudo-terminal (util-linux `script`), with `env`
/// set and CI unset otherwise; what it printed.
fn on_a_terminal(args: &str, env: &[(&str, &str)]) -> String {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_fleetform"));
    let mut script = Command::new("script");
    script
        .args(["-qec", &command, "/dev/null"])
        .env_remove("CI")
        .env_remove("NO_COLOR");
    for (k, v) in env {
        script.env(k, v);
    }
    let out = script.output().expect("script runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn in_ci_there_is_no_colour_even_on_a_terminal() {
    let broken = root().join("tests/fixtures/ten-mistakes");
    let args = broken.display().to_string();
    let args = format!("validate {args}");
    let plain = on_a_terminal(&args, &[]);
    assert!(plain.contains("\u{1b}["), "a terminal gets colour: {plain}");
    for ci in ["true", "1"] {
        let ci_out = on_a_terminal(&args, &[("CI", ci)]);
        assert!(ci_out.contains("error"), "{ci_out}");
        assert!(!ci_out.contains("\u{1b}["), "CI={ci}: no colour: {ci_out}");
    }
    let not_ci = on_a_terminal(&args, &[("CI", "false")]);
    assert!(not_ci.contains("\u{1b}["), "CI=false is not CI");
}
