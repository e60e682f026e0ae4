//! Sensitivity of values at load: what derives from a sensitive variable,
//! where a secret may go, and what a load reveals of one.

use fleetform_engine::diagnostic::render_human;
use fleetform_engine::{load_dir, Inputs, Loaded};
use tempfile::TempDir;

const SECRET: &str = "canary-9c41-secret";

fn load(worker_extra: &str, extra_files: &[(&str, &str)]) -> (TempDir, Loaded) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hcl = format!(
        r#"
fleet "test" {{
  regions = ["us-east-1"]
}}

variable "token" {{
  sensitive = true
}}

variable "plain" {{
  default = "visible"
}}

locals {{
  derived  = format("[%s]", var.token)
  indirect = {{ value = local.derived }}
  public   = "${{var.plain}}-suffix"
}}

ami_set "linux" {{
  images = {{
    "us-east-1" = "ami-785db401"
  }}
}}

worker_type "w" {{
  ami_set = ami_set.linux
  instance_type "m5.large" {{ capacity = 1 }}
  capacity {{
    max = 2
  }}
{worker_extra}
}}
"#
    );
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
    for (name, text) in extra_files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }
    let inputs = Inputs {
        vars: vec![format!("token={SECRET}")],
        ..Inputs::default()
    };
    let loaded = load_dir(dir.path(), &inputs);
    (dir, loaded)
}

fn user_data_sensitive(loaded: &Loaded) -> bool {
    let config = loaded
        .config
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    config.worker_types["w"].user_data_sensitive
}

#[test]
fn sensitivity_follows_locals_functions_and_templates() {
    for (user_data, files) in [
        ("  user_data = var.token", &[][..]),
        ("  user_data = local.derived", &[]),
        ("  user_data = local.indirect.value", &[]),
        ("  user_data = \"x${format(\"%s\", var.token)}y\"", &[]),
        (
            "  user_data = templatefile(\"w.sh\", { t = local.indirect })",
            &[("w.sh", "token=${t.value}\n")][..],
        ),
    ] {
        let (_, loaded) = load(user_data, files);
        assert!(user_data_sensitive(&loaded), "{user_data}");
    }
    for user_data in [
        "  user_data = local.public",
        "  user_data = \"static\"",
        "  user_data = var.plain",
    ] {
        let (_, loaded) = load(user_data, &[]);
        assert!(!user_data_sensitive(&loaded), "{user_data}");
    }
}

#[test]
fn a_secret_anywhere_but_user_data_is_an_error_that_does_not_show_it() {
    let (dir, loaded) = load(
        "  tags = { t = local.derived }\n  max_lifetime = var.token",
        &[],
    );
    let errors: Vec<&str> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors
        .iter()
        .all(|m| m.contains("cannot take a sensitive value")));
    let text = render_human(&loaded.diagnostics, &loaded.sources, false);
    assert!(!text.contains(SECRET), "{text}");
    drop(dir);
}

#[test]
fn a_failing_expression_on_a_secret_hides_its_details() {
    let (_, loaded) = load("  user_data = file(var.token)", &[]);
    let text = render_human(&loaded.diagnostics, &loaded.sources, false);
    assert!(loaded.has_errors());
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("details are not shown"), "{text}");
}

#[test]
fn a_var_file_snippet_never_shows_the_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, base) = load("  user_data = var.token", &[]);
    drop(base);
    let vars = dir.path().join("secrets.vars");
    // The secret, and a mistake on the next line that points into the file.
    // The secret; a mistake on the next line that points into the file; a
    // value written with an escape (no search for the value finds it); a
    // value that is not a literal.
    let text = format!(
        "token = \"{SECRET}\"\ntokne = \"x\"\nescaped = \"canary-\\\"esc\"\nbare = canary_bare_word\n"
    );
    std::fs::write(&vars, text).expect("write");
    let config = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        config.path().join("fleet.hcl"),
        "fleet \"t\" {\n  regions = [\"us-east-1\"]\n}\nvariable \"token\" {\n  sensitive = true\n}\n",
    )
    .expect("write");
    let loaded = load_dir(
        config.path(),
        &Inputs {
            var_files: vec![vars],
            ..Inputs::default()
        },
    );
    assert_eq!(loaded.secrets.value("token"), Some(SECRET));
    let text = render_human(&loaded.diagnostics, &loaded.sources, false);
    assert!(text.contains("tokne"), "the warning is shown: {text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        !text.contains("esc\\") && !text.contains("canary_bare_word"),
        "{text}"
    );
    // The var file is marked, so it is neither hashed nor snapshotted.
    assert!(loaded.sources.files().iter().any(|f| f.var_file));
}

#[test]
fn the_files_a_configuration_reads_are_listed() {
    let (_, loaded) = load(
        "  user_data = templatefile(\"userdata/w.sh\", { t = \"x\" })",
        &[("userdata/w.sh", "t=${t}\n"), ("notes.txt", "not read\n")],
    );
    assert_eq!(loaded.read_files, vec!["userdata/w.sh".to_string()]);
}

#[test]
fn a_sensitive_value_that_is_not_valid_hcl_is_never_quoted() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fleet.hcl"),
        "fleet \"t\" {\n  regions = [\"us-east-1\"]\n}\nvariable \"token\" {\n  sensitive = true\n}\n",
    )
    .expect("write");
    for inputs in [
        Inputs {
            vars: vec!["token={canary-brace-secret".into()],
            ..Inputs::default()
        },
        Inputs {
            env: vec![("token".into(), "[canary-bracket-secret".into())],
            ..Inputs::default()
        },
    ] {
        let loaded = load_dir(dir.path(), &inputs);
        let text = render_human(&loaded.diagnostics, &loaded.sources, false);
        assert!(loaded.has_errors(), "{text}");
        assert!(!text.contains("canary"), "{text}");
    }
}

#[test]
fn a_plans_model_hash_never_holds_an_instance_types_or_a_regions_secret() {
    // The same configuration loaded with two values of the secret: the hash
    // a plan file binds the model with must not tell them apart, or it can
    // be used to test guesses of the secret.
    let hash_with = |secret: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        let hcl = r#"
fleet "test" {
  regions = ["us-east-1", "us-west-2"]
}
variable "token" {
  sensitive = true
}
ami_set "linux" {
  images = {
    "us-east-1" = "ami-785db401"
    "us-west-2" = "ami-785db402"
  }
}
worker_type "w" {
  ami_set   = ami_set.linux
  user_data = "region ${region} token ${var.token}"
  instance_type "m5.large" {
    capacity  = 1
    user_data = "large ${var.token}"
  }
  capacity {
    max = 2
  }
}
"#;
        std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
        let loaded = load_dir(
            dir.path(),
            &Inputs {
                vars: vec![format!("token={secret}")],
                ..Inputs::default()
            },
        );
        let config = loaded
            .config
            .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
        assert!(!config.worker_types["w"].regional.is_empty());
        fleetform_engine::plan::saved::model_hash(&config, None)
    };
    assert_eq!(hash_with(SECRET), hash_with("another-secret-value"));
}
