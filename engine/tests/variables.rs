//! Typed variables: values from defaults, `-var`, `-var-file` and
//! `FLEETFORM_VAR_*` converted to their `type`, failures naming where the
//! value came from, `validation` blocks, and sensitivity kept through it all.

use fleetform_engine::diagnostic::{render_human, Severity};
use fleetform_engine::{load_dir, Inputs, Loaded};
use serde_json::{json, Value};
use tempfile::TempDir;

const HEAD: &str = r#"fleet "test" {
  regions = ["us-east-1"]
}

ami_set "linux" {
  images = {
    "us-east-1" = "ami-785db401"
  }
}
"#;

/// A config declaring `variables`, whose worker type's user data is `user_data`.
fn config(variables: &str, user_data: &str) -> String {
    format!(
        r#"{HEAD}
{variables}

worker_type "w" {{
  ami_set = ami_set.linux
  instance_type "m5.large" {{ capacity = 1 }}
  capacity {{
    max = 2
  }}
  user_data = {user_data}
}}
"#
    )
}

fn load(text: &str, var_file: Option<&str>, mut inputs: Inputs) -> (TempDir, Loaded) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_dir = dir.path().join("cfg");
    std::fs::create_dir(&config_dir).expect("mkdir");
    std::fs::write(config_dir.join("fleet.hcl"), text).expect("write");
    if let Some(body) = var_file {
        let path = dir.path().join("vars.hcl");
        std::fs::write(&path, body).expect("write");
        inputs.var_files.push(path);
    }
    let loaded = load_dir(&config_dir, &inputs);
    (dir, loaded)
}

fn rendered(loaded: &Loaded) -> String {
    render_human(&loaded.diagnostics, &loaded.sources, false)
}

fn cli(vars: &[&str]) -> Inputs {
    Inputs {
        vars: vars.iter().map(|v| v.to_string()).collect(),
        ..Inputs::default()
    }
}

fn env(pairs: &[(&str, &str)]) -> Inputs {
    Inputs {
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Inputs::default()
    }
}

/// The value of `var.x` as the model holds it (through `jsonencode`).
fn value_of(declaration: &str, var_file: Option<&str>, inputs: Inputs) -> Value {
    let (_dir, loaded) = load(&config(declaration, "jsonencode(var.x)"), var_file, inputs);
    let config = loaded
        .config
        .as_ref()
        .unwrap_or_else(|| panic!("{declaration}: {}", rendered(&loaded)));
    let text = config.worker_types["w"]
        .user_data
        .clone()
        .expect("user data");
    serde_json::from_str(&text).expect("json")
}

/// The errors of a load: (code, message, file name, line, column).
fn errors_of(
    declaration: &str,
    var_file: Option<&str>,
    inputs: Inputs,
) -> Vec<(String, String, String, usize, usize)> {
    let (_dir, loaded) = load(&config(declaration, "jsonencode(var.x)"), var_file, inputs);
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            let (file, line, column) = match &d.location {
                Some(at) => {
                    let lc = loaded.sources.line_col(at);
                    let name = loaded.sources.file(at.file).name.clone();
                    (name, lc.line, lc.column)
                }
                None => (String::new(), 0, 0),
            };
            (
                d.code.as_str().to_string(),
                d.message.clone(),
                file,
                line,
                column,
            )
        })
        .collect()
}

/// Line of the first line of the declarations in [`config`].
fn first_line() -> usize {
    HEAD.lines().count() + 2
}

#[test]
fn defaults_convert_to_their_type() {
    for (ty, default, want) in [
        ("string", "5", json!("5")),
        ("number", "\"5\"", json!(5)),
        ("bool", "\"true\"", json!(true)),
        (
            "list(string)",
            "[1, true, \"a\"]",
            json!(["1", "true", "a"]),
        ),
        ("set(string)", "[\"b\", \"a\", \"b\"]", json!(["a", "b"])),
        (
            "map(number)",
            "{ a = \"1\", b = 2 }",
            json!({"a": 1, "b": 2}),
        ),
        ("tuple([string, number])", "[1, \"2\"]", json!(["1", 2])),
        (
            "map(object({ max = number, spot = optional(bool, false), name = optional(string) }))",
            "{ gecko-1 = { max = 10 }, gecko-3 = { max = \"5\", spot = true, extra = 1 } }",
            json!({
                "gecko-1": {"max": 10, "spot": false, "name": null},
                "gecko-3": {"max": 5, "spot": true, "name": null}
            }),
        ),
        ("any", "[1, \"a\"]", json!([1, "a"])),
        ("list", "[1]", json!([1])),
    ] {
        let declaration = format!("variable \"x\" {{\n  type    = {ty}\n  default = {default}\n}}");
        assert_eq!(
            value_of(&declaration, None, Inputs::default()),
            want,
            "{ty}"
        );
    }
}

#[test]
fn command_line_environment_and_file_values_convert_as_terraform_converts() {
    let typed = |ty: &str| format!("variable \"x\" {{\n  type = {ty}\n}}");
    // A primitive from the command line is its text, converted.
    assert_eq!(value_of(&typed("number"), None, cli(&["x=3"])), json!(3));
    assert_eq!(
        value_of(&typed("string"), None, cli(&["x=[1]"])),
        json!("[1]")
    );
    assert_eq!(
        value_of(&typed("bool"), None, env(&[("x", "false")])),
        json!(false)
    );
    // A collection from the command line is HCL, whatever it starts with.
    assert_eq!(
        value_of(&typed("list(number)"), None, cli(&["x=[1, \"2\"]"])),
        json!([1, 2])
    );
    assert_eq!(
        value_of(&typed("map(string)"), None, env(&[("x", "{ a = 1 }")])),
        json!({"a": "1"})
    );
    assert_eq!(
        value_of(
            &typed("object({ a = optional(list(string), []) })"),
            None,
            cli(&["x={}"])
        ),
        json!({"a": []})
    );
    assert_eq!(
        value_of(
            &typed("set(number)"),
            Some("x = [3, 1, 3]\n"),
            Inputs::default()
        ),
        json!([1, 3])
    );
    // Without a type, text that looks like a list is HCL, as before.
    assert_eq!(
        value_of("variable \"x\" {}", None, cli(&["x=[1]"])),
        json!([1])
    );
    assert_eq!(
        value_of("variable \"x\" {}", None, cli(&["x=3"])),
        json!("3")
    );
    assert_eq!(
        value_of(
            "variable \"x\" {\n  type = any\n}",
            None,
            cli(&["x={ a = 1 }"])
        ),
        json!({"a": 1})
    );
}

#[test]
fn a_value_that_does_not_convert_names_the_variable_and_its_source() {
    let declaration = "variable \"x\" {\n  type = number\n}";
    let type_line = first_line() + 1;

    let errors = errors_of(declaration, None, cli(&["x=many"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (code, message, file, line, column) = &errors[0];
    assert_eq!(code, "type");
    assert!(message.contains("variable `x`"), "{message}");
    assert!(message.contains("`-var x=...`"), "{message}");
    assert!(message.contains("not of type number"), "{message}");
    // Pointed at the type it must have.
    assert_eq!(
        (file.as_str(), *line, *column),
        ("fleet.hcl", type_line, 10)
    );

    let errors = errors_of(declaration, None, env(&[("x", "many")]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].1.contains("environment variable FLEETFORM_VAR_x"),
        "{}",
        errors[0].1
    );

    let errors = errors_of(
        declaration,
        Some("# values\nx   = [1]\n"),
        Inputs::default(),
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (code, message, file, line, column) = &errors[0];
    assert_eq!(code, "type");
    assert!(message.contains("vars.hcl` at 2:7"), "{message}");
    assert!(
        message.contains("a number is required, got a list"),
        "{message}"
    );
    assert!(file.ends_with("vars.hcl"), "{file}");
    assert_eq!((*line, *column), (2, 7));

    let errors = errors_of(
        "variable \"x\" {\n  type    = list(object({ max = number }))\n  default = [{ max = 1 }, { min = 2 }]\n}",
        None,
        Inputs::default(),
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (code, message, _, line, column) = &errors[0];
    assert_eq!(code, "type");
    assert!(message.contains("its default"), "{message}");
    assert!(
        message.contains("attribute `[1].max` is required"),
        "{message}"
    );
    assert_eq!((*line, *column), (first_line() + 2, 13));

    // A default of the wrong type is reported even when a -var overrides it.
    let errors = errors_of(
        "variable \"x\" {\n  type    = number\n  default = [1]\n}",
        None,
        cli(&["x=2"]),
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains("its default"), "{}", errors[0].1);

    // A collection on the command line must be valid HCL.
    let errors = errors_of(
        "variable \"x\" {\n  type = list(string)\n}",
        None,
        cli(&["x=a,b"]),
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains("-var x"), "{}", errors[0].1);
    assert!(
        errors[0].1.contains("not a valid HCL value"),
        "{}",
        errors[0].1
    );
}

#[test]
fn a_type_that_is_not_one_is_an_error_at_its_span() {
    for (ty, column, message) in [
        ("strng", 10, "`strng` is not a type"),
        ("list(strng)", 15, "`strng` is not a type"),
        ("\"string\"", 10, "without quotes"),
        (
            "optional(string)",
            10,
            "only for attributes of an object type",
        ),
        (
            "object({ a = optional(number, \"x\") })",
            40,
            "not of type number",
        ),
    ] {
        let errors = errors_of(
            &format!("variable \"x\" {{\n  type = {ty}\n  default = 1\n}}"),
            None,
            Inputs::default(),
        );
        assert_eq!(errors.len(), 1, "{ty}: {errors:?}");
        let (code, got, _, line, col) = &errors[0];
        assert_eq!(code, "type", "{ty}");
        assert!(got.contains(message), "{ty}: {got}");
        assert_eq!((*line, *col), (first_line() + 1, column), "{ty}: {got}");
    }
}

#[test]
fn validation_blocks_check_the_value_with_their_message_at_the_variable() {
    let declaration = r#"variable "x" {
  type = list(string)
  validation {
    condition     = length(var.x) > 0
    error_message = "give at least one region"
  }
  validation {
    condition     = alltrue_stub == null || can(regex_stub)
    error_message = "never reached"
  }
}"#;
    // A condition may use only its own variable.
    let errors = errors_of(declaration, None, cli(&["x=[\"a\"]"]));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.0 == "undefined-reference"),
        "{errors:?}"
    );
    assert!(
        errors[0].1.contains("refers to `alltrue_stub`"),
        "{errors:?}"
    );

    let declaration = r#"variable "x" {
  type = list(string)
  validation {
    condition     = length(var.x) > 0
    error_message = "give at least one region"
  }
  validation {
    condition     = length([for r in var.x : r if !startswith(r, "us-")]) == 0
    error_message = "only US regions"
  }
}"#;
    assert_eq!(
        value_of(declaration, None, cli(&["x=[\"us-east-1\"]"])),
        json!(["us-east-1"])
    );
    let errors = errors_of(declaration, None, cli(&["x=[]"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (code, message, _, line, column) = &errors[0];
    assert_eq!(code, "invalid-value");
    assert_eq!(message, "give at least one region");
    assert_eq!((*line, *column), (first_line(), 1));
    let errors = errors_of(declaration, None, cli(&["x=[\"eu-west-1\"]"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].1, "only US regions");

    // `can` in a condition: a value that does not evaluate fails the check.
    let declaration = r#"variable "x" {
  type = string
  validation {
    condition     = can(tonumber(var.x))
    error_message = "x must be numeric"
  }
}"#;
    assert_eq!(value_of(declaration, None, cli(&["x=42"])), json!("42"));
    let errors = errors_of(declaration, None, cli(&["x=forty"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].1, "x must be numeric");

    // A condition that is not a bool, and a block without its message.
    let errors = errors_of(
        "variable \"x\" {\n  default = 1\n  validation {\n    condition = var.x\n    error_message = \"m\"\n  }\n  validation {\n    condition = true\n  }\n}",
        None,
        Inputs::default(),
    );
    let codes: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(codes, vec!["type", "missing"], "{errors:?}");
    assert!(errors[1].1.contains("`error_message`"), "{errors:?}");
}

#[test]
fn sensitive_typed_variables_stay_sensitive_and_are_never_shown() {
    let secret = "canary-58d2";
    let declaration = r#"variable "x" {
  type      = list(string)
  sensitive = true
  validation {
    condition     = length(var.x) == 1
    error_message = "bad: ${var.x[0]}"
  }
}"#;
    let (_dir, loaded) = load(
        &config(declaration, "upper(join(\",\", var.x))"),
        None,
        cli(&[&format!("x=[\"{secret}\"]")]),
    );
    let model = loaded
        .config
        .as_ref()
        .unwrap_or_else(|| panic!("{}", rendered(&loaded)));
    assert!(model.worker_types["w"].user_data_sensitive);

    // The validation fails; its message uses the secret, so it is not shown.
    let (_dir, loaded) = load(
        &config(declaration, "upper(join(\",\", var.x))"),
        None,
        cli(&[&format!("x=[\"{secret}\", \"{secret}-2\"]")]),
    );
    let shown = rendered(&loaded);
    assert!(
        shown.contains("sensitive variable `x` is not valid"),
        "{shown}"
    );
    assert!(!shown.contains(secret), "{shown}");

    // A conversion failure says neither the value nor where in it.
    let (_dir, loaded) = load(
        &config(
            "variable \"x\" {\n  type      = map(number)\n  sensitive = true\n}",
            "jsonencode(var.x)",
        ),
        None,
        cli(&[&format!("x={{ {secret} = \"{secret}\" }}")]),
    );
    let shown = rendered(&loaded);
    assert!(shown.contains("not of type map(number)"), "{shown}");
    assert!(!shown.contains(secret), "{shown}");
}
