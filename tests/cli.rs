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

#[test]
fn explain_prints_the_long_explanation_of_a_code_in_any_case() {
    let upper = fleetform(&["explain", "FF003"]);
    assert_eq!(upper.status.code(), Some(0), "{}", stderr(&upper));
    let text = stdout(&upper);
    for part in [
        "FF003 image-compat",
        "What it checks",
        "What it prevents",
        "How to resolve it",
        "Graviton",
    ] {
        assert!(text.contains(part), "{part} missing: {text}");
    }
    let lower = fleetform(&["explain", "ff003"]);
    assert_eq!(stdout(&lower), text, "codes are case-insensitive");
    let named = fleetform(&["explain", "Unknown-Attribute"]);
    assert_eq!(named.status.code(), Some(0), "{}", stderr(&named));
    assert!(
        stdout(&named).starts_with("unknown-attribute: "),
        "{}",
        stdout(&named)
    );
}

#[test]
fn explain_of_an_unknown_code_exits_1_suggesting_the_closest_and_listing_all() {
    let out = fleetform(&["explain", "unknown-atribute"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("unknown diagnostic code `unknown-atribute`"),
        "{err}"
    );
    assert!(err.contains("did you mean `unknown-attribute`?"), "{err}");
    for code in ["FF001", "FF011", "syntax", "too-large"] {
        assert!(err.contains(code), "{code} not listed: {err}");
    }
    assert_no_panic(&out);
}

#[test]
fn explain_without_a_code_lists_every_code_once() {
    let out = fleetform(&["explain"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines().count(),
        fleetform_engine::Code::ALL.len(),
        "{text}"
    );
    assert!(text.contains("FF006 blast-radius"), "{text}");
}

#[test]
fn every_diagnostic_points_to_its_explanation_in_human_and_json_output() {
    let out = fleetform(&["validate", "--no-color", "tests/fixtures/ten-mistakes"]);
    let err = stderr(&out);
    assert!(err.contains("see: fleetform explain FF003"), "{err}");
    assert!(
        err.contains("see: fleetform explain capacity-range"),
        "{err}"
    );
    let out = fleetform(&["validate", "--json", "tests/fixtures/ten-mistakes"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    for d in report["diagnostics"].as_array().expect("array") {
        let code = d["code"].as_str().expect("a code");
        let help = d["help"].as_str().expect("a help");
        assert!(
            help.ends_with(&format!("see: fleetform explain {code}")),
            "{d}"
        );
    }
}

/// The string literals of a Rust source file (plain, byte and raw), without
/// comments, char literals or lifetimes.
fn string_literals(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut literals = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('#') | Some('"'))
            && !ident(chars.get(i.wrapping_sub(1)))
        {
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let rest: String = chars[j + 1..].iter().collect();
            let end = rest.find(&close).unwrap_or(rest.len());
            literals.push(rest[..end].to_string());
            i = j + 1 + rest[..end].chars().count() + close.chars().count();
        } else if c == '"' {
            let mut text = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    text.push(chars[i]);
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    text.push(ch);
                }
                i += 1;
            }
            literals.push(text);
            i += 1;
        } else if c == '\'' {
            // A char literal ('"', '\'', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                let close = chars[i + 3..]
                    .iter()
                    .position(|&ch| ch == '\'')
                    .unwrap_or(0);
                i += 4 + close;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    literals
}

fn ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

#[test]
fn the_string_scanner_sees_literals_and_skips_comments() {
    let found = string_literals(
        "// \"seed 1\"\nlet a = \"one seed\"; /* \"seed 2\" */ let c = '\"'; let q = '\\''; let r = r#\"raw \"seed\"\"#; fn f<'a>() {}",
    );
    assert_eq!(
        found,
        vec!["one seed".to_string(), "raw \"seed\"".to_string()]
    );
}

#[test]
fn no_user_facing_string_of_the_binary_mentions_a_seed() {
    let mut offenders = Vec::new();
    for dir in ["src", "engine/src", "providers/aws/src", "state/src"] {
        let mut stack = vec![root().join(dir)];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).expect("readable source dir") {
                    stack.push(entry.expect("entry").path());
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("readable source");
                for literal in string_literals(&source) {
                    if literal.to_ascii_lowercase().contains("seed") {
                        offenders.push(format!("{}: {literal:?}", path.display()));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "user-facing text cites seeds: {offenders:#?}"
    );
    let mut helps = vec![vec!["--help"]];
    for command in [
        "validate", "fmt", "plan", "apply", "rollback", "history", "diff", "unlock", "show",
        "state", "images", "explain", "output",
    ] {
        helps.push(vec![command, "--help"]);
    }
    for args in helps {
        let out = fleetform(&args);
        let text = stdout(&out).to_ascii_lowercase();
        assert!(!text.contains("seed"), "{args:?}: {text}");
    }
}
