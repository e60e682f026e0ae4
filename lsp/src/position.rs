//! Byte offsets (what the engine's spans are) to LSP positions and back, in
//! the encoding negotiated at initialize.

use lsp_types::Position;

/// How a position's `character` counts: what the client and server agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Bytes of UTF-8.
    Utf8,
    /// UTF-16 code units (the LSP default).
    Utf16,
}

/// Where every line of a text starts.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The position of byte `offset`; offsets past the end (or inside a
    /// character) are moved back to the nearest character boundary.
    pub(crate) fn position(&self, text: &str, offset: usize, encoding: Encoding) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        let before = text.get(start..offset).unwrap_or("");
        let character = match encoding {
            Encoding::Utf8 => before.len(),
            Encoding::Utf16 => before.chars().map(char::len_utf16).sum(),
        };
        Position {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            character: u32::try_from(character).unwrap_or(u32::MAX),
        }
    }

    /// The byte offset of `position`: a line past the end is the end of the
    /// text, a character past the end of its line is the end of the line, a
    /// position inside a character is its start.
    pub(crate) fn offset(&self, text: &str, position: Position, encoding: Encoding) -> usize {
        let line = position.line as usize;
        let Some(&start) = self.starts.get(line) else {
            return text.len();
        };
        let end = self
            .starts
            .get(line + 1)
            .map_or(text.len(), |next| next.saturating_sub(1));
        let content = text.get(start..end).unwrap_or("");
        let content = content.strip_suffix('\r').unwrap_or(content);
        let wanted = position.character as usize;
        let mut units = 0;
        for (at, c) in content.char_indices() {
            if units >= wanted {
                return start + at;
            }
            units += match encoding {
                Encoding::Utf8 => c.len_utf8(),
                Encoding::Utf16 => c.len_utf16(),
            };
            if units > wanted {
                return start + at;
            }
        }
        start + content.len()
    }

    /// The LSP range of a byte range.
    pub(crate) fn range(
        &self,
        text: &str,
        span: std::ops::Range<usize>,
        encoding: Encoding,
    ) -> lsp_types::Range {
        lsp_types::Range {
            start: self.position(text, span.start, encoding),
            end: self.position(text, span.end.max(span.start), encoding),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_counts_code_units_and_utf8_bytes() {
        let text = "# héllo 🦀\nx = 1\n";
        let index = LineIndex::new(text);
        let x = text.find('🦀').unwrap_or(0);
        assert_eq!(index.position(text, x, Encoding::Utf16).character, 8);
        assert_eq!(index.position(text, x, Encoding::Utf8).character, 9);
        let after = x + '🦀'.len_utf8();
        let p = index.position(text, after, Encoding::Utf16);
        assert_eq!(p.character, 10);
        assert_eq!(index.offset(text, p, Encoding::Utf16), after);
        // Inside the surrogate pair: the start of the character.
        let inside = Position {
            line: 0,
            character: 9,
        };
        assert_eq!(index.offset(text, inside, Encoding::Utf16), x);
    }

    #[test]
    fn positions_past_the_end_are_clamped() {
        let text = "a = 1\nb = 2";
        let index = LineIndex::new(text);
        let past_line = Position {
            line: 0,
            character: 99,
        };
        assert_eq!(index.offset(text, past_line, Encoding::Utf16), 5);
        let past_text = Position {
            line: 9,
            character: 0,
        };
        assert_eq!(index.offset(text, past_text, Encoding::Utf16), text.len());
        assert_eq!(
            index.position(text, 999, Encoding::Utf8),
            Position {
                line: 1,
                character: 5
            }
        );
    }
}
