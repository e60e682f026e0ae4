//! Source files of a configuration and locations inside them.
//!
//! Every diagnostic and every model object points back here, so that a plan-time
//! finding can still name `file:line:col` of the HCL that caused it.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// What hides secret values in a text while keeping its byte offsets (the
/// secrets of a load, [`crate::sensitive::Secrets`]); this module only
/// applies it, so it does not depend on where secrets come from.
pub trait MaskInPlace {
    /// `text` with every secret value overwritten by `*` of the same byte
    /// length; `None` when it holds none.
    fn mask_in_place(&self, text: &str) -> Option<String>;
}

/// One configuration file as it was read from disk.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Name relative to the config directory (what JSON output shows).
    pub name: String,
    /// Path as the user can open it (the config directory as given, joined with the name).
    pub path: PathBuf,
    /// The file's text (lossy if the file was not valid UTF-8).
    pub text: Arc<str>,
    /// A `-var-file`, not a configuration file: it may hold secrets, so it
    /// is neither hashed into plan files nor kept in state.
    pub var_file: bool,
}

/// Index of a file inside a [`SourceSet`].
pub type FileId = usize;

/// A byte range inside one file of a [`SourceSet`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceRef {
    /// Which file.
    pub file: FileId,
    /// Byte offsets into that file's text.
    pub span: Range<usize>,
}

/// A 1-based line and column, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LineCol {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

/// All files of one configuration, in load order (sorted by name).
#[derive(Debug, Clone, Default)]
pub struct SourceSet {
    files: Vec<SourceFile>,
    /// What diagnostics show of each file, where it differs from the text:
    /// the text with sensitive values overwritten.
    shown: Vec<Option<Arc<str>>>,
}

impl SourceSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        self.shown.push(None);
        self.files.len() - 1
    }

    /// Marks a file as a `-var-file`.
    pub fn mark_var_file(&mut self, id: FileId) {
        if let Some(file) = self.files.get_mut(id) {
            file.var_file = true;
        }
    }

    /// Hides every sensitive value of `secrets` from what diagnostics show
    /// of these files (a variable file or a default holds them as text);
    /// offsets stay valid. The texts themselves are unchanged.
    pub fn hide(&mut self, secrets: &impl MaskInPlace) {
        for (file, shown) in self.files.iter().zip(self.shown.iter_mut()) {
            let text = if file.var_file {
                // Shown as `name = ****`: a secret there may be written in a
                // way no search for its value finds (escapes, a syntax error).
                Some(mask_values(&file.text))
            } else {
                None
            };
            let base = text.as_deref().unwrap_or(&file.text);
            *shown = secrets.mask_in_place(base).or(text).map(Arc::from);
        }
    }

    /// The text of a file as diagnostics show it (sensitive values hidden).
    pub fn shown_text(&self, id: FileId) -> Arc<str> {
        match self.shown.get(id) {
            Some(Some(shown)) => Arc::clone(shown),
            _ => Arc::clone(&self.files[id].text),
        }
    }

    /// The file with this id.
    ///
    /// # Panics
    /// Never for ids returned by [`SourceSet::add`] of this set.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    /// Every file, in load order.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// Line and column of the start of `at`; clamps offsets past the end of the file.
    pub fn line_col(&self, at: &SourceRef) -> LineCol {
        line_col(&self.files[at.file].text, at.span.start)
    }
}

/// Line and column (both 1-based) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> LineCol {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    LineCol { line, column }
}

/// Byte offset of a 1-based line and column; clamps to the end of the text.
pub fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (index, l) in text.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            let in_line: usize = l
                .char_indices()
                .nth(column.saturating_sub(1))
                .map_or(l.trim_end_matches('\n').len(), |(i, _)| i);
            return offset + in_line;
        }
        offset += l.len();
    }
    text.len()
}

/// `text` with everything after the first `=` of each line, and every line
/// without one, overwritten by `*` byte for byte (offsets stay valid).
fn mask_values(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches(['\n', '\r']);
            let end = &line[body.len()..];
            let keep = body.find('=').map_or(0, |at| at + 1);
            let (kept, masked) = body.split_at(keep);
            let stars: String = masked
                .bytes()
                .map(|b| {
                    if b == b' ' || b == b'\t' {
                        b as char
                    } else {
                        '*'
                    }
                })
                .collect();
            format!("{kept}{stars}{end}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_in_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), LineCol { line: 1, column: 1 });
        assert_eq!(line_col(text, 6), LineCol { line: 2, column: 1 });
        // 'é' is two bytes; the '=' after "bé " is the 4th character.
        assert_eq!(line_col(text, 10), LineCol { line: 2, column: 4 });
    }

    #[test]
    fn offset_of_is_the_inverse_of_line_col() {
        let text = "a = 1\nbé = 2\n";
        for offset in [0, 4, 6, 10] {
            let lc = line_col(text, offset);
            assert_eq!(offset_of(text, lc.line, lc.column), offset);
        }
    }
}
