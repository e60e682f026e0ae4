//! Where a file's top-level `worker_type` blocks are, found by a scan of
//! its text, so that a large fleet is parsed in two parts: everything else
//! first (what the worker types refer to), then each file's worker types
//! alone, decoded and freed one file at a time. Holding every file's syntax
//! tree at once costs about 35 times the text; this way only one file's
//! worker types are held per core.
//!
//! The scan only has to be right about where blocks begin and end; the
//! parser still reads every byte. Each part is parsed from a copy of the
//! whole text with the other part blanked out (spaces, newlines kept), so
//! every span, line and column is the file's own. A part that does not
//! parse into exactly the blocks the scan found sends the whole load back
//! to parsing each file whole ([`super::load_dir_with`]), which is also how
//! a syntax error inside a worker type is reported as before.

use std::ops::Range;

/// The keyword of the blocks the scan finds.
const KEYWORD: &[u8] = b"worker_type";

/// The byte ranges of the top-level `worker_type` blocks of `text`, from
/// the keyword to the closing brace, in order. `None` when the text does
/// not scan cleanly (an unclosed string, comment or brace, a stray `}`):
/// it is then parsed whole, and the parser says what is wrong.
pub(super) fn worker_type_ranges(text: &str) -> Option<Vec<Range<usize>>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    // What encloses the position: a `{`, `(` or `[` of code, an
    // interpolation of a string (`${`, `%{`), or a quoted string.
    let mut stack: Vec<Frame> = Vec::new();
    // A `worker_type` keyword at the top level: where it starts, and
    // whether its body's `{` was seen.
    let mut block: Option<(usize, bool)> = None;
    let mut line_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(Frame::Quoted) = stack.last() {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'$' | b'%' if bytes.get(i + 1) == Some(&b) && bytes.get(i + 2) == Some(&b'{') => {
                    i += 2;
                }
                b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => {
                    stack.push(Frame::Interpolation);
                    i += 1;
                }
                b'\n' => return None,
                _ => {}
            }
            i += 1;
            continue;
        }
        let top = stack.is_empty();
        match b {
            b'\n' => {
                if top && matches!(block, Some((_, false))) {
                    // A block's header is on one line: this was not one.
                    block = None;
                }
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => i = line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = i + 2 + find(&bytes[i + 2..], b"*/")? + 2;
            }
            b'"' => {
                stack.push(Frame::Quoted);
                i += 1;
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => i = heredoc_end(bytes, i)?,
            b'{' => {
                if top {
                    match &mut block {
                        Some((_, opened @ false)) => *opened = true,
                        _ => block = None,
                    }
                }
                stack.push(Frame::Brace);
                i += 1;
            }
            b'(' | b'[' => {
                stack.push(Frame::Bracket(if b == b'(' { b')' } else { b']' }));
                i += 1;
            }
            b')' | b']' => {
                match stack.pop()? {
                    Frame::Bracket(close) if close == b => {}
                    _ => return None,
                }
                i += 1;
            }
            b'}' => {
                match stack.pop()? {
                    Frame::Brace | Frame::Interpolation => {}
                    Frame::Bracket(_) | Frame::Quoted => return None,
                }
                i += 1;
                if stack.is_empty() {
                    if let Some((start, true)) = block.take() {
                        // Only a comment may follow a block on its line: a
                        // structure there is a syntax error of the whole
                        // file, which the parts alone would not show.
                        let rest = bytes[i..line_end(bytes, i)].trim_ascii_start();
                        if !(rest.is_empty() || rest.starts_with(b"#") || rest.starts_with(b"//")) {
                            return None;
                        }
                        found.push(start..i);
                    }
                }
            }
            _ if top && line_start && bytes[i..].starts_with(KEYWORD) => {
                let after = i + KEYWORD.len();
                if bytes.get(after).is_some_and(|&c| is_ident(c)) {
                    i = ident_end(bytes, i);
                } else {
                    block = Some((i, false));
                    i = after;
                }
            }
            b'=' if top => {
                // `worker_type = ...` is an attribute, not a block.
                block = None;
                i += 1;
            }
            _ => i += 1,
        }
        line_start = false;
    }
    (stack.is_empty() && block.is_none()).then_some(found)
}

/// What encloses a position of the scan.
enum Frame {
    Brace,
    /// `(` or `[`, with the byte that closes it.
    Bracket(u8),
    Interpolation,
    Quoted,
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|&c| is_ident(c)) {
        i += 1;
    }
    i
}

/// The position of the newline ending the line at `i` (or the text's end).
fn line_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(bytes.len(), |n| i + n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Past the end of the heredoc opened at `i` (`<<MARKER` or `<<-MARKER`):
/// the newline after the line that holds the marker alone. `None` when it
/// is not a heredoc or is never closed.
fn heredoc_end(bytes: &[u8], i: usize) -> Option<usize> {
    let mut at = i + 2;
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    let end = ident_end(bytes, at);
    let marker = &bytes[at..end];
    if marker.is_empty() {
        return None;
    }
    let mut line = line_end(bytes, end);
    if bytes[end..line].iter().any(|c| !c.is_ascii_whitespace()) {
        return None;
    }
    while line < bytes.len() {
        let start = line + 1;
        line = line_end(bytes, start);
        if bytes[start..line].trim_ascii() == marker {
            return Some(line);
        }
    }
    None
}

/// `text` with every byte outside `keep` turned to a space, except
/// newlines: the same length, lines and columns, and still UTF-8 (a
/// character is kept or blanked whole, as the ranges start and end at
/// ASCII bytes).
pub(super) fn blanked(text: &str, keep: &[Range<usize>]) -> Option<String> {
    let mut out = text.as_bytes().to_vec();
    let mut from = 0;
    for range in keep
        .iter()
        .chain(std::iter::once(&(text.len()..text.len())))
    {
        for b in &mut out[from..range.start] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        from = range.end;
    }
    String::from_utf8(out).ok()
}

/// The ranges of `text` that are not in `ranges` (sorted, disjoint).
pub(super) fn complement(len: usize, ranges: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    let mut from = 0;
    for r in ranges {
        if r.start > from {
            out.push(from..r.start);
        }
        from = r.end;
    }
    if from < len {
        out.push(from..len);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl_edit::Span;

    fn blocks(text: &str) -> Vec<&str> {
        worker_type_ranges(text)
            .expect("scans")
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    /// What hcl-edit says the top-level worker_type blocks span.
    fn parsed(text: &str) -> Vec<&str> {
        hcl_edit::parser::parse_body(text)
            .expect("parses")
            .into_blocks()
            .filter(|b| b.ident.as_str() == "worker_type")
            .map(|b| &text[b.span().expect("span")])
            .collect()
    }

    #[test]
    fn finds_the_blocks_the_parser_finds_through_strings_comments_and_heredocs() {
        let text = r#"# worker_type "not" { in a comment }
fleet "f" {
  regions = ["us-east-1"]
  worker_type "nested" { x = 1 }
}
worker_type "a" {
  name = "a}{"
  user_data = "${jsonencode({ a = "}" })} $${x} %{ if true }{%{ endif }"
  // }
  /* } { */
  script = <<-EOT
    }}} {
    EOT
  tags = { "x" = "y" }
  instance_type "m5.large" {
    capacity = 1
  }
}
locals { worker_type = "x" }
worker_type "b" { }
worker_type_x = 1
  worker_type "c" {
    min = 1
  }
"#;
        let found = blocks(text);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert_eq!(found, parsed(text));
    }

    #[test]
    fn a_block_sharing_its_line_or_inside_brackets_is_left_to_the_parser() {
        // Each of these is a syntax error of the whole file that its parts
        // parsed alone would not show.
        for text in [
            "worker_type \"a\" { } fleet \"f\" { }\n",
            "worker_type \"a\" {\n} /* c */ locals { }\n",
            "x = [\nworker_type \"a\" { }\n]\n",
            "x = (\nworker_type \"a\" { }\n)\n",
        ] {
            let found = worker_type_ranges(text);
            assert!(
                found.as_ref().is_none_or(Vec::is_empty),
                "{text:?}: {found:?}"
            );
            assert!(hcl_edit::parser::parse_body(text).is_err(), "{text:?}");
        }
        // A comment after the brace is fine.
        assert_eq!(
            blocks("worker_type \"a\" { } # ok\n"),
            ["worker_type \"a\" { }"]
        );
    }

    #[test]
    fn an_attribute_named_worker_type_or_a_keyword_prefix_is_not_a_block() {
        let text = "worker_type = { a = 1 }\nworker_types \"x\" {\n}\n";
        assert!(blocks(text).is_empty());
    }

    #[test]
    fn text_that_does_not_scan_cleanly_is_left_to_the_parser() {
        for text in [
            "worker_type \"a\" {\n",
            "worker_type \"a\" { x = \"open }\n",
            "}\n",
            "worker_type \"a\" { /* never closed }\n",
            "worker_type \"a\" {\n x = <<EOT\n}\n",
        ] {
            assert_eq!(worker_type_ranges(text), None, "{text:?}");
        }
    }

    #[test]
    fn blanking_keeps_lengths_lines_and_utf8() {
        let text = "é = 1\nworker_type \"ü\" { }\n# ß\n";
        let ranges = worker_type_ranges(text).expect("scans");
        let kept = blanked(text, &ranges).expect("utf-8");
        assert_eq!(kept.len(), text.len());
        assert_eq!(kept.lines().count(), text.lines().count());
        assert_eq!(kept.trim(), "worker_type \"ü\" { }");
        let rest = blanked(text, &complement(text.len(), &ranges)).expect("utf-8");
        assert_eq!(rest.len(), text.len());
        assert!(!rest.contains("worker_type"));
        assert!(rest.contains("é = 1") && rest.contains("# ß"));
    }
}
