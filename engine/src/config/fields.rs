//! Reading one HCL body: which attributes and blocks it may hold, their
//! evaluated values, and typed conversions that report mismatches at the span
//! of the value. The block decoders in `decode` are written in these terms.

use super::scope::{region_span, uses_region, Scope};
use crate::diagnostic::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::model::{Duration, Origin};
use crate::source::{FileId, SourceRef};
use hcl::Value;
use hcl_edit::structure::{Attribute, Block, Body, Structure};
use hcl_edit::Span;
use std::collections::BTreeMap;

/// A block together with the file it came from.
#[derive(Clone, Copy)]
pub(super) struct Decl<'a> {
    pub file: FileId,
    pub block: &'a Block,
}

impl<'a> Decl<'a> {
    /// Span of `kind "label"`: where a block is best pointed at.
    pub fn header(&self) -> Option<SourceRef> {
        let start = self.block.ident.span()?.start;
        let end = self
            .block
            .labels
            .last()
            .and_then(Span::span)
            .or_else(|| self.block.ident.span())?
            .end;
        Some(SourceRef {
            file: self.file,
            span: start..end,
        })
    }

    /// The block's single label, reported if absent, extra, or not a valid name.
    pub fn name(&self, kind: &str, diags: &mut Diagnostics) -> Option<String> {
        match self.block.labels.as_slice() {
            [label] => {
                let name = label.as_str();
                let valid = name.len() <= 64
                    && name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if valid {
                    Some(name.to_string())
                } else {
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("`{name}` is not a valid {kind} name"),
                        )
                        .at(span_of(self.file, label), "invalid name")
                        .help("names start with a letter and use letters, digits, `-` and `_` (at most 64)"),
                    );
                    None
                }
            }
            [] => {
                diags.push(
                    Diagnostic::error(Code::Missing, format!("{kind} block has no name"))
                        .at(self.header(), "name missing")
                        .help(format!("write `{kind} \"NAME\" {{ ... }}`")),
                );
                None
            }
            [_, extra, ..] => {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!("{kind} block has more than one label"),
                    )
                    .at(span_of(self.file, extra), "extra label")
                    .help(format!("write `{kind} \"NAME\" {{ ... }}` with one name")),
                );
                None
            }
        }
    }
}

/// Location of anything with a span, in `file`.
pub(super) fn span_of(file: FileId, item: &impl Span) -> Option<SourceRef> {
    item.span().map(|span| SourceRef { file, span })
}

/// The attributes and nested blocks of one body, after checking names.
pub(super) struct Fields<'a> {
    file: FileId,
    what: String,
    attributes: BTreeMap<&'a str, &'a Attribute>,
    blocks: Vec<&'a Block>,
    /// Inside a worker type: `region` is a name there, but only the
    /// attributes read with [`Fields::regional_value`] may use it.
    in_worker_type: bool,
}

/// The value of an attribute that may use `region`.
pub(super) enum Regional {
    /// It does not use `region`: one value for every region.
    Same(Value),
    /// It does: its value in each region, in the worker type's order.
    PerRegion(Vec<(String, Value)>),
}

impl<'a> Fields<'a> {
    /// Checks `body` against the allowed attribute and block names of `what`.
    pub fn read(
        file: FileId,
        body: &'a Body,
        what: &str,
        attribute_names: &[&str],
        block_names: &[&str],
        diags: &mut Diagnostics,
    ) -> Fields<'a> {
        Self::read_structures(file, body.iter(), what, attribute_names, block_names, diags)
    }

    /// Like [`Fields::read`], for a body given as its structures in order:
    /// an instance's shared body with its own made blocks in place
    /// (`repeat::overlaid`), which is not a [`Body`] of its own.
    pub fn read_structures(
        file: FileId,
        structures: impl IntoIterator<Item = &'a Structure>,
        what: &str,
        attribute_names: &[&str],
        block_names: &[&str],
        diags: &mut Diagnostics,
    ) -> Fields<'a> {
        let mut fields = Fields {
            file,
            what: what.to_string(),
            attributes: BTreeMap::new(),
            blocks: Vec::new(),
            in_worker_type: false,
        };
        let candidates = || attribute_names.iter().chain(block_names).copied();
        for structure in structures {
            match structure {
                Structure::Attribute(attr) => {
                    let key = attr.key.as_str();
                    if attribute_names.contains(&key) {
                        if fields.attributes.insert(key, attr).is_some() {
                            diags.push(
                                Diagnostic::error(
                                    Code::Duplicate,
                                    format!("`{key}` is set twice in {what}"),
                                )
                                .at(span_of(file, &attr.key), "set again here")
                                .help("keep one of the two"),
                            );
                        }
                    } else if block_names.contains(&key) {
                        diags.push(
                            Diagnostic::error(
                                Code::Type,
                                format!("`{key}` is a block in {what}, not an attribute"),
                            )
                            .at(span_of(file, &attr.key), "written as an attribute")
                            .help(format!("write `{key} {{ ... }}` without `=`")),
                        );
                    } else {
                        diags.push(unknown(
                            Code::UnknownAttribute,
                            format!("{what} has no attribute `{key}`"),
                            span_of(file, &attr.key),
                            key,
                            candidates(),
                        ));
                    }
                }
                Structure::Block(block) => {
                    let ident = block.ident.as_str();
                    if block_names.contains(&ident) {
                        fields.blocks.push(block);
                    } else if attribute_names.contains(&ident) {
                        diags.push(
                            Diagnostic::error(
                                Code::Type,
                                format!("`{ident}` is an attribute in {what}, not a block"),
                            )
                            .at(span_of(file, &block.ident), "written as a block")
                            .help(format!("write `{ident} = ...`")),
                        );
                    } else {
                        diags.push(unknown(
                            Code::UnknownBlock,
                            format!("{what} has no block `{ident}`"),
                            span_of(file, &block.ident),
                            ident,
                            candidates(),
                        ));
                    }
                }
            }
        }
        fields
    }

    /// Marks the body as part of a worker type, where `region` is defined
    /// but only some attributes may depend on it.
    pub fn in_worker_type(mut self) -> Self {
        self.in_worker_type = true;
        self
    }

    /// Reports a use of `region` in an attribute that is the same in every
    /// region; true if there was one.
    fn refuse_region(&self, name: &str, attr: &Attribute, diags: &mut Diagnostics) -> bool {
        if !self.in_worker_type || !uses_region(&attr.value) {
            return false;
        }
        let at = region_span(&attr.value)
            .map(|span| SourceRef {
                file: self.file,
                span,
            })
            .or_else(|| span_of(self.file, &attr.value));
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("`{name}` of {} cannot depend on `region`", self.what),
            )
            .at(at, "uses `region`")
            .help("`region` may be used in `user_data`, `tags` and `iam_instance_profile` of a worker type and in `user_data` of an instance type; this attribute holds for every region at once (per-region differences go in `regions` of an `instance_type` block or in the network)"),
        );
        true
    }

    /// Reports a sensitive value in an attribute that may not hold one.
    fn refuse_sensitive(&self, name: &str, at: Option<SourceRef>, diags: &mut Diagnostics) {
        // Only user data keeps a secret out of plans and state; anywhere
        // else it would be shown, tagged or recorded.
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("`{name}` of {} cannot take a sensitive value", self.what),
            )
            .at(at, "uses a sensitive variable")
            .help("only `user_data` may use sensitive variables (plans and state withhold it); names, tags and the rest are shown in plans and visible in EC2"),
        );
    }

    /// Evaluates attribute `name`, which may use `region`: once when it does
    /// not, else once per region of `regions`. Also says whether the value
    /// derives from a sensitive variable; one that does is refused unless
    /// `may_be_sensitive`.
    pub fn regional_value(
        &self,
        scope: &Scope,
        name: &str,
        regions: &[String],
        may_be_sensitive: bool,
        diags: &mut Diagnostics,
    ) -> Option<(Regional, Option<SourceRef>, bool)> {
        let attr = self.get(name)?;
        let at = span_of(self.file, &attr.value);
        let sensitive = scope.is_sensitive(&attr.value);
        if sensitive && !may_be_sensitive {
            self.refuse_sensitive(name, at, diags);
            return None;
        }
        if !uses_region(&attr.value) {
            let value = scope.eval(self.file, &attr.value, diags)?;
            return Some((Regional::Same(value), at, sensitive));
        }
        let mut values = Vec::with_capacity(regions.len());
        for region in regions {
            // The first failure is reported; the other regions would repeat it.
            let value = scope.eval_in_region(self.file, &attr.value, region, diags)?;
            values.push((region.clone(), value));
        }
        Some((Regional::PerRegion(values), at, sensitive))
    }

    /// The attribute named `name`, if set.
    pub fn get(&self, name: &str) -> Option<&'a Attribute> {
        self.attributes.get(name).copied()
    }

    /// Every nested block named `name`.
    pub fn blocks(&self, name: &'a str) -> impl Iterator<Item = &'a Block> + '_ {
        self.blocks
            .iter()
            .copied()
            .filter(move |b| b.ident.as_str() == name)
    }

    /// At most one nested block named `name`; a second is reported.
    pub fn single_block(&self, name: &'a str, diags: &mut Diagnostics) -> Option<&'a Block> {
        let mut found = self.blocks(name);
        let first = found.next();
        for extra in found {
            diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    format!("{} has more than one `{name}` block", self.what),
                )
                .at(span_of(self.file, &extra.ident), "second block")
                .help("merge them into one"),
            );
        }
        first
    }

    /// Evaluates attribute `name`: its value and the span of its expression.
    pub fn value(
        &self,
        scope: &Scope,
        name: &str,
        diags: &mut Diagnostics,
    ) -> Option<(Value, Option<SourceRef>)> {
        let attr = self.get(name)?;
        let at = span_of(self.file, &attr.value);
        if self.refuse_region(name, attr, diags) {
            return None;
        }
        if scope.is_sensitive(&attr.value) {
            self.refuse_sensitive(name, at, diags);
            return None;
        }
        let value = scope.eval(self.file, &attr.value, diags)?;
        Some((value, at))
    }

    /// Like [`Fields::value`] but reports a missing attribute at `block_at`.
    pub fn required(
        &self,
        scope: &Scope,
        name: &str,
        block_at: Option<SourceRef>,
        diags: &mut Diagnostics,
    ) -> Option<(Value, Option<SourceRef>)> {
        if self.get(name).is_none() {
            diags.push(
                Diagnostic::error(
                    Code::Missing,
                    format!("{} is missing required attribute `{name}`", self.what),
                )
                .at(block_at, "declared here")
                .help(format!("add `{name} = ...` to this block")),
            );
            return None;
        }
        self.value(scope, name, diags)
    }

    /// Records the value spans of every attribute in `origin`, under `prefix`.
    pub fn record(&self, origin: &mut Origin, prefix: &str) {
        for (name, attr) in &self.attributes {
            if let Some(at) = span_of(self.file, &attr.value) {
                origin.attributes.insert(format!("{prefix}{name}"), at);
            }
        }
    }
}

pub(super) fn unknown<'c>(
    code: Code,
    message: String,
    at: Option<SourceRef>,
    word: &str,
    candidates: impl Iterator<Item = &'c str> + Clone,
) -> Diagnostic {
    let d = Diagnostic::error(code, message);
    let d = match did_you_mean(word, candidates.clone()) {
        Some(s) => d
            .at(at, format!("did you mean `{s}`?"))
            .help(format!("did you mean `{s}`?")),
        None => d.at(at, "not recognised"),
    };
    let list: Vec<&str> = candidates.collect();
    if d.help.is_some() || list.is_empty() {
        d
    } else {
        d.help(format!("allowed here: {}", list.join(", ")))
    }
}

/// Typed conversions of evaluated values, reporting mismatches at `at`.
pub(super) mod want {
    use super::*;
    use crate::config::functions::describe;

    fn mismatch(
        at: &Option<SourceRef>,
        what: &str,
        expected: &str,
        got: &Value,
        example: &str,
    ) -> Diagnostic {
        Diagnostic::error(
            Code::Type,
            format!("`{what}` must be {expected}, got {}", describe(got)),
        )
        .at(at.clone(), format!("expected {expected}"))
        .help(format!("write e.g. `{example}`"))
    }

    /// A string.
    pub fn string(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                diags.push(mismatch(
                    at,
                    what,
                    "a string",
                    other,
                    &format!("{} = \"...\"", leaf(what)),
                ));
                None
            }
        }
    }

    /// A number of the kind `parse` accepts (numeric strings, as from `-var`, too);
    /// reported as `expected` with `example` when it is not.
    fn numeric<T: std::str::FromStr>(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        (expected, example): (&str, &str),
        parse: impl Fn(&hcl::Number) -> Option<T>,
        diags: &mut Diagnostics,
    ) -> Option<T> {
        let parsed = match v {
            Value::Number(n) => parse(n),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if parsed.is_none() {
            let example = format!("{} = {example}", leaf(what));
            diags.push(mismatch(at, what, expected, v, &example));
        }
        parsed
    }

    /// A whole number, signed.
    pub fn integer(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<i64> {
        numeric(
            v,
            at,
            what,
            ("a whole number", "10"),
            hcl::Number::as_i64,
            diags,
        )
    }

    /// A whole number in 0..=u32::MAX.
    pub fn count(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<u32> {
        let n = integer(v, at, what, diags)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!("`{what}` must be between 0 and {}, got {n}", u32::MAX),
                    )
                    .at(at.clone(), "out of range")
                    .help("use a non-negative whole number"),
                );
                None
            }
        }
    }

    /// Any number.
    pub fn number(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<f64> {
        numeric(v, at, what, ("a number", "100"), hcl::Number::as_f64, diags)
    }

    /// A bool.
    pub fn boolean(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" || s == "false" => Some(s == "true"),
            other => {
                diags.push(mismatch(
                    at,
                    what,
                    "true or false",
                    other,
                    &format!("{} = true", leaf(what)),
                ));
                None
            }
        }
    }

    /// A list of strings.
    pub fn string_list(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<Vec<String>> {
        let example = format!("{} = [\"a\", \"b\"]", leaf(what));
        match v {
            Value::Array(items) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                if strings.is_none() {
                    diags.push(
                        Diagnostic::error(
                            Code::Type,
                            format!("`{what}` must be a list of strings"),
                        )
                        .at(at.clone(), "an element is not a string")
                        .help(format!("write e.g. `{example}`")),
                    );
                }
                strings
            }
            other => {
                diags.push(mismatch(at, what, "a list of strings", other, &example));
                None
            }
        }
    }

    /// An object whose values are strings (numbers and bools are turned into strings).
    pub fn string_map(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<BTreeMap<String, String>> {
        let example = format!("{} = {{ key = \"value\" }}", leaf(what));
        match v {
            Value::Object(object) => {
                let mut map = BTreeMap::new();
                for (key, value) in object {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => {
                            diags.push(
                                Diagnostic::error(
                                    Code::Type,
                                    format!(
                                        "`{what}.{key}` must be a string, got {}",
                                        describe(other)
                                    ),
                                )
                                .at(at.clone(), "in this map")
                                .help(format!("write e.g. `{example}`")),
                            );
                            return None;
                        }
                    };
                    map.insert(key.clone(), text);
                }
                Some(map)
            }
            other => {
                diags.push(mismatch(at, what, "a map of strings", other, &example));
                None
            }
        }
    }

    /// An object whose values are lists of strings (`{ "us-east-1" = ["sg-..."] }`).
    pub fn string_list_map(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<BTreeMap<String, Vec<String>>> {
        let example = format!("{} = {{ \"key\" = [\"a\", \"b\"] }}", leaf(what));
        match v {
            Value::Object(object) => {
                let mut map = BTreeMap::new();
                for (key, value) in object {
                    let list = string_list(value, at, &format!("{what}.{key}"), diags)?;
                    map.insert(key.clone(), list);
                }
                Some(map)
            }
            other => {
                diags.push(mismatch(
                    at,
                    what,
                    "a map of lists of strings",
                    other,
                    &example,
                ));
                None
            }
        }
    }

    /// A duration like `96h`.
    pub fn duration(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        diags: &mut Diagnostics,
    ) -> Option<Duration> {
        let text = string(v, at, what, diags)?;
        match Duration::parse(&text) {
            Ok(d) => Some(d),
            Err(why) => {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!("`{what}` is not a duration: {why}"),
                    )
                    .at(at.clone(), "not a duration")
                    .help(format!(
                        "write e.g. `{} = \"96h\"` or `\"30d\"`",
                        leaf(what)
                    )),
                );
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub fn one_of<T: Copy>(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        choices: &[(&str, T)],
        diags: &mut Diagnostics,
    ) -> Option<T> {
        let text = string(v, at, what, diags)?;
        if let Some((_, value)) = choices.iter().find(|(word, _)| *word == text) {
            return Some(*value);
        }
        let words: Vec<String> = choices.iter().map(|(w, _)| format!("\"{w}\"")).collect();
        diags.push(
            Diagnostic::error(Code::InvalidValue, format!("`{what}` cannot be \"{text}\""))
                .at(at.clone(), format!("expected {}", words.join(" or ")))
                .help(format!("use one of {}", words.join(", "))),
        );
        None
    }

    /// A reference `kind.NAME` (or a plain name string) to a declared object of `kind`.
    pub fn reference(
        v: &Value,
        at: &Option<SourceRef>,
        what: &str,
        kind: &str,
        diags: &mut Diagnostics,
    ) -> Option<String> {
        if let Value::Object(object) = v {
            if let (Some(Value::String(k)), Some(Value::String(name))) =
                (object.get("kind"), object.get("name"))
            {
                if k == kind {
                    return Some(name.clone());
                }
                diags.push(
                    Diagnostic::error(
                        Code::Type,
                        format!("`{what}` must refer to a {kind}, not a {k}"),
                    )
                    .at(at.clone(), format!("a {k}"))
                    .help(format!("write `{} = {kind}.NAME`", leaf(what))),
                );
                return None;
            }
        }
        diags.push(
            Diagnostic::error(
                Code::Type,
                format!("`{what}` must be a reference to a {kind}"),
            )
            .at(at.clone(), format!("expected {kind}.NAME"))
            .help(format!("write `{} = {kind}.NAME`", leaf(what))),
        );
        None
    }

    fn leaf(what: &str) -> &str {
        what.rsplit('.').next().unwrap_or(what)
    }
}
