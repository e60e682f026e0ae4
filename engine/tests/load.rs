//! End-to-end tests of loading a configuration directory: every example is
//! valid, every kind of mistake is reported with its span, and bad input never
//! panics or hangs.

use fleetform_engine::diagnostic::render_human;
use fleetform_engine::{load_dir, Inputs, Loaded, StateLocation};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const FLEET: &str = r#"
fleet "test" {
  regions = ["us-east-1"]
}
"#;

const WORKER: &str = r#"
ami_set "linux" {
  images = {
    "us-east-1" = "ami-785db401"
  }
}

worker_type "w" {
  ami_set = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity {
    max = 2
  }
}
"#;

fn config(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn load(dir: &Path) -> Loaded {
    load_dir(dir, &Inputs::default())
}

fn codes(loaded: &Loaded) -> Vec<&'static str> {
    loaded.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// Human rendering with the temporary directory replaced, for snapshots.
fn rendered(loaded: &Loaded, dir: &Path) -> String {
    render_human(&loaded.diagnostics, &loaded.sources, false)
        .replace(&dir.display().to_string(), "[dir]")
}

#[test]
fn every_example_is_valid_without_warnings() {
    for name in ["quickstart", "firefox-ci"] {
        let loaded = load(&example(name));
        assert!(
            loaded.diagnostics.is_empty(),
            "{name}: {:#?}",
            loaded.diagnostics
        );
        assert!(loaded.config.is_some(), "{name}");
    }
}

#[test]
fn firefox_ci_example_has_the_promised_shape() {
    use fleetform_engine::model::{HttpTokens, Market};
    let config = load(&example("firefox-ci")).config.expect("valid");
    // Worker types by id: most are instances of a `for_each`, whose id is
    // their `name` (the pool's id) and whose key in the model is an address.
    let by_id = |id: &str| {
        config
            .worker_types
            .values()
            .find(|wt| wt.id() == id)
            .unwrap_or_else(|| panic!("no worker type {id}"))
    };
    assert!(
        config.worker_types.len() >= 40,
        "{}",
        config.worker_types.len()
    );
    assert_eq!(
        config.fleet.regions,
        ["us-east-1", "us-west-1", "us-west-2", "eu-central-1"]
    );
    assert!(config.ami_sets.len() >= 4);
    // Three trust levels, a subnet in every zone the pools used (14), and the
    // (zone, family) pairs EC2 did not offer excluded.
    let networks: Vec<&str> = config.networks.keys().map(String::as_str).collect();
    assert_eq!(networks, ["trusted", "untrusted", "windows"]);
    assert_eq!(config.networks["trusted"].subnets.len(), 14);
    assert!(config.networks["untrusted"].excludes("us-east-1e", "m5.large"));
    assert!(config.networks["untrusted"].excludes("us-east-1a", "r5ad.large"));
    assert!(!config.networks["untrusted"].excludes("us-east-1a", "m5.large"));
    for wt in config.worker_types.values() {
        let id = wt.id();
        assert_eq!(wt.market, Market::Spot, "{id}: spot everywhere");
        let network = wt
            .network
            .as_deref()
            .unwrap_or_else(|| panic!("{id}: no network"));
        let windows = wt
            .user_data
            .as_deref()
            .unwrap_or("")
            .contains("<powershell>");
        if wt.regions.iter().any(|r| r == "eu-central-1") {
            assert!(windows, "{id}: eu-central-1 is for Windows only");
        }
        if id.contains("-3-") {
            assert_eq!(network, "trusted", "{id}: level 3 is trusted");
        }
        // The Windows pools had larger roots; the NSS ones kept the image's.
        if windows && !id.starts_with("nss-") {
            assert!(wt.root_volume.is_some(), "{id}");
        }
    }
    // Disks per instance type where the pools had them so: c5d.4xlarge had
    // no second volume on the builders, c5.4xlarge had one.
    let builder = by_id("gecko-1-b-linux");
    assert!(builder.volumes.is_empty());
    let disk = |t: &str| {
        builder
            .instance_types
            .iter()
            .find(|it| it.name == t)
            .map(|it| it.volumes.contains_key("/dev/xvdb"))
    };
    assert_eq!(disk("c5.4xlarge"), Some(true));
    assert_eq!(disk("c5d.4xlarge"), Some(false));
    let win7 = by_id("gecko-t-t-win7-32");
    assert_eq!(win7.metadata.http_tokens, HttpTokens::Optional);
    assert_eq!(
        by_id("gecko-t-t-linux-large").metadata.http_tokens,
        HttpTokens::Required
    );
    let user_data = win7.user_data.as_deref().unwrap_or("");
    assert!(
        user_data.contains(r#"workerType = "gecko-t-t-win7-32""#),
        "{user_data}"
    );
}

/// A model with what is only representation taken out: worker types and key
/// pairs keyed by their id (under `for_each` the key is `LABEL["KEY"]` and the
/// id moves to `id`), everything else as it is.
fn by_id(config: &fleetform_engine::model::Config) -> serde_json::Value {
    let mut config = config.clone();
    config.worker_types = std::mem::take(&mut config.worker_types)
        .into_values()
        .map(|mut wt| {
            wt.name = wt.id().to_string();
            wt.id = None;
            (wt.name.clone(), wt)
        })
        .collect();
    let ids: std::collections::BTreeMap<String, String> = config
        .key_pairs
        .values()
        .map(|k| (k.name.clone(), k.id().to_string()))
        .collect();
    for wt in config.worker_types.values_mut() {
        if let Some(k) = wt.key_pair.as_mut() {
            *k = ids[k.as_str()].clone();
        }
    }
    config.key_pairs = std::mem::take(&mut config.key_pairs)
        .into_values()
        .map(|mut k| {
            k.name = k.id().to_string();
            k.id = None;
            (k.name.clone(), k)
        })
        .collect();
    serde_json::to_value(&config).expect("json")
}

#[test]
fn firefox_ci_written_by_hand_is_the_model_the_generator_wrote() {
    // The fixture is the model of the generated example (1,792 lines of
    // written-out blocks), recorded before it was rewritten with for_each.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/firefox-ci-model.json");
    let recorded: fleetform_engine::model::Config =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("parses");
    let loaded = load(&example("firefox-ci"));
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let config = loaded.config.expect("valid");
    assert_eq!(config.worker_types.len(), 48);
    let (now, then) = (by_id(&config), by_id(&recorded));
    for (section, value) in then.as_object().expect("object") {
        if let (Some(was), Some(is)) = (value.as_object(), now[section].as_object()) {
            let keys = |m: &serde_json::Map<String, serde_json::Value>| {
                m.keys().cloned().collect::<Vec<_>>()
            };
            assert_eq!(keys(is), keys(was), "{section}: names");
            for (name, item) in was {
                assert_eq!(&is[name], item, "{section}.{name}");
            }
        }
        assert_eq!(&now[section], value, "{section}");
    }
    assert_eq!(now, then);
}

#[test]
fn every_example_is_formatted_as_fmt_writes_it() {
    for name in ["quickstart", "firefox-ci"] {
        let (files, _, diagnostics) = fleetform_engine::fmt::format_dir(&example(name));
        assert!(diagnostics.is_empty(), "{name}: {diagnostics:#?}");
        for file in files {
            assert_eq!(
                file.formatted,
                file.original,
                "{}: not as `fleetform fmt` writes it",
                file.path.display()
            );
        }
    }
}

#[test]
fn ten_mistakes_give_ten_diagnostics_each_with_a_span() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ten-mistakes");
    let loaded = load(&dir);
    assert!(loaded.config.is_none());
    assert_eq!(loaded.diagnostics.len(), 10, "{:#?}", loaded.diagnostics);
    let mut distinct = codes(&loaded);
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() >= 8, "{distinct:?}");
    for d in &loaded.diagnostics {
        assert!(d.location.is_some(), "no span: {d:?}");
        assert!(d.help.is_some(), "no help: {d:?}");
    }
    insta::assert_snapshot!("ten_mistakes", rendered(&loaded, &dir));
}

#[test]
fn malformed_hcl_is_a_syntax_error_at_its_line() {
    let dir = config(&[(
        "fleet.hcl",
        "fleet \"x\" {\n  regions = [\"us-east-1\"\n}\n",
    )]);
    let loaded = load(dir.path());
    assert_eq!(codes(&loaded), vec!["syntax"]);
    let at = loaded.diagnostics[0].location.clone().expect("span");
    assert_eq!(loaded.sources.line_col(&at).line, 3);
    insta::assert_snapshot!("malformed", rendered(&loaded, dir.path()));
}

#[test]
fn two_attributes_in_a_one_line_block_get_specific_help() {
    let dir = config(&[(
        "fleet.hcl",
        "fleet \"x\" {\n  regions = [\"us-east-1\"]\n  limits { max_launches = 50  max_terminations = 20 }\n}\n",
    )]);
    let loaded = load(dir.path());
    assert_eq!(codes(&loaded), vec!["syntax"]);
    let help = loaded.diagnostics[0].help.as_deref().unwrap_or("");
    assert!(help.contains("each attribute on its own line"), "{help}");
}

#[test]
fn a_huge_file_is_reported_not_hung_on() {
    // 10 MB of nonsense: one syntax error, found at the start.
    let junk = "%%% ".repeat(10 * 1024 * 1024 / 4);
    let dir = config(&[("big.hcl", &junk)]);
    assert_eq!(codes(&load(dir.path())), vec!["syntax"]);
    // 10 MB of valid HCL without a fleet: parsed whole, then "no fleet".
    let valid = "# padding\n".repeat(1024 * 1024);
    let dir = config(&[("big.hcl", &valid)]);
    assert_eq!(codes(&load(dir.path())), vec!["missing"]);
}

/// The fuzzer's memory blow-ups (a few hundred bytes asking for gigabytes):
/// each is refused at the expression that would grow too large.
#[test]
fn expressions_that_would_grow_past_the_budget_are_refused_at_their_span() {
    // Nine nested fors over ten elements: 10^9 strings.
    let ten = "[0,1,2,3,4,5,6,7,8,9]";
    let mut nested = "\"xxxxxxxxxxxxxxxx\"".to_string();
    for depth in 0..9 {
        nested = format!("[for v{depth} in {ten} : {nested}]");
    }
    // Locals that each hold the previous one twice: 2^40 elements, or bytes.
    let doubling = |shape: &dyn Fn(usize) -> String, first: &str| {
        let mut text = format!("locals {{\n  l0 = {first}\n");
        for n in 1..=40 {
            text.push_str(&format!("  l{n} = {}\n", shape(n - 1)));
        }
        text + "}\n"
    };
    let strings = doubling(
        &|p| format!("\"${{local.l{p}}}${{local.l{p}}}\""),
        "\"xxxxxxxxxxxxxxxx\"",
    );
    let lists = doubling(&|p| format!("[local.l{p}, local.l{p}]"), "[1, 2]");
    for (what, text) in [
        (
            "nested fors",
            format!("{FLEET}locals {{\n  x = {nested}\n}}\n"),
        ),
        ("doubling strings", format!("{FLEET}{strings}")),
        ("doubling lists", format!("{FLEET}{lists}")),
    ] {
        let dir = config(&[("fleet.hcl", &text)]);
        let loaded = load(dir.path());
        let too_large: Vec<_> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.code.as_str() == "too-large")
            .collect();
        assert_eq!(too_large.len(), 1, "{what}: {:?}", codes(&loaded));
        assert!(too_large[0].location.is_some(), "{what}: at its span");
        assert!(
            rendered(&loaded, dir.path()).contains("past the limit of 16 MiB"),
            "{what}: {}",
            rendered(&loaded, dir.path())
        );
    }
    // Just under: two nested fors over ten elements are fine.
    let small =
        format!("{FLEET}locals {{\n  x = [for a in {ten} : [for b in {ten} : a * b]]\n}}\n");
    let dir = config(&[("fleet.hcl", &small)]);
    assert!(!codes(&load(dir.path())).contains(&"too-large"));
}

/// Each expression under the per-value limit, but a large local copied into
/// many worker types: the load stops at the total budget, reported once.
#[test]
fn a_large_local_copied_into_many_worker_types_stops_at_the_total_budget() {
    // 16 bytes doubled 19 times: an 8 MiB local, each worker type 16 MiB of user data.
    let mut text = format!(
        "{FLEET}ami_set \"linux\" {{\n  images = {{\n    \"us-east-1\" = \"ami-785db401\"\n  }}\n}}\nlocals {{\n  l0 = \"xxxxxxxxxxxxxxxx\"\n"
    );
    for n in 1..=19 {
        text.push_str(&format!(
            "  l{n} = \"${{local.l{p}}}${{local.l{p}}}\"\n",
            p = n - 1
        ));
    }
    text.push_str("}\n");
    for n in 0..40 {
        text.push_str(&format!(
            "worker_type \"w{n}\" {{\n  ami_set   = ami_set.linux\n  user_data = \"${{local.l19}}${{local.l19}}\"\n  instance_type \"m5.large\" {{ capacity = 1 }}\n  capacity {{\n    max = 2\n  }}\n}}\n"
        ));
    }
    let dir = config(&[("fleet.hcl", &text)]);
    let loaded = load(dir.path());
    let too_large: Vec<&str> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code.as_str() == "too-large")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(too_large.len(), 1, "reported once: {too_large:?}");
    assert!(too_large[0].contains("in all"), "{too_large:?}");
    assert!(loaded.config.is_none() || loaded.has_errors());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 50_000;
    let text = format!(
        "{FLEET}locals {{\n  deep = {}{}\n}}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let dir = config(&[("fleet.hcl", &text)]);
    assert_eq!(codes(&load(dir.path())), vec!["syntax"]);
}

#[test]
fn non_utf8_bytes_are_reported_with_their_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fleet.hcl"),
        b"fleet \"x\" {\n  regions = [\"\xff\"]\n}\n",
    )
    .expect("write");
    let loaded = load(dir.path());
    assert_eq!(codes(&loaded), vec!["encoding"]);
    let at = loaded.diagnostics[0].location.clone().expect("span");
    let lc = loaded.sources.line_col(&at);
    assert_eq!((lc.line, lc.column), (2, 15));
}

#[test]
fn a_missing_directory_and_an_empty_one_are_errors() {
    let loaded = load(Path::new("/nonexistent/fleetform/config"));
    assert_eq!(codes(&loaded), vec!["io"]);
    assert!(loaded.diagnostics[0].message.contains("does not exist"));
    let empty = tempfile::tempdir().expect("tempdir");
    assert_eq!(codes(&load(empty.path())), vec!["no-config"]);
}

#[test]
fn a_variable_with_no_value_points_at_its_declaration() {
    let dir = config(&[(
        "fleet.hcl",
        &format!(
            "{FLEET}variable \"owner\" {{}}\nlocals {{\n  tags = {{ owner = var.owner }}\n}}\n"
        ),
    )]);
    let loaded = load(dir.path());
    // Only the unset variable: the local that uses it is not reported again.
    assert_eq!(codes(&loaded), vec!["variable-unset"]);
    insta::assert_snapshot!("variable_unset", rendered(&loaded, dir.path()));
}

#[test]
fn file_of_a_missing_or_escaping_path_is_an_error() {
    let dir = config(&[(
        "cfg/fleet.hcl",
        &format!(
            "{FLEET}key_pair \"a\" {{\n  public_key = file(\"missing.pub\")\n}}\nkey_pair \"b\" {{\n  public_key = file(\"../secret.pub\")\n}}\n"
        ),
    )]);
    std::fs::write(dir.path().join("secret.pub"), "ssh-ed25519 AAAA outside").expect("write");
    let loaded = load(&dir.path().join("cfg"));
    assert_eq!(codes(&loaded), vec!["function", "function"]);
    assert!(loaded.diagnostics[0]
        .message
        .contains("cannot read `missing.pub`"));
    assert!(loaded.diagnostics[1]
        .message
        .contains("outside the config directory"));
}

#[test]
fn a_reference_cycle_is_reported_once_and_names_the_chain() {
    let dir = config(&[(
        "fleet.hcl",
        &format!("{FLEET}locals {{\n  a = local.b\n  b = local.c\n  c = local.a\n  d = local.a\n  e = \"ok\"\n}}\n"),
    )]);
    let loaded = load(dir.path());
    assert_eq!(
        codes(&loaded),
        vec!["reference-cycle"],
        "{:#?}",
        loaded.diagnostics
    );
    let message = &loaded.diagnostics[0].message;
    assert!(message.contains("a -> b -> c -> a"), "{message}");
}

#[test]
fn a_self_reference_is_a_cycle() {
    let dir = config(&[(
        "fleet.hcl",
        &format!("{FLEET}locals {{\n  a = [local.a]\n}}\n"),
    )]);
    assert_eq!(codes(&load(dir.path())), vec!["reference-cycle"]);
}

#[test]
fn variables_take_cli_over_file_over_environment_over_default() {
    let worker = WORKER.replace(
        "  capacity {",
        "  tags = { a = var.a, b = var.b, c = var.c, d = var.d }\n  capacity {",
    );
    let text = format!(
        "{FLEET}variable \"a\" {{\n  default = \"default\"\n}}\nvariable \"b\" {{\n  default = \"default\"\n}}\nvariable \"c\" {{\n  default = \"default\"\n}}\nvariable \"d\" {{\n  default = \"default\"\n}}\n{worker}"
    );
    let dir = config(&[
        ("fleet.hcl", &text),
        ("vars/prod.hcl", "b = \"file\"\nc = \"file\"\n"),
    ]);
    let inputs = Inputs {
        vars: vec!["c=cli".into()],
        var_files: vec![dir.path().join("vars/prod.hcl")],
        env: vec![
            ("a".into(), "env".into()),
            ("b".into(), "env".into()),
            ("c".into(), "env".into()),
        ],
    };
    let loaded = load_dir(dir.path(), &inputs);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let tags = &loaded.config.expect("valid").worker_types["w"].tags;
    assert_eq!(tags["a"], "env");
    assert_eq!(tags["b"], "file");
    assert_eq!(tags["c"], "cli");
    assert_eq!(tags["d"], "default");
}

#[test]
fn a_cli_variable_that_is_not_declared_is_an_error_with_a_suggestion() {
    let dir = config(&[(
        "fleet.hcl",
        &format!("{FLEET}variable \"owner\" {{\n  default = \"x\"\n}}\n"),
    )]);
    let inputs = Inputs {
        vars: vec!["ownr=y".into()],
        ..Inputs::default()
    };
    let loaded = load_dir(dir.path(), &inputs);
    assert_eq!(codes(&loaded), vec!["variable-undeclared"]);
    assert_eq!(
        loaded.diagnostics[0].help.as_deref(),
        Some("did you mean `owner`?")
    );
}

#[test]
fn unknown_names_get_did_you_mean() {
    let dir = config(&[(
        "fleet.hcl",
        "fleet \"x\" {\n  regions = [\"us-east-1\"]\n  acount_id = \"123456789012\"\n}\nworker_typ \"w\" {}\n",
    )]);
    let loaded = load(dir.path());
    assert_eq!(codes(&loaded), vec!["unknown-attribute", "unknown-block"]);
    assert_eq!(
        loaded.diagnostics[0].help.as_deref(),
        Some("did you mean `account_id`?")
    );
    assert_eq!(
        loaded.diagnostics[1].help.as_deref(),
        Some("did you mean `worker_type`?")
    );
}

#[test]
fn a_name_declared_in_two_files_is_a_duplicate_naming_the_first() {
    let dir = config(&[
        ("a.hcl", &format!("{FLEET}{WORKER}")),
        (
            "b.hcl",
            "ami_set \"linux\" {\n  images = {\n    \"us-east-1\" = \"ami-785db401\"\n  }\n}\n",
        ),
    ]);
    let loaded = load(dir.path());
    assert_eq!(codes(&loaded), vec!["duplicate"]);
    let help = loaded.diagnostics[0].help.as_deref().unwrap_or("");
    assert!(help.contains("a.hcl:"), "{help}");
}

#[test]
fn image_compatibility_follows_instance_families() {
    let arm_on_intel = format!("{FLEET}{WORKER}").replace(
        "ami_set \"linux\" {",
        "ami_set \"linux\" {\n  architecture = \"arm64\"",
    );
    let dir = config(&[("fleet.hcl", &arm_on_intel)]);
    assert_eq!(codes(&load(dir.path())), vec!["FF003"]);

    let pv_on_m3 = format!("{FLEET}{WORKER}")
        .replace(
            "ami_set \"linux\" {",
            "ami_set \"linux\" {\n  virtualization = \"pv\"",
        )
        .replace("m5.large", "m3.large");
    let dir = config(&[("fleet.hcl", &pv_on_m3)]);
    assert!(load(dir.path()).diagnostics.is_empty());
}

#[test]
fn the_budget_counts_max_capacity_in_every_region() {
    // m5.large is $0.096/h; max 2 in one region is $0.192/h.
    let over = format!("{FLEET}{WORKER}").replace(
        "regions = [\"us-east-1\"]",
        "regions = [\"us-east-1\"]\n  budget {\n    max_hourly_usd = 0.19\n  }",
    );
    let dir = config(&[("fleet.hcl", &over)]);
    let loaded = load(dir.path());
    assert_eq!(codes(&loaded), vec!["FF007"]);
    assert!(
        loaded.diagnostics[0].message.contains("$0.19/h"),
        "{}",
        loaded.diagnostics[0].message
    );

    let under = over.replace("0.19", "0.20");
    let dir = config(&[("fleet.hcl", &under)]);
    assert!(load(dir.path()).diagnostics.is_empty());
}

#[test]
fn worker_types_default_to_the_fleet_regions() {
    let dir = config(&[("fleet.hcl", &format!("{FLEET}{WORKER}"))]);
    let config = load(dir.path()).config.expect("valid");
    assert_eq!(
        config.worker_types["w"].regions,
        vec!["us-east-1".to_string()]
    );
}

#[test]
fn sensitive_variables_are_recorded_for_redaction() {
    let dir = config(&[(
        "fleet.hcl",
        &format!(
            "{FLEET}variable \"token\" {{\n  default   = \"s3cr3t\"\n  sensitive = true\n}}\n"
        ),
    )]);
    let config = load(dir.path()).config.expect("valid");
    assert_eq!(config.sensitive_variables, vec!["token".to_string()]);
}

/// Copies a directory tree (examples hold keys/ and userdata/ beside the HCL).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn fmt_then_load_gives_the_same_model_for_every_example() {
    for name in ["quickstart", "firefox-ci"] {
        let original = load(&example(name)).config.expect("valid");
        let temp = tempfile::tempdir().expect("tempdir");
        copy_tree(&example(name), temp.path());
        // Scramble the layout first, so formatting has real work to do.
        for entry in std::fs::read_dir(temp.path()).expect("read_dir").flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "hcl") {
                let text = std::fs::read_to_string(&path).expect("read");
                let scrambled: String = text
                    .lines()
                    .map(|l| format!("{}\n\n\n", l.trim_start()))
                    .collect();
                let formatted = fleetform_engine::fmt::format_source(&scrambled).expect("parses");
                assert_eq!(
                    fleetform_engine::fmt::format_source(&formatted).expect("parses"),
                    formatted,
                    "{name}: fmt is not idempotent"
                );
                std::fs::write(&path, formatted).expect("write");
            }
        }
        let reformatted = load(temp.path()).config.expect("still valid");
        assert_eq!(
            serde_json::to_value(&original).expect("json"),
            serde_json::to_value(&reformatted).expect("json"),
            "{name}"
        );
    }
}

#[test]
fn backend_blocks_local_and_s3_decode_and_bad_ones_leave_the_state_location_unknown() {
    let dir = config(&[(
        "fleet.hcl",
        &format!("backend \"local\" {{\n  path = \"st\"\n}}\n{FLEET}"),
    )]);
    let local = load(dir.path()).config.expect("valid");
    assert_eq!(local.backend.and_then(|b| b.path).as_deref(), Some("st"));

    let dir = config(&[(
        "fleet.hcl",
        &format!(
            "backend \"s3\" {{\n  bucket = \"team-state\"\n  key = \"fleet/state/\"\n  region = \"eu-west-1\"\n}}\n{FLEET}"
        ),
    )]);
    let loaded = load(dir.path());
    let expected = fleetform_engine::model::Backend {
        kind: "s3".into(),
        path: None,
        bucket: Some("team-state".into()),
        key: Some("fleet/state".into()),
        region: Some("eu-west-1".into()),
    };
    assert_eq!(
        loaded.state_location,
        StateLocation::Declared(expected.clone())
    );
    assert_eq!(loaded.config.expect("valid").backend, Some(expected));

    // Each of these is reported at the block and leaves the location unknown.
    for (block, code) in [
        ("backend \"s3\" {\n  bucket = \"b\"\n}", "missing"),
        ("backend \"s3\" {\n  key = \"k\"\n}", "missing"),
        (
            "backend \"s3\" {\n  bucket = \"b\"\n  key = \"/abs\"\n}",
            "invalid-value",
        ),
        (
            "backend \"s3\" {\n  bucket = \"b\"\n  key = \"a//b\"\n}",
            "invalid-value",
        ),
        ("backend \"gcs\" {\n  bucket = \"b\"\n}", "invalid-value"),
    ] {
        let dir = config(&[("fleet.hcl", &format!("{block}\n{FLEET}"))]);
        let loaded = load(dir.path());
        assert_eq!(
            codes(&loaded),
            vec![code],
            "{block}: {:#?}",
            loaded.diagnostics
        );
        assert_eq!(loaded.state_location, StateLocation::Unknown, "{block}");
    }
}

#[test]
fn the_state_location_is_known_when_other_blocks_have_errors_but_not_when_a_file_does_not_parse() {
    let s3 = "backend \"s3\" {\n  bucket = \"b\"\n  key = \"k\"\n}\n";
    // The fleet block is missing: the config is invalid, the backend is not.
    let dir = config(&[("state.hcl", s3)]);
    let loaded = load(dir.path());
    assert!(loaded.config.is_none());
    assert!(matches!(
        loaded.state_location,
        StateLocation::Declared(ref b) if b.bucket.as_deref() == Some("b")
    ));
    // Another file does not parse: it might hold a second backend block.
    let dir = config(&[("state.hcl", s3), ("broken.hcl", "fleet \"x\" {")]);
    assert_eq!(load(dir.path()).state_location, StateLocation::Unknown);
    // A value that cannot be had (an unset variable) never means the default.
    let dir = config(&[
        (
            "state.hcl",
            "variable \"state_bucket\" {\n  type = string\n}\nbackend \"s3\" {\n  bucket = var.state_bucket\n  key    = \"k\"\n}\n",
        ),
        ("fleet.hcl", FLEET),
    ]);
    let loaded = load(dir.path());
    assert!(loaded.has_errors());
    assert_eq!(loaded.state_location, StateLocation::Unknown);
    let dir = config(&[(
        "fleet.hcl",
        &format!("backend \"local\" {{\n  path = local.nowhere\n}}\n{FLEET}"),
    )]);
    assert_eq!(load(dir.path()).state_location, StateLocation::Unknown);
    // Two blocks: which one is meant cannot be told.
    let dir = config(&[
        ("a.hcl", s3),
        ("b.hcl", "backend \"local\" {\n  path = \"x\"\n}\n"),
        ("fleet.hcl", FLEET),
    ]);
    let loaded = load(dir.path());
    assert_eq!(
        codes(&loaded),
        vec!["duplicate"],
        "{:#?}",
        loaded.diagnostics
    );
    assert_eq!(loaded.state_location, StateLocation::Unknown);
    // No backend block, or no configuration at all: the default.
    let dir = config(&[("fleet.hcl", FLEET)]);
    assert_eq!(load(dir.path()).state_location, StateLocation::Default);
    let empty = tempfile::tempdir().expect("temp dir");
    assert_eq!(load(empty.path()).state_location, StateLocation::Default);
}

/// `count` worker types named `w{i}`, each with user data from `t.sh`.
fn many_worker_types(range: std::ops::Range<usize>, broken: &[usize]) -> String {
    range
        .map(|i| {
            // A broken worker type names an AMI set that does not exist.
            let set = if broken.contains(&i) { "linx" } else { "linux" };
            format!(
                r#"
worker_type "w{i}" {{
  ami_set = ami_set.{set}
  instance_type "m5.large" {{ capacity = 1 }}
  capacity {{
    max = 2
  }}
  user_data = templatefile("t.sh", {{ name = "w{i}" }})
}}
"#
            )
        })
        .collect()
}

#[test]
fn a_large_configuration_loads_the_same_every_time() {
    // Files are parsed and worker types decoded on several threads; the
    // result, and the order of the diagnostics, must not depend on which
    // thread finished first.
    let ami = "ami_set \"linux\" {\n  images = {\n    \"us-east-1\" = \"ami-785db401\"\n  }\n}\n";
    // Six files of 100 worker types; `broken` picks which ones name a missing set.
    let fleet_dir = |broken: &dyn Fn(usize) -> Vec<usize>| {
        let parts: Vec<(String, String)> = (0..6)
            .map(|f| {
                let text = many_worker_types(f * 100..(f + 1) * 100, &broken(f));
                (format!("workers-{f}.hcl"), text)
            })
            .collect();
        let mut files: Vec<(&str, &str)> = vec![
            ("fleet.hcl", FLEET),
            ("ami.hcl", ami),
            ("t.sh", "worker ${name}\n"),
        ];
        files.extend(parts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        config(&files)
    };
    let dir = fleet_dir(&|f| vec![f * 100 + 7, f * 100 + 93]);
    let first = load(dir.path());
    let first_text = rendered(&first, dir.path());
    assert_eq!(
        codes(&first).len(),
        12,
        "one diagnostic per broken worker type: {first_text}"
    );
    let places: Vec<(Option<String>, Option<usize>)> = first
        .diagnostics
        .iter()
        .map(|d| d.to_json(&first.sources))
        .map(|j| (j.file, j.line))
        .collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(places, sorted, "diagnostics in file and line order");
    assert_eq!(places[0], (Some("workers-0.hcl".to_string()), Some(66)));
    for _ in 0..3 {
        let again = load(dir.path());
        assert_eq!(rendered(&again, dir.path()), first_text);
    }

    // Without the broken ones, every worker type decodes, each with its own user data.
    let dir = fleet_dir(&|_| Vec::new());
    let loaded = load(dir.path());
    let config = loaded.config.expect("valid");
    assert_eq!(config.worker_types.len(), 600);
    for (name, wt) in &config.worker_types {
        assert_eq!(
            wt.user_data.as_deref(),
            Some(format!("worker {name}\n").as_str())
        );
    }
    assert_eq!(load(dir.path()).config.as_ref(), Some(&config));
}

#[test]
fn a_template_changed_between_loads_is_read_again() {
    // Templates are read once per load, not once per process.
    let dir = config(&[
        ("fleet.hcl", FLEET),
        (
            "main.hcl",
            &WORKER.replace(
                "capacity {",
                "user_data = templatefile(\"t.sh\", { x = \"1\" })\n  capacity {",
            ),
        ),
        ("t.sh", "first ${x}\n"),
    ]);
    let user_data = |loaded: Loaded| {
        loaded.config.expect("valid").worker_types["w"]
            .user_data
            .clone()
    };
    assert_eq!(user_data(load(dir.path())).as_deref(), Some("first 1\n"));
    std::fs::write(dir.path().join("t.sh"), "second ${x}\n").expect("write");
    assert_eq!(user_data(load(dir.path())).as_deref(), Some("second 1\n"));
}

#[test]
fn a_template_changed_between_loads_is_read_again_by_every_thread() {
    // The instances of a large `for_each` are decoded on every core, and
    // each core keeps what it read for the rest of the load: the next load
    // must not see it.
    let keys: Vec<String> = (0..400).map(|i| format!("\"k{i}\" = \"a\"")).collect();
    let worker = WORKER.replace(
        "worker_type \"w\" {",
        &format!(
            "worker_type \"w\" {{\n  for_each = {{ {} }}\n  user_data = templatefile(\"t/${{each.value}}.sh\", {{ x = each.key }})",
            keys.join(", ")
        ),
    );
    let dir = config(&[
        ("fleet.hcl", FLEET),
        ("main.hcl", &worker),
        ("t/a.sh", "first ${x}\n"),
    ]);
    let user_data = |loaded: Loaded| -> Vec<String> {
        let config = loaded.config.expect("valid");
        config
            .worker_types
            .values()
            .filter_map(|wt| wt.user_data.clone())
            .collect()
    };
    let first = user_data(load(dir.path()));
    assert_eq!(first.len(), 400);
    assert!(first.iter().all(|u| u.starts_with("first k")), "{first:?}");
    std::fs::write(dir.path().join("t/a.sh"), "second ${x}\n").expect("write");
    let second = user_data(load(dir.path()));
    assert_eq!(second.len(), 400);
    assert!(
        second.iter().all(|u| u.starts_with("second k")),
        "{second:?}"
    );
}

/// An `ec2_name` that another worker type's launch template already has
/// (explicit, or its default `<fleet>.<id>`) is reported at the `ec2_name`;
/// without any `ec2_name`, ids alone decide, and distinct ids never clash.
#[test]
fn an_ec2_name_taken_by_another_worker_type_is_reported_at_it() {
    let other = |extra: &str| {
        format!(
            "worker_type \"v\" {{\n  ami_set = ami_set.linux\n  {extra}\n  instance_type \"m5.large\" {{ capacity = 1 }}\n  capacity {{ max = 2 }}\n}}\n"
        )
    };
    // `v` takes the default EC2 name of `w` (`test.w`).
    let dir = config(&[
        ("fleet.hcl", FLEET),
        ("w.hcl", WORKER),
        ("v.hcl", &other("ec2_name = \"test.w\"")),
    ]);
    let loaded = load(dir.path());
    let clashes: Vec<&str> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.message.contains("has the EC2 name `test.w`"))
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(clashes.len(), 1, "{:#?}", loaded.diagnostics);
    assert!(loaded.config.is_none());
    // The same two worker types without `ec2_name`: no clash.
    let dir = config(&[
        ("fleet.hcl", FLEET),
        ("w.hcl", WORKER),
        ("v.hcl", &other("")),
    ]);
    let loaded = load(dir.path());
    assert!(
        loaded.diagnostics.iter().all(|d| !d.is_error()),
        "{:#?}",
        loaded.diagnostics
    );
}
