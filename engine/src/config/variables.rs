//! Variable values: defaults, `FLEETFORM_VAR_*`, `-var-file` and `-var`, in
//! rising precedence (as Terraform orders them).

use super::fields::{span_of, want, Decl, Fields};
use super::scope::Scope;
use super::{read_var_file, Inputs};
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::sensitive::Secrets;
use crate::source::{SourceRef, SourceSet};
use hcl::Value;
use hcl_edit::structure::Structure;
use std::collections::BTreeMap;

/// Gives every declared variable its value in `scope` (marking the sensitive
/// ones there) and returns the names marked sensitive and their values.
pub(super) fn resolve(
    declared: &[(String, Decl<'_>)],
    inputs: &Inputs,
    sources: &mut SourceSet,
    scope: &mut Scope,
    diags: &mut Diagnostics,
) -> (Vec<String>, Secrets) {
    // Defaults may not refer to anything: they are evaluated in an empty scope.
    let empty = Scope::new([], [], [], [], []);
    let mut values: BTreeMap<&str, Option<Value>> = BTreeMap::new();
    let mut sensitive = Vec::new();
    for (name, decl) in declared {
        let what = format!("variable \"{name}\"");
        let f = Fields::read(
            decl.file,
            &decl.block.body,
            &what,
            &["default", "description", "sensitive"],
            &[],
            diags,
        );
        if let Some((v, at)) = f.value(&empty, "description", diags) {
            want::string(&v, &at, "variable.description", diags);
        }
        if let Some((v, at)) = f.value(&empty, "sensitive", diags) {
            if want::boolean(&v, &at, "variable.sensitive", diags) == Some(true) {
                sensitive.push(name.clone());
                if let Some(default) = f.get("default") {
                    diags.push(
                        Diagnostic::warning(
                            Code::InvalidValue,
                            format!("sensitive variable `{name}` has a default written in the configuration"),
                        )
                        .at(span_of(decl.file, &default.key), "a secret kept in the configuration files")
                        .help(format!(
                            "configuration files are committed to git and copied into every state version; remove the default and pass the value with `-var {name}=...`, a `-var-file` kept out of git, or FLEETFORM_VAR_{name}"
                        )),
                    );
                }
            }
        }
        values.insert(
            name.as_str(),
            f.value(&empty, "default", diags).map(|(v, _)| v),
        );
    }
    let names = || declared.iter().map(|(n, _)| n.as_str());

    for (name, text) in &inputs.env {
        // Like TF_VAR_*, environment values for undeclared variables are ignored.
        if let Some(slot) = values.get_mut(name.as_str()) {
            let shown = !sensitive.contains(name);
            if let Some(v) = parse_cli_value(text, &format!("FLEETFORM_VAR_{name}"), shown, diags) {
                *slot = Some(v);
            }
        }
    }

    for path in &inputs.var_files {
        let display = path.display().to_string();
        let Some(parsed) = read_var_file(path, display.clone(), sources, diags) else {
            continue;
        };
        for structure in parsed.body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let key = attr.key.as_str();
                    let at = span_of(parsed.id, &attr.key);
                    match values.get_mut(key) {
                        Some(slot) => {
                            // What went wrong is not quoted: the text may be a secret.
                            let mut failed = Diagnostics::default();
                            match empty.eval(parsed.id, &attr.value, &mut failed) {
                                Some(v) => *slot = Some(v),
                                None => diags.push(
                                    Diagnostic::error(
                                        Code::InvalidValue,
                                        format!("the value of `{key}` in `{display}` is not a literal HCL value (it is not shown: variable files may hold secrets)"),
                                    )
                                    .at(at, "set here")
                                    .help(format!("write `{key} = \"...\"`, a number, or a list or object of them; variable files cannot refer to anything")),
                                ),
                            }
                        }
                        None => diags.push(undeclared_warning(key, at, names())),
                    }
                }
                Structure::Block(block) => diags.push(
                    Diagnostic::error(Code::Syntax, format!("`{display}` may only set variables"))
                        .at(span_of(parsed.id, &block.ident), "a block")
                        .help("a variable file holds lines like `name = \"value\"`"),
                ),
            }
        }
    }

    for assignment in &inputs.vars {
        let Some((name, text)) = assignment.split_once('=') else {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("`-var {assignment}` has no value"),
                )
                .help("write `-var NAME=VALUE`"),
            );
            continue;
        };
        let name = name.trim();
        match values.get_mut(name) {
            Some(slot) => {
                let shown = !sensitive.iter().any(|s| s == name);
                if let Some(v) = parse_cli_value(text, &format!("-var {name}"), shown, diags) {
                    *slot = Some(v);
                }
            }
            None => {
                let d = Diagnostic::error(
                    Code::VariableUndeclared,
                    format!("`-var {name}=...` sets a variable that is not declared"),
                );
                diags.push(match did_you_mean(name, names()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("declare it with `variable \"{name}\" {{}}`")),
                });
            }
        }
    }

    let mut secrets = Vec::new();
    let mut fragments = Vec::new();
    for (name, decl) in declared {
        let value = values.remove(name.as_str()).flatten();
        if sensitive.contains(name) {
            scope.mark_sensitive_var(name);
            if let Some(value) = &value {
                secrets.push((name.clone(), as_text(value)));
                leaves(value, &mut fragments);
            }
        }
        if value.is_none() {
            diags.push(
                Diagnostic::error(Code::VariableUnset, format!("variable `{name}` has no value"))
                    .at(decl.header(), "declared without a default")
                    .help(format!(
                        "set it with `-var {name}=...`, a `-var-file`, or FLEETFORM_VAR_{name}, or give it a default"
                    )),
            );
        }
        scope.set_var(name, value);
    }
    let mut secrets = Secrets::new(secrets);
    secrets.hide_also(fragments);
    (sensitive, secrets)
}

/// The strings and numbers inside a list or object (a scalar is its own text).
fn leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(_) | Value::Null => {}
    }
}

/// A variable's value as text: strings as they are, anything else as JSON.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// A value from the command line or environment: HCL for lists and objects,
/// else a string. `shown`: whether an error may quote the text (never for a
/// sensitive variable).
fn parse_cli_value(
    text: &str,
    source: &str,
    shown: bool,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('[') || trimmed.starts_with('{')) {
        return Some(Value::String(text.to_string()));
    }
    let parsed = hcl_edit::parser::parse_expr(text)
        .map_err(|e| e.message().to_string())
        .and_then(|expr| {
            let empty = Scope::new([], [], [], [], []);
            let mut inner = Diagnostics::default();
            empty.eval(0, &expr, &mut inner).ok_or_else(|| {
                inner
                    .iter()
                    .map(|d| d.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
    match parsed {
        Ok(v) => Some(v),
        Err(_) if !shown => {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("{source}: the value of this sensitive variable starts with `[` or `{{` but is not a valid HCL list or object (the value is not shown)"),
                )
                .help("lists and objects are written in HCL, e.g. `[\"a\", \"b\"]` or `{ k = \"v\" }`; pass a secret that must start with one of them through a -var-file as a quoted string"),
            );
            None
        }
        Err(why) => {
            diags.push(
                Diagnostic::error(Code::InvalidValue, format!("{source}: `{text}` is not a valid HCL value: {why}"))
                    .help("lists and objects are written in HCL, e.g. `[\"a\", \"b\"]` or `{ k = \"v\" }`"),
            );
            None
        }
    }
}

fn undeclared_warning<'a>(
    name: &str,
    at: Option<SourceRef>,
    names: impl Iterator<Item = &'a str>,
) -> Diagnostic {
    let d = Diagnostic::warning(
        Code::VariableUndeclared,
        format!("the variable file sets `{name}`, which is not declared"),
    )
    .at(at, "not declared");
    match did_you_mean(name, names) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d.help(format!(
            "declare it with `variable \"{name}\" {{}}` or remove it"
        )),
    }
}
