//! Canonical formatting of HCL files (`fleetform fmt`).
//!
//! Formatting edits the whitespace that `hcl-edit` keeps around every node
//! (its "decor"), never the nodes themselves, so meaning cannot change and
//! every comment survives. The style is Terraform's: two-space indentation,
//! `=` aligned across consecutive single-line attributes, at most one blank
//! line in a row, multi-line lists with a trailing comma, multi-line objects
//! one item per line, one newline at the end of the file.

use hcl_edit::expr::{Array, Expression, Object, ObjectValueAssignment, ObjectValueTerminator};
use hcl_edit::structure::{Block, Body};
use hcl_edit::{Decor, Decorate, RawString};

/// Formats `text`; an error when it does not parse (nothing is formatted then).
pub fn format_source(text: &str) -> Result<String, hcl_edit::parser::Error> {
    Ok(format_parsed(hcl_edit::parser::parse_body(text)?))
}

/// Formats a parsed body (see [`format_source`]).
pub fn format_parsed(mut body: Body) -> String {
    format_body(&mut body, 0);
    let trailing = comment_block(raw(body.decor().suffix()), 0, false);
    body.decor_mut().clear();
    body.set_prefer_omit_trailing_newline(false);
    let mut out = body.to_string();
    if !trailing.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&trailing);
    }
    let trimmed = out.trim_end_matches(['\n', ' ']).len();
    out.truncate(trimmed);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}

fn raw(r: Option<&RawString>) -> &str {
    r.map_or("", |r| &**r)
}

/// One line of decor: blank, or a comment (trimmed).
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Blank,
    Comment(&'a str),
}

/// Splits decor into the rest of the current line, whole lines, and the part
/// before the node on its own line.
fn split_decor(
    raw: &str,
    starts_at_line_start: bool,
) -> (Option<&str>, Vec<Line<'_>>, Option<&str>) {
    let mut segments: Vec<&str> = raw.split('\n').collect();
    let last = segments.pop().map(str::trim).filter(|s| !s.is_empty());
    if segments.is_empty() {
        return (None, Vec::new(), last);
    }
    let mut rest_of_line = None;
    if !starts_at_line_start {
        let first = segments.remove(0).trim();
        rest_of_line = (!first.is_empty()).then_some(first);
    }
    let lines = segments
        .into_iter()
        .map(|s| match s.trim() {
            "" => Line::Blank,
            comment => Line::Comment(comment),
        })
        .collect();
    (rest_of_line, lines, last)
}

/// Comment lines at `depth`, blank runs folded to one; leading blanks kept only if `keep_leading_blank`.
fn comment_block(raw: &str, depth: usize, keep_leading_blank: bool) -> String {
    let (rest, lines, last) = split_decor(raw, true);
    let mut out = String::new();
    let mut pending_blank = false;
    let mut emitted = keep_leading_blank;
    for line in rest
        .into_iter()
        .map(Line::Comment)
        .chain(lines)
        .chain(last.map(Line::Comment))
    {
        match line {
            Line::Blank => pending_blank = true,
            Line::Comment(c) => {
                if pending_blank && emitted {
                    out.push('\n');
                }
                out.push_str(&indent(depth));
                out.push_str(c);
                out.push('\n');
                pending_blank = false;
                emitted = true;
            }
        }
    }
    out
}

/// Prefix of a node that starts a line at `depth`: comments above it, at most one blank line.
fn line_prefix(
    raw: &str,
    depth: usize,
    first: bool,
    starts_at_line_start: bool,
) -> (String, Option<String>, bool) {
    let (rest, lines, inline) = split_decor(raw, starts_at_line_start);
    let mut out = String::new();
    let mut pending_blank = false;
    let mut emitted = !first;
    let mut had_blank = false;
    for line in lines {
        match line {
            Line::Blank => {
                pending_blank = true;
                had_blank |= emitted;
            }
            Line::Comment(c) => {
                if pending_blank && emitted {
                    out.push('\n');
                }
                out.push_str(&indent(depth));
                out.push_str(c);
                out.push('\n');
                pending_blank = false;
                emitted = true;
            }
        }
    }
    if pending_blank && emitted {
        out.push('\n');
    }
    out.push_str(&indent(depth));
    if let Some(c) = inline {
        out.push_str(c);
        out.push(' ');
    }
    (out, rest.map(str::to_string), had_blank)
}

/// A trailing comment on the same line, as ` # comment`, or nothing.
fn same_line(raw: &str) -> String {
    match raw.trim() {
        "" => String::new(),
        comment => format!(" {comment}"),
    }
}

/// Inline decor between tokens: one space, keeping an inline comment.
fn spaced(raw: &str, before: &str, after: &str) -> Decor {
    match raw.trim() {
        "" => Decor::new(before, after),
        comment => Decor::new(format!("{before}{comment} "), after),
    }
}

fn is_multiline(expr: &Expression) -> bool {
    expr.to_string().contains('\n')
}

fn format_body(body: &mut Body, depth: usize) {
    let mut widths: Vec<Option<usize>> = Vec::new();
    let mut group_start = 0;
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for (i, mut structure) in body.iter_mut().enumerate() {
        let (prefix, _, had_blank) =
            line_prefix(raw(structure.decor().prefix()), depth, i == 0, true);
        let suffix = same_line(raw(structure.decor().suffix()));
        structure.decorate(Decor::new(prefix, suffix));
        if had_blank {
            groups.push((group_start, i));
            group_start = i;
        }
        if let Some(mut attr) = structure.as_attribute_mut() {
            format_expr(attr.value_mut(), depth);
            let value_decor = spaced(raw(attr.get().value.decor().prefix()), " ", "");
            attr.value_mut().decorate(value_decor);
            let key_len = attr.get().key.as_str().chars().count();
            // A multi-line value keeps one space before `=` and ends the run, as in Terraform.
            let single = !is_multiline(&attr.get().value);
            widths.push(single.then_some(key_len));
            if !single {
                groups.push((group_start, i + 1));
                group_start = i + 1;
            }
        } else if let Some(block) = structure.as_block_mut() {
            widths.push(None);
            groups.push((group_start, i + 1));
            group_start = i + 1;
            format_block(block, depth);
        }
    }
    groups.push((group_start, widths.len()));
    let mut pad = vec![1usize; widths.len()];
    for (start, end) in groups {
        let longest = widths[start..end]
            .iter()
            .flatten()
            .max()
            .copied()
            .unwrap_or(0);
        for i in start..end {
            if let Some(w) = widths[i] {
                pad[i] = longest - w + 1;
            }
        }
    }
    for (i, mut structure) in body.iter_mut().enumerate() {
        if let Some(mut attr) = structure.as_attribute_mut() {
            *attr.key_decor_mut() = Decor::new("", " ".repeat(pad[i]));
        }
    }
}

fn format_block(block: &mut Block, depth: usize) {
    block.ident.decorate(("", " "));
    for label in &mut block.labels {
        label.decorate(("", " "));
    }
    let body = &mut block.body;
    let oneline = body.prefer_oneline() && body.len() <= 1 && body.iter().all(|s| s.is_attribute());
    let after_brace = same_line(raw(body.decor().prefix()));
    let values_single_line = body
        .iter()
        .filter_map(|s| s.as_attribute())
        .all(|a| !is_multiline(&a.value));
    if oneline && after_brace.is_empty() && values_single_line {
        for mut structure in body.iter_mut() {
            structure.decorate((" ", " "));
            if let Some(mut attr) = structure.as_attribute_mut() {
                format_expr(attr.value_mut(), depth + 1);
                *attr.key_decor_mut() = Decor::new("", " ");
                attr.value_mut().decorate((" ", ""));
            }
        }
        body.decorate(("", ""));
        return;
    }
    body.set_prefer_oneline(false);
    format_body(body, depth + 1);
    let before_close = comment_block(raw(body.decor().suffix()), depth + 1, false);
    body.decorate(Decor::new(
        after_brace,
        format!("{before_close}{}", indent(depth)),
    ));
}

fn format_expr(expr: &mut Expression, depth: usize) {
    match expr {
        Expression::Array(array) => format_array(array, depth),
        Expression::Object(object) => format_object(object, depth),
        Expression::Parenthesis(inner) => format_expr(inner.inner_mut(), depth),
        _ => {}
    }
}

fn format_array(array: &mut Array, depth: usize) {
    let multiline = array.iter().any(|e| raw(e.decor().prefix()).contains('\n'))
        || raw(Some(array.trailing())).contains('\n');
    if !multiline {
        for (i, element) in array.iter_mut().enumerate() {
            format_expr(element, depth);
            let decor = spaced(
                raw(element.decor().prefix()),
                if i == 0 { "" } else { " " },
                "",
            );
            element.decorate(decor);
        }
        array.set_trailing_comma(false);
        array.set_trailing("");
        return;
    }
    let mut carried: Option<String> = None;
    for (i, element) in array.iter_mut().enumerate() {
        format_expr(element, depth + 1);
        let (mut prefix, rest, _) =
            line_prefix(raw(element.decor().prefix()), depth + 1, i == 0, false);
        if let Some(comment) = carried.take() {
            prefix = format!("{}{comment}\n{prefix}", indent(depth + 1));
        }
        // A comment after the previous element's comma stays on that line.
        let prefix = match rest {
            Some(comment) => format!(" {comment}\n{prefix}"),
            None => format!("\n{prefix}"),
        };
        let suffix = raw(element.decor().suffix()).trim().to_string();
        if !suffix.is_empty() {
            carried = Some(suffix);
        }
        element.decorate(Decor::new(prefix, ""));
    }
    let (rest, lines, _) = split_decor(raw(Some(array.trailing())), false);
    let mut trailing = rest.map(|c| format!(" {c}")).unwrap_or_default();
    trailing.push('\n');
    if let Some(comment) = carried {
        trailing.push_str(&format!("{}{comment}\n", indent(depth + 1)));
    }
    for line in lines {
        if let Line::Comment(c) = line {
            trailing.push_str(&format!("{}{c}\n", indent(depth + 1)));
        }
    }
    trailing.push_str(&indent(depth));
    array.set_trailing_comma(!array.is_empty());
    array.set_trailing(trailing);
}

fn format_object(object: &mut Object, depth: usize) {
    let multiline = object
        .iter()
        .any(|(k, _)| raw(k.decor().prefix()).contains('\n'))
        || raw(Some(object.trailing())).contains('\n');
    let len = object.len();
    if !multiline {
        for (i, (mut key, value)) in object.iter_mut().enumerate() {
            let decor = spaced(raw(key.decor().prefix()), " ", " ");
            key.decorate(decor);
            format_expr(value.expr_mut(), depth);
            value.expr_mut().decorate((" ", ""));
            value.set_assignment(ObjectValueAssignment::Equals);
            value.set_terminator(if i + 1 < len {
                ObjectValueTerminator::Comma
            } else {
                ObjectValueTerminator::None
            });
        }
        object.set_trailing(if len == 0 { "" } else { " " });
        return;
    }
    let mut widths = Vec::with_capacity(len);
    let mut group_breaks = Vec::new();
    let mut previous_ended_line = false;
    for (i, (mut key, value)) in object.iter_mut().enumerate() {
        let (prefix, rest, had_blank) = line_prefix(
            raw(key.decor().prefix()),
            depth + 1,
            i == 0,
            previous_ended_line,
        );
        let mut prefix = match rest {
            Some(comment) => format!("{}{comment}\n{prefix}", indent(depth + 1)),
            None => prefix,
        };
        if i == 0 {
            prefix.insert(0, '\n');
        }
        if had_blank {
            group_breaks.push(i);
        }
        key.decorate(Decor::new(prefix, " "));
        previous_ended_line = true;
        format_expr(value.expr_mut(), depth + 1);
        let comment = same_line(raw(value.expr().decor().suffix()));
        let before = spaced(raw(value.expr().decor().prefix()), " ", "");
        value
            .expr_mut()
            .decorate(Decor::new(raw(before.prefix()).to_string(), comment));
        value.set_assignment(ObjectValueAssignment::Equals);
        value.set_terminator(ObjectValueTerminator::Newline);
        let single = !is_multiline(value.expr());
        let key_len = match key.get() {
            hcl_edit::expr::ObjectKey::Ident(ident) => ident.as_str().chars().count(),
            // Without its decor: a comment above a quoted key is not part of its width.
            hcl_edit::expr::ObjectKey::Expression(e) => {
                let mut bare = e.clone();
                bare.decor_mut().clear();
                bare.to_string().trim().chars().count()
            }
        };
        widths.push(single.then_some(key_len));
        if !single {
            group_breaks.push(i + 1);
        }
    }
    // Align `=` within runs of single-line items, as in bodies.
    let mut pads = vec![1usize; len];
    let mut start = 0;
    group_breaks.push(len);
    for end in group_breaks {
        let end = end.min(len);
        if end <= start {
            continue;
        }
        let longest = widths[start..end]
            .iter()
            .flatten()
            .max()
            .copied()
            .unwrap_or(0);
        for i in start..end {
            if let Some(w) = widths[i] {
                pads[i] = longest - w + 1;
            }
        }
        start = end;
    }
    for (i, (mut key, _)) in object.iter_mut().enumerate() {
        let prefix = raw(key.decor().prefix()).to_string();
        key.decorate(Decor::new(prefix, " ".repeat(pads[i])));
    }
    let trailing = comment_block(raw(Some(object.trailing())), depth + 1, false);
    object.set_trailing(format!("{trailing}{}", indent(depth)));
}

/// The outcome of formatting one file of a directory.
#[derive(Debug)]
pub struct FormattedFile {
    /// Where the file is.
    pub path: std::path::PathBuf,
    /// Its text as read.
    pub original: String,
    /// Its canonical text.
    pub formatted: String,
}

impl FormattedFile {
    /// True when formatting would change the file.
    pub fn changed(&self) -> bool {
        self.original != self.formatted
    }

    /// A unified diff from the original to the formatted text.
    pub fn diff(&self) -> String {
        let name = self.path.display().to_string();
        similar::TextDiff::from_lines(&self.original, &self.formatted)
            .unified_diff()
            .header(&name, &name)
            .to_string()
    }
}

/// Formats every `*.hcl` file of `dir` in memory: the results, and diagnostics
/// for files that cannot be read or parsed (those are left out of the results).
pub fn format_dir(
    dir: &std::path::Path,
) -> (
    Vec<FormattedFile>,
    crate::source::SourceSet,
    Vec<crate::Diagnostic>,
) {
    let (files, sources, diagnostics) = crate::config::parse_dir(dir);
    let formatted = files
        .into_iter()
        .map(|parsed| {
            let file = sources.file(parsed.id);
            FormattedFile {
                path: file.path.clone(),
                original: file.text.to_string(),
                formatted: format_parsed(parsed.body),
            }
        })
        .collect();
    (formatted, sources, diagnostics)
}

/// Writes `text` to `path` atomically, keeping the file's permissions.
pub fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    crate::files::write_atomically(path, text.as_bytes(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        format_source(text).unwrap_or_else(|e| panic!("parse: {e}"))
    }

    #[test]
    fn indents_aligns_and_keeps_every_comment() {
        let input = "# head\n\n\n# c1\nfleet \"x\" { # after brace\n# inner\n      a = 1 # trailing\n  bbb = [\n 1, # one\n      2\n]\n  obj = {\n k = 1 # kc\n    # lone\n  kk = \"v\"\n }\n\n\n  b {\n c = 2\n  }\n    # end comment\n}\none { x = 1 }\n# eof comment\n\n\n";
        let expected = "# head\n\n# c1\nfleet \"x\" { # after brace\n  # inner\n  a = 1 # trailing\n  bbb = [\n    1, # one\n    2,\n  ]\n  obj = {\n    k  = 1 # kc\n    # lone\n    kk = \"v\"\n  }\n\n  b {\n    c = 2\n  }\n  # end comment\n}\none { x = 1 }\n# eof comment\n";
        assert_eq!(fmt(input), expected);
    }

    #[test]
    fn formatting_is_idempotent() {
        let input =
            "a {\nx = {\n\"us-east-1\" = \"ami-1\"\n  b = [1,2]\n}\nlist = [\n\"a\",\n\"b\"]\n}\n";
        let once = fmt(input);
        assert_eq!(fmt(&once), once);
        assert_eq!(
            once,
            "a {\n  x = {\n    \"us-east-1\" = \"ami-1\"\n    b           = [1, 2]\n  }\n  list = [\n    \"a\",\n    \"b\",\n  ]\n}\n"
        );
    }

    #[test]
    fn a_comment_above_a_quoted_key_does_not_widen_the_alignment() {
        let input = "x = {\n  \"a\" = 1\n\n  # a comment longer than any key\n  \"bb\" = 2\n  \"c\" = 3\n}\n";
        assert_eq!(
            fmt(input),
            "x = {\n  \"a\" = 1\n\n  # a comment longer than any key\n  \"bb\" = 2\n  \"c\"  = 3\n}\n"
        );
    }

    #[test]
    fn leaves_heredocs_and_templates_alone() {
        let input = "w {\n    user_data = <<-EOT\n    #!/bin/sh\n      echo ${var.x}\n    EOT\n}\n";
        let out = fmt(input);
        assert!(
            out.contains("  user_data = <<-EOT\n    #!/bin/sh\n      echo ${var.x}\n    EOT\n"),
            "{out}"
        );
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn refuses_input_that_does_not_parse() {
        assert!(format_source("a = {").is_err());
    }

    #[test]
    fn empty_input_stays_empty() {
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("\n\n"), "");
        assert_eq!(fmt("# only\n"), "# only\n");
    }
}
