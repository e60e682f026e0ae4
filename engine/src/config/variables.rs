//! Variable values: defaults, `FLEETFORM_VAR_*`, `-var-file` and `-var`, in
//! rising precedence (as Terraform orders them), converted to the variable's
//! `type` and checked by its `validation` blocks.

pub mod types;

use super::fields::{span_of, want, Decl, Fields};
use super::scope::Scope;
use super::{read_var_file, Inputs};
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::sensitive::Secrets;
use crate::source::{SourceRef, SourceSet};
use hcl::Value;
use hcl_edit::structure::Structure;
use std::collections::BTreeMap;
use types::Type;

/// Where a variable's value came from, for messages about it.
enum Origin {
    Default(Option<SourceRef>),
    Env,
    VarFile {
        display: String,
        at: Option<SourceRef>,
    },
    Cli,
}

impl Origin {
    /// The value's source, as a phrase: "the value of `-var n=...`".
    fn describe(&self, name: &str, sources: &SourceSet) -> String {
        match self {
            Origin::Default(_) => "its default".to_string(),
            Origin::Env => format!("the value of the environment variable FLEETFORM_VAR_{name}"),
            Origin::Cli => format!("the value of `-var {name}=...`"),
            Origin::VarFile { display, at } => match at {
                Some(at) => {
                    let lc = sources.line_col(at);
                    format!("the value in `{display}` at {}:{}", lc.line, lc.column)
                }
                None => format!("the value in `{display}`"),
            },
        }
    }

    fn span(&self) -> Option<SourceRef> {
        match self {
            Origin::Default(at) | Origin::VarFile { at, .. } => at.clone(),
            Origin::Env | Origin::Cli => None,
        }
    }
}

/// Gives every declared variable its value in `scope` (marking the sensitive
/// ones there) and returns the names marked sensitive and their values.
pub(super) fn resolve(
    declared: &[(String, Decl<'_>)],
    inputs: &Inputs,
    sources: &mut SourceSet,
    scope: &mut Scope<'static>,
    diags: &mut Diagnostics,
) -> (Vec<String>, Secrets) {
    // Defaults may not refer to anything: they are evaluated in an empty scope.
    let empty = Scope::new([], [], [], [], []);
    let mut values: BTreeMap<&str, Option<(Value, Origin)>> = BTreeMap::new();
    let mut sensitive = Vec::new();
    let mut typed: BTreeMap<&str, (Type, Option<SourceRef>)> = BTreeMap::new();
    let mut all_fields = Vec::new();
    let mut bad_default: Vec<String> = Vec::new();
    // Variables given a value that could not be read (already reported):
    // not reported again as having none.
    let mut unparsed: Vec<String> = Vec::new();
    for (name, decl) in declared {
        let what = format!("variable \"{name}\"");
        let f = Fields::read(
            decl.file,
            &decl.block.body,
            &what,
            &["default", "description", "sensitive", "type"],
            &["validation"],
            diags,
        );
        if let Some(attr) = f.get("type") {
            let mut literal = |e: &hcl_edit::expr::Expression| {
                empty.eval(decl.file, e, &mut Diagnostics::default())
            };
            match types::parse(&attr.value, &mut literal) {
                Ok(ty) => {
                    typed.insert(name.as_str(), (ty, span_of(decl.file, &attr.value)));
                }
                Err(bad) => diags.push(
                    Diagnostic::error(Code::Type, format!("variable `{name}`: {}", bad.message))
                        .at(
                            bad.span
                                .map(|span| SourceRef { file: decl.file, span })
                                .or_else(|| span_of(decl.file, &attr.value)),
                            "not a type",
                        )
                        .help("e.g. `type = list(string)` or `type = object({ max = number, spot = optional(bool, false) })`"),
                ),
            }
        }
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
        let mut default = f.value(&empty, "default", diags);
        // A default of the wrong type is an error even when another value is given.
        if let (Some((ty, _)), Some((v, at))) = (typed.get(name.as_str()), &default) {
            if let Err(why) = types::convert(v, ty) {
                let why = if sensitive.contains(name) {
                    "(the details are not shown: the variable is sensitive)".to_string()
                } else {
                    why
                };
                diags.push(
                    Diagnostic::error(
                        Code::Type,
                        format!("variable `{name}`: its default is not of type {ty}: {why}"),
                    )
                    .at(at.clone(), format!("not of type {ty}"))
                    .help(format!(
                        "give `{name}` a default of type {ty}, or change its type"
                    )),
                );
                bad_default.push(name.clone());
                default = None;
            }
        }
        values.insert(
            name.as_str(),
            default.map(|(v, at)| (v, Origin::Default(at))),
        );
        all_fields.push(f);
    }
    let names = || declared.iter().map(|(n, _)| n.as_str());

    for (name, text) in &inputs.env {
        // Like TF_VAR_*, environment values for undeclared variables are ignored.
        if let Some(slot) = values.get_mut(name.as_str()) {
            let shown = !sensitive.contains(name);
            let complex = cli_mode(typed.get(name.as_str()));
            match parse_cli_value(
                text,
                &format!("FLEETFORM_VAR_{name}"),
                shown,
                complex,
                diags,
            ) {
                Some(v) => *slot = Some((v, Origin::Env)),
                None => unparsed.push(name.clone()),
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
                                Some(v) => {
                                    *slot = Some((
                                        v,
                                        Origin::VarFile {
                                            display: display.clone(),
                                            at: span_of(parsed.id, &attr.value),
                                        },
                                    ))
                                }
                                None => {
                                    unparsed.push(key.to_string());
                                    diags.push(
                                        Diagnostic::error(
                                            Code::InvalidValue,
                                            format!("the value of `{key}` in `{display}` is not a literal HCL value (it is not shown: variable files may hold secrets)"),
                                        )
                                        .at(at, "set here")
                                        .help(format!("write `{key} = \"...\"`, a number, or a list or object of them; variable files cannot refer to anything")),
                                    )
                                }
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
                let complex = cli_mode(typed.get(name));
                match parse_cli_value(text, &format!("-var {name}"), shown, complex, diags) {
                    Some(v) => *slot = Some((v, Origin::Cli)),
                    None => unparsed.push(name.to_string()),
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
    for ((name, decl), f) in declared.iter().zip(&all_fields) {
        let is_sensitive = sensitive.contains(name);
        let mut failed = bad_default.contains(name) || unparsed.contains(name);
        let value = match (
            values.remove(name.as_str()).flatten(),
            typed.get(name.as_str()),
        ) {
            (Some((value, origin)), Some((ty, type_at))) => {
                match types::convert(&value, ty) {
                    Ok(converted) => Some(converted),
                    Err(why) => {
                        // A sensitive value's keys and shape stay unsaid.
                        let why = if is_sensitive {
                            "(the details are not shown: the variable is sensitive)".to_string()
                        } else {
                            why
                        };
                        let from = origin.describe(name, sources);
                        let d = Diagnostic::error(
                            Code::Type,
                            format!("variable `{name}`: {from} is not of type {ty}: {why}"),
                        );
                        let d = match origin.span() {
                            Some(at) => d.at(Some(at), format!("not of type {ty}")),
                            None => d.at(type_at.clone(), "the type it must have"),
                        };
                        diags.push(d.help(match origin {
                            Origin::Env | Origin::Cli if ty.is_complex() => format!(
                                "on the command line and in FLEETFORM_VAR_{name}, a {ty} is written in HCL, e.g. `[\"a\", \"b\"]` or `{{ key = \"value\" }}`"
                            ),
                            _ => format!("give `{name}` a value of type {ty}"),
                        }));
                        failed = true;
                        None
                    }
                }
            }
            (value, _) => value.map(|(v, _)| v),
        };
        if let Some(value) = &value {
            validate(name, decl, f, value, is_sensitive, diags);
        }
        if sensitive.contains(name) {
            scope.mark_sensitive_var(name);
            if let Some(value) = &value {
                secrets.push((name.clone(), as_text(value)));
                leaves(value, &mut fragments);
            }
        }
        if value.is_none() && !failed {
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

/// How a command-line value of a variable of this type is read: as HCL
/// (`Some(true)`), as text (`Some(false)`), or by its look (`None`: no type
/// or `any`, which mean the same).
fn cli_mode(ty: Option<&(Type, Option<SourceRef>)>) -> Option<bool> {
    match ty {
        None | Some((Type::Any, _)) => None,
        Some((ty, _)) => Some(ty.is_complex()),
    }
}

/// A value from the command line or environment, as Terraform reads one:
/// HCL for a variable whose type is a collection or structure (`complex`),
/// the text itself for a string, number or bool (converted later), and for
/// an untyped (or `any`) variable HCL when it looks like a list or object,
/// else text.
/// `shown`: whether an error may quote the text (never for a sensitive
/// variable).
fn parse_cli_value(
    text: &str,
    source: &str,
    shown: bool,
    complex: Option<bool>,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let trimmed = text.trim_start();
    let hcl = match complex {
        Some(complex) => complex,
        None => trimmed.starts_with('[') || trimmed.starts_with('{'),
    };
    if !hcl {
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
                    format!("{source}: the value of this sensitive variable is not a valid HCL list or object (the value is not shown)"),
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

/// Checks the `validation` blocks of variable `name` against its value: each
/// `condition` may use only `var.NAME`; a false one is an error with its
/// `error_message` at the variable.
fn validate(
    name: &str,
    decl: &Decl<'_>,
    f: &Fields<'_>,
    value: &Value,
    sensitive: bool,
    diags: &mut Diagnostics,
) {
    let mut blocks = f.blocks("validation").peekable();
    if blocks.peek().is_none() {
        return;
    }
    let mut scope = Scope::new([name.to_string()], [], [], [], []);
    scope.set_var(name, Some(value.clone()));
    if sensitive {
        scope.mark_sensitive_var(name);
    }
    for block in blocks {
        let v = Fields::read(
            decl.file,
            &block.body,
            "validation",
            &["condition", "error_message"],
            &[],
            diags,
        );
        let block_at = span_of(decl.file, &block.ident);
        let (Some(condition), Some(message)) = (v.get("condition"), v.get("error_message")) else {
            for missing in ["condition", "error_message"] {
                if v.get(missing).is_none() {
                    diags.push(
                        Diagnostic::error(
                            Code::Missing,
                            format!("a validation block of variable `{name}` has no `{missing}`"),
                        )
                        .at(block_at.clone(), "this validation")
                        .help("write `validation { condition = ..., error_message = \"...\" }`"),
                    );
                }
            }
            continue;
        };
        let mut foreign = false;
        for reference in super::scope::references(&condition.value) {
            let own = reference.root == "var" && reference.name.as_deref() == Some(name);
            if !own {
                foreign = true;
                let written = match &reference.name {
                    Some(n) => format!("{}.{n}", reference.root),
                    None => reference.root.clone(),
                };
                diags.push(
                    Diagnostic::error(
                        Code::UndefinedReference,
                        format!("the validation of variable `{name}` refers to `{written}`"),
                    )
                    .at(
                        reference.span.map(|span| SourceRef {
                            file: decl.file,
                            span,
                        }),
                        "not this variable",
                    )
                    .help(format!("a validation condition may use only `var.{name}`")),
                );
            }
        }
        if foreign {
            continue;
        }
        let Some(result) = scope.eval(decl.file, &condition.value, diags) else {
            continue;
        };
        match result {
            Value::Bool(true) => {}
            Value::Bool(false) => {
                let text = if scope.is_sensitive(&message.value) {
                    None
                } else {
                    scope.eval(decl.file, &message.value, diags)
                };
                let text = match text {
                    Some(Value::String(s)) => s,
                    Some(_) | None if sensitive => format!("the value of sensitive variable `{name}` is not valid"),
                    _ => format!("the value of variable `{name}` is not valid"),
                };
                diags.push(
                    Diagnostic::error(Code::InvalidValue, text)
                        .at(decl.header(), "this variable's validation failed")
                        .help(format!("give `{name}` a value for which the condition holds")),
                );
            }
            other => diags.push(
                Diagnostic::error(
                    Code::Type,
                    format!(
                        "the validation condition of variable `{name}` must be true or false, not {}",
                        super::functions::describe(&other)
                    ),
                )
                .at(span_of(decl.file, &condition.value), "not a bool")
                .help("write a comparison, e.g. `length(var.NAME) > 0`"),
            ),
        }
    }
}
