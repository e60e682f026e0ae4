//! The journal file: a header line `{"format_version":2}`, then one
//! [`JournalRecord`] per line. Each append (one record, or a batch of the
//! records of calls in flight together) is a single `write`, fsynced.
//!
//! **Records.** From format 2 on, each record line is sealed with its own
//! checksum: the line is `{"sha256":"<hex>",` followed by BODY, where BODY is
//! the compact JSON of the record without its opening `{` and `<hex>` the
//! lowercase hex SHA-256 of BODY's bytes. A format-1 journal (written before
//! checksums) has plain record lines, and records appended to it stay plain,
//! so that one journal is all of one format. A format-2 header is exactly the
//! bytes `{"format_version":2}`.
//!
//! **Creation.** A journal is created whole: its header and first record are
//! written to a temporary file, fsynced and linked into place. So a journal
//! that exists always has a complete header line: an empty file, or one that
//! ends inside its first line, is damage, never a crash, and is `Corrupt`.
//! (Format-1 fleetform created the file first and wrote into it after, so a
//! crash then could leave such a journal; it holds no record, and moving it
//! aside, as the diagnostic says, loses nothing.)
//!
//! **Torn last line.** A crash can only tear the end of the file, so the last
//! line is "torn" when it has no final newline and is not a complete, intact
//! record; it is ignored on reading and cut off before the next append. A
//! last line without its newline that is a complete, intact record (only the
//! newline was lost) is kept, and the next append adds the newline first.
//! Any line that ends in a newline was written completely, so if it does not
//! parse (or its checksum does not match) the journal is corrupt.
//!
//! **What the torn-line rule can hide.** Damage that makes the file look like
//! a crash did: a flipped bit in the file's *final newline* turns the last
//! record into an unterminated line with a stray byte, which reads as torn:
//! that one record is dropped (and cut by the next append), the rest is read.
//! Likewise a journal cut short (truncated) inside a line reads as a torn
//! last line, and one cut exactly at a line boundary as a shorter journal:
//! a crash leaves the same bytes, so neither can be told from one. Every
//! other single-bit flip, anywhere in the file, is `Corrupt` (or, for a flip
//! of the header's format digit to a larger one, `NewerFormat`).

use crate::fsutil::{
    check_format, corrupt, create_atomically, io, sha256_hex, unseal, CHECKSUM_KEY,
};
use crate::{JournalRecord, StateError, FORMAT_VERSION};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// The first line of a journal of `format`, with its newline.
fn header_line(format: u32) -> Vec<u8> {
    format!("{{\"format_version\":{format}}}\n").into_bytes()
}

/// Checks a header line (without its newline) and returns the journal's format.
fn check_header(path: &Path, line: &[u8]) -> Result<u32, StateError> {
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
    let format = check_format(path, &value)?;
    let mut exact = header_line(format);
    exact.pop();
    if format >= 2 && line != exact.as_slice() {
        return Err(corrupt(
            path,
            format!("line 1 is not exactly the journal header {{\"format_version\":{format}}}"),
        ));
    }
    Ok(format)
}

/// How a sealed (format-2) record line begins.
const LINE_SEAL_START: &[u8] = b"{\"sha256\":\"";
/// What follows the 64 hex digits of a record line's checksum.
const LINE_SEAL_END: &[u8] = b"\",";

/// One record line (without its newline) of a journal of `format`, as written.
fn encode_line(path: &Path, record: &JournalRecord, format: u32) -> Result<Vec<u8>, StateError> {
    let plain = serde_json::to_vec(record).map_err(|e| io(path)(std::io::Error::other(e)))?;
    if format < 2 {
        return Ok(plain);
    }
    let body = plain.get(1..).unwrap_or_default();
    let mut line = LINE_SEAL_START.to_vec();
    line.extend_from_slice(sha256_hex(body).as_bytes());
    line.extend_from_slice(LINE_SEAL_END);
    line.extend_from_slice(body);
    Ok(line)
}

/// Decodes one record line (without its newline) of a journal of `format`;
/// the error is the reason.
fn decode_line(line: &[u8], format: u32) -> Result<JournalRecord, String> {
    if format < 2 {
        return serde_json::from_slice(line).map_err(|e| format!("not a journal record: {e}"));
    }
    unseal(line, LINE_SEAL_START, LINE_SEAL_END)?;
    let mut value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not a journal record: {e}"))?;
    if let Some(object) = value.as_object_mut() {
        object.remove(CHECKSUM_KEY);
    }
    serde_json::from_value(value).map_err(|e| format!("not a journal record: {e}"))
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Parses a whole journal file.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<JournalRecord>, StateError> {
    if bytes.is_empty() {
        return Err(corrupt(
            path,
            "the file is empty; a journal always begins with its header line",
        ));
    }
    let segments: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // `segments.last()` is what follows the final newline: empty for a
    // complete file, else an unterminated (possibly torn) line.
    let last = segments.len() - 1;
    if last == 0 {
        return Err(no_complete_header(path, segments[0]));
    }
    let format = check_header(path, segments[0])?;
    let mut records = Vec::new();
    for (index, line) in segments.iter().enumerate().skip(1) {
        if index == last && line.is_empty() {
            break;
        }
        // Format 1 tolerated blank lines; format 2 never writes one.
        if format < 2 && is_blank(line) {
            continue;
        }
        match decode_line(line, format) {
            Ok(record) => records.push(record),
            Err(_) if index == last => {} // torn by a crash mid-write
            Err(reason) => return Err(corrupt(path, format!("line {}: {reason}", index + 1))),
        }
    }
    Ok(records)
}

/// The error for a journal whose first line has no newline: a newer format
/// says so; anything else is damage (a journal is created with its header
/// and first record at once).
fn no_complete_header(path: &Path, first: &[u8]) -> StateError {
    match check_header(path, first) {
        Err(e @ StateError::NewerFormat { .. }) => e,
        _ => corrupt(
            path,
            "it ends inside its first line: a journal always holds a whole header line and a record",
        ),
    }
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

/// Appends `records` (a batch: one line each, in order) to the journal at
/// `path`; nothing to do for none. A missing journal is created whole
/// (header and records, temporary file, fsync, link). An existing one is
/// checked by its header line and last line only, so appending stays cheap
/// however long the journal is: an empty file, a bad or newer header is
/// refused (nothing written); a torn last line is cut (see the module
/// docs); then the lines are written with one `write` and fsynced, in the
/// journal's own format. A crash inside that write leaves a first part of
/// the batch, its last line possibly torn: the same bytes as a crash in a
/// one-line append of a longer line, read by the same rule. The full check
/// of every line is [`parse`].
pub(crate) fn append(path: &Path, records: &[JournalRecord]) -> Result<(), StateError> {
    if records.is_empty() {
        return Ok(());
    }
    // One append at a time in this process: an apply journals from many
    // tasks, and an append that read the file while another's write was
    // landing would take that record for a torn last line and cut it (or
    // end it a second time). Other processes are kept out by the lock.
    static APPENDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = APPENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !path.exists() {
        let mut whole = header_line(FORMAT_VERSION);
        for record in records {
            whole.extend_from_slice(&encode_line(path, record, FORMAT_VERSION)?);
            whole.push(b'\n');
        }
        if create_atomically(path, &whole)? {
            return Ok(());
        }
        // Created meanwhile by someone else: append to it.
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    if len == 0 {
        return Err(corrupt(
            path,
            "the file is empty; a journal always begins with its header line",
        ));
    }
    let head_len = len.min(4096);
    let mut head = vec![0; usize::try_from(head_len).unwrap_or(4096)];
    read_at(&file, &mut head, 0).map_err(io(path))?;
    let Some(header_end) = head.iter().position(|b| *b == b'\n') else {
        return Err(if head_len == len {
            no_complete_header(path, &head)
        } else {
            corrupt(
                path,
                "line 1 is not the journal header {\"format_version\":N}",
            )
        });
    };
    let format = check_header(path, &head[..header_end])?;
    let mut buf = Vec::new();
    let line_start = last_line_start(&file, len).map_err(io(path))?;
    if line_start < len {
        // The last line lacks its newline.
        let mut tail = vec![0; usize::try_from(len - line_start).unwrap_or(0)];
        read_at(&file, &mut tail, line_start).map_err(io(path))?;
        if decode_line(&tail, format).is_ok() {
            buf.push(b'\n');
        } else {
            file.set_len(line_start).map_err(io(path))?;
        }
    }
    for record in records {
        buf.extend_from_slice(&encode_line(path, record, format)?);
        buf.push(b'\n');
    }
    file.write_all(&buf).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
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
        String::from_utf8(encode_line(Path::new("j"), record, FORMAT_VERSION).expect("encodes"))
            .expect("utf-8")
    }

    fn legacy_line(record: &JournalRecord) -> String {
        serde_json::to_string(record).expect("json")
    }

    /// An apply journals its actions from many tasks at once: no append may
    /// take another's record, in flight, for a torn last line (found by a
    /// 1,000-worker-type bench apply that left an empty line behind).
    #[test]
    fn appends_from_many_threads_at_once_keep_every_record_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.jsonl");
        let threads: u64 = 8;
        let each: u64 = 150;
        std::thread::scope(|scope| {
            for t in 0..threads {
                let path = &path;
                scope.spawn(move || {
                    for i in 0..each {
                        let record = JournalRecord::End {
                            apply_id: format!("apply-{t}-{i}-{}", "x".repeat(300)),
                            time: 5,
                            version: Some(i),
                        };
                        append(path, std::slice::from_ref(&record)).expect("appends");
                    }
                });
            }
        });
        let bytes = std::fs::read(&path).expect("read");
        let records = parse(&path, &bytes).expect("every line whole");
        assert_eq!(records.len() as u64, threads * each);
        assert!(!bytes.windows(2).any(|w| w == b"\n\n"), "no empty line");
    }

    /// A batch is one line per record, in order, after what was there:
    /// whether it creates the journal or is appended to it.
    #[test]
    fn a_batch_appends_one_sealed_line_per_record_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.jsonl");
        append(&path, &[]).expect("nothing to do");
        assert!(!path.exists(), "no journal for no record");
        append(&path, &[end("a"), end("b"), end("c")]).expect("creates");
        append(&path, &[end("d")]).expect("one");
        append(&path, &[end("e"), end("f")]).expect("appends");
        let text = std::fs::read_to_string(&path).expect("read");
        let expected: String = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|id| format!("{}\n", line(&end(id))))
            .collect();
        assert_eq!(text, format!("{{\"format_version\":2}}\n{expected}"));
        let records = parse(&path, text.as_bytes()).expect("parses");
        assert_eq!(records.len(), 6);
    }

    /// A crash inside a batch's write leaves its first lines whole and the
    /// last one torn: the whole lines read, the torn one is ignored and cut
    /// by the next append, as after a one-line append.
    #[test]
    fn a_batch_torn_by_a_crash_keeps_its_whole_lines_and_the_next_append_cuts_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.jsonl");
        append(&path, &[end("a"), end("b")]).expect("creates");
        let before = std::fs::read(&path).expect("read");
        let batch = [end("c"), end("d"), end("e")];
        let mut written = Vec::new();
        for record in &batch {
            written.extend_from_slice(line(record).as_bytes());
            written.push(b'\n');
        }
        // Every length the crash could have left of the batch's write.
        for cut in 0..written.len() {
            let mut torn = before.clone();
            torn.extend_from_slice(&written[..cut]);
            std::fs::write(&path, &torn).expect("write");
            let whole = written[..cut].iter().filter(|b| **b == b'\n').count();
            // A last line cut just before its newline is a whole record.
            let intact_tail = written.get(cut) == Some(&b'\n');
            let kept = whole + usize::from(intact_tail);
            let mut expected = vec![end("a"), end("b")];
            expected.extend(batch[..kept].iter().cloned());
            assert_eq!(parse(&path, &torn).expect("reads"), expected, "cut {cut}");
            append(&path, &[end("z")]).expect("appends after the tear");
            expected.push(end("z"));
            let after = std::fs::read(&path).expect("read");
            assert_eq!(parse(&path, &after).expect("reads"), expected, "cut {cut}");
            assert!(!after.windows(2).any(|w| w == b"\n\n"), "cut {cut}");
        }
    }

    #[test]
    fn records_are_sealed_tagged_snake_case_lines() {
        let body = r#""record":"end","apply_id":"a","time":5,"version":1}"#;
        assert_eq!(
            line(&end("a")),
            format!("{{\"sha256\":\"{}\",{body}", sha256_hex(body.as_bytes()))
        );
        assert_eq!(
            legacy_line(&end("a")),
            r#"{"record":"end","apply_id":"a","time":5,"version":1}"#
        );
        assert_eq!(decode_line(line(&end("a")).as_bytes(), 2), Ok(end("a")));
    }

    #[test]
    fn parse_keeps_an_unterminated_complete_last_record() {
        let text = format!(
            "{{\"format_version\":2}}\n{}\n{}",
            line(&end("a")),
            line(&end("b"))
        );
        let records = parse(Path::new("j"), text.as_bytes()).expect("parses");
        assert_eq!(records, vec![end("a"), end("b")]);
    }

    #[test]
    fn a_format_1_journal_of_plain_lines_still_reads() {
        let text = format!(
            "{{\"format_version\":1}}\n{}\n\n{}\n",
            legacy_line(&end("a")),
            legacy_line(&end("b"))
        );
        let records = parse(Path::new("j"), text.as_bytes()).expect("parses");
        assert_eq!(records, vec![end("a"), end("b")]);
    }

    #[test]
    fn a_format_2_line_without_or_with_a_wrong_checksum_is_corrupt() {
        for bad in [
            legacy_line(&end("a")),
            line(&end("a")).replace("\"a\"", "\"b\""),
            line(&end("a")).replacen("{\"sha256\"", "{ \"sha256\"", 1),
        ] {
            let text = format!("{{\"format_version\":2}}\n{bad}\n{}\n", line(&end("c")));
            let err = parse(Path::new("j"), text.as_bytes()).expect_err(&bad);
            assert!(
                matches!(&err, StateError::Corrupt { reason, .. } if reason.starts_with("line 2: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_journal_without_a_whole_header_line_is_corrupt() {
        for text in [&b""[..], b"{\"format_ve", b"{\"format_version\":2}"] {
            let err = parse(Path::new("j"), text).expect_err("no header line");
            assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        }
        let err = parse(Path::new("j"), b"{\"format_version\":9}").expect_err("newer");
        assert!(
            matches!(err, StateError::NewerFormat { found: 9, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_format_2_header_must_be_exact() {
        let text = format!("{{ \"format_version\": 2 }}\n{}\n", line(&end("a")));
        let err = parse(Path::new("j"), text.as_bytes()).expect_err("not exact");
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
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
