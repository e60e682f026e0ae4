//! The journal file: a header line `{"format_version":1}`, then one
//! [`JournalRecord`] per line, each written with a single `write` and fsynced.
//!
//! A crash can only tear the end of the file, so the last line is "torn" when
//! it has no final newline and does not parse; it is ignored on reading and
//! cut off before the next append. A last line without its newline that does
//! parse is a complete record (only the newline was lost): it is kept, and the
//! next append adds the newline first. Any line that ends in a newline was
//! written completely, so if it does not parse the journal is corrupt.

use crate::fsutil::{check_format, corrupt, create_private, io, sync_dir};
use crate::{JournalRecord, StateError, FORMAT_VERSION};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// The first line of every journal.
pub(crate) fn header_line() -> Vec<u8> {
    format!("{{\"format_version\":{FORMAT_VERSION}}}\n").into_bytes()
}

/// Checks a header line (without its newline).
fn check_header(path: &Path, line: &[u8]) -> Result<(), StateError> {
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        corrupt(
            path,
            format!("line 1 is not the journal header {{\"format_version\":N}}: {e}"),
        )
    })?;
    if value.get("record").is_some() {
        return Err(corrupt(
            path,
            "line 1 is a record, not the journal header {\"format_version\":N}",
        ));
    }
    check_format(path, &value)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Parses a whole journal file.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<JournalRecord>, StateError> {
    let segments: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // `segments.last()` is what follows the final newline: empty for a
    // complete file, else an unterminated (possibly torn) line.
    let last = segments.len() - 1;
    if last == 0 {
        // No newline at all: at most a header, possibly torn.
        return match check_header(path, segments[0]) {
            Err(e @ StateError::NewerFormat { .. }) => Err(e),
            _ => Ok(Vec::new()),
        };
    }
    check_header(path, segments[0])?;
    let mut records = Vec::new();
    for (index, line) in segments.iter().enumerate().skip(1) {
        if is_blank(line) {
            continue;
        }
        match serde_json::from_slice::<JournalRecord>(line) {
            Ok(record) => records.push(record),
            Err(_) if index == last => {} // torn by a crash mid-write
            Err(e) => {
                return Err(corrupt(
                    path,
                    format!("line {} is not a journal record: {e}", index + 1),
                ))
            }
        }
    }
    Ok(records)
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(not(unix))]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// Offset just after the last newline before `len`, scanning backwards in chunks.
fn last_line_start(file: &File, len: u64) -> std::io::Result<u64> {
    const CHUNK: u64 = 8192;
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let mut buf = vec![0; usize::try_from(end - start).unwrap_or(0)];
        read_at(file, &mut buf, start)?;
        if let Some(i) = buf.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Appends `record` to the journal at `path`, creating it with its header if
/// needed. Reads only the header line and the last line: refuses a journal
/// with a bad or newer header, repairs a torn last line (see the module docs),
/// then writes the record with one `write` and fsyncs.
pub(crate) fn append(path: &Path, record: &JournalRecord) -> Result<(), StateError> {
    let existed = path.exists();
    let mut file = if existed {
        OpenOptions::new().read(true).append(true).open(path)
    } else {
        create_private(
            path,
            OpenOptions::new().read(true).append(true).create(true),
        )
    }
    .map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    let mut buf = Vec::new();
    if len == 0 {
        buf = header_line();
    } else {
        let head_len = len.min(4096);
        let mut head = vec![0; usize::try_from(head_len).unwrap_or(4096)];
        read_at(&file, &mut head, 0).map_err(io(path))?;
        match head.iter().position(|b| *b == b'\n') {
            Some(end) => {
                check_header(path, &head[..end])?;
                let line_start = last_line_start(&file, len).map_err(io(path))?;
                if line_start < len {
                    // The last line lacks its newline.
                    let mut tail = vec![0; usize::try_from(len - line_start).unwrap_or(0)];
                    read_at(&file, &mut tail, line_start).map_err(io(path))?;
                    if is_blank(&tail) || serde_json::from_slice::<JournalRecord>(&tail).is_err() {
                        file.set_len(line_start).map_err(io(path))?;
                    } else {
                        buf.push(b'\n');
                    }
                }
            }
            None if head_len == len => match check_header(path, &head) {
                Ok(()) => buf.push(b'\n'),
                Err(e @ StateError::NewerFormat { .. }) => return Err(e),
                Err(_) => {
                    // A torn header: the journal never held a record.
                    file.set_len(0).map_err(io(path))?;
                    buf = header_line();
                }
            },
            None => {
                return Err(corrupt(
                    path,
                    "line 1 is not the journal header {\"format_version\":N}",
                ))
            }
        }
    }
    let line = serde_json::to_vec(record).map_err(|e| io(path)(std::io::Error::other(e)))?;
    buf.extend_from_slice(&line);
    buf.push(b'\n');
    file.write_all(&buf).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    if !existed {
        if let Some(dir) = path.parent() {
            sync_dir(dir);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(id: &str) -> JournalRecord {
        JournalRecord::End {
            apply_id: id.into(),
            time: 5,
            version: Some(1),
        }
    }

    fn line(record: &JournalRecord) -> String {
        serde_json::to_string(record).expect("json")
    }

    #[test]
    fn records_are_tagged_snake_case_lines() {
        assert_eq!(
            line(&end("a")),
            r#"{"record":"end","apply_id":"a","time":5,"version":1}"#
        );
    }

    #[test]
    fn parse_keeps_an_unterminated_complete_last_record() {
        let text = format!(
            "{{\"format_version\":1}}\n{}\n{}",
            line(&end("a")),
            line(&end("b"))
        );
        let records = parse(Path::new("j"), text.as_bytes()).expect("parses");
        assert_eq!(records, vec![end("a"), end("b")]);
    }

    #[test]
    fn parse_of_a_lone_torn_header_is_empty() {
        assert_eq!(parse(Path::new("j"), b"{\"format_ve").expect("ok"), vec![]);
        assert_eq!(parse(Path::new("j"), b"").expect("ok"), vec![]);
    }

    #[test]
    fn parse_refuses_a_journal_without_header() {
        let text = format!("{}\n", line(&end("a")));
        let err = parse(Path::new("j"), text.as_bytes()).expect_err("no header");
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn last_line_start_scans_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j");
        let mut text = b"x\n".to_vec();
        text.extend(std::iter::repeat_n(b'y', 20_000));
        std::fs::write(&path, &text).expect("write");
        let file = File::open(&path).expect("open");
        assert_eq!(last_line_start(&file, text.len() as u64).expect("scan"), 2);
        std::fs::write(&path, "no newline").expect("write");
        let file = File::open(&path).expect("open");
        assert_eq!(last_line_start(&file, 10).expect("scan"), 0);
    }
}
