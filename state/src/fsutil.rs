//! File primitives: atomic create/replace, private directories, decoding with
//! format checks. Every error names the state file it concerns.

use crate::{StateError, FORMAT_VERSION};
use serde::de::DeserializeOwned;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Maps an I/O error to [`StateError::Io`] naming `path`.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> StateError {
    StateError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A string unique to this call among all processes using the directory:
/// pid, nanoseconds and a per-process counter.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A lease's private identity: 128 random bits from the system (hex), or,
/// where the system offers none, a [`unique_suffix`]. Random, so that two
/// processes with the same pid (containers) never share one.
pub(crate) fn lease_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    match random {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => unique_suffix(),
    }
}

/// The temporary sibling of `path` used while writing it.
fn temp_path(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{what}.{}", unique_suffix()))
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

/// Makes the directory entries of `dir` durable. Some filesystems refuse to
/// fsync a directory; that is not an error.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Opens a new file (mode 0600, whatever the umask) that must not exist yet.
pub(crate) fn create_private(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    set_mode(&file, 0o600)?;
    Ok(file)
}

/// Writes `bytes` to a new temporary sibling of `path`, fsynced, mode 0600.
fn write_temp(path: &Path, what: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let temp = temp_path(path, what);
    let result = (|| {
        let mut file = create_private(&temp, OpenOptions::new().write(true).create_new(true))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Creates `path` with `bytes` unless it exists: the content is written to a
/// temporary file and fsynced, then hard-linked to `path` (link(2) fails if
/// `path` exists, atomically, and a reader sees either no file or the whole
/// file). `Ok(false)` when `path` already existed; it is not touched.
pub(crate) fn create_atomically(path: &Path, bytes: &[u8]) -> Result<bool, StateError> {
    let temp = write_temp(path, "new", bytes).map_err(io(path))?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            sync_dir(parent(path));
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

/// Replaces (or creates) `path` with `bytes`: temporary file, fsync, rename,
/// fsync of the directory. A crash leaves the old file or the new one.
pub(crate) fn replace_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let temp = write_temp(path, "tmp", bytes).map_err(io(path))?;
    if let Err(e) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(io(path)(e));
    }
    sync_dir(parent(path));
    Ok(())
}

/// Creates `dir` (mode 0700, whatever the umask) if it does not exist;
/// missing parents are created with default permissions.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    if dir.is_dir() {
        return Ok(());
    }
    let up = parent(dir);
    if !up.exists() {
        std::fs::create_dir_all(up).map_err(io(dir))?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io(dir))?;
            }
            sync_dir(up);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Reads `path`; `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Refuses to write to `path` (a state file or directory) when it exists and
/// its mode lacks the owner-write bit: [`StateError::ReadOnly`] naming it.
/// Checked by the store before it creates, replaces or removes anything, so
/// that a state made read-only is never modified, whatever the uid (root
/// ignores permission bits). A missing `path` is not read-only.
pub(crate) fn ensure_writable(path: &Path) -> Result<(), StateError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    #[cfg(unix)]
    let (read_only, mode) = {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        (mode & 0o200 == 0, mode)
    };
    #[cfg(not(unix))]
    let (read_only, mode) = (meta.permissions().readonly(), 0o444);
    if read_only {
        return Err(StateError::ReadOnly {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// [`ensure_writable`] for each of `paths`, in order.
pub(crate) fn ensure_all_writable(paths: &[&Path]) -> Result<(), StateError> {
    paths.iter().try_for_each(|path| ensure_writable(path))
}

/// Checks the `format_version` of a parsed state document and returns it:
/// missing or 0 is `Corrupt`, above [`FORMAT_VERSION`] is `NewerFormat`.
pub(crate) fn check_format(path: &Path, value: &serde_json::Value) -> Result<u32, StateError> {
    check_format_upto(path, value, FORMAT_VERSION)
}

/// [`check_format`] for a kind of document this build reads up to format
/// `newest` (an S3 journal object: [`crate::JOURNAL_BATCH_FORMAT`]).
pub(crate) fn check_format_upto(
    path: &Path,
    value: &serde_json::Value,
    newest: u32,
) -> Result<u32, StateError> {
    let Some(object) = value.as_object() else {
        return Err(corrupt(path, "not a JSON object"));
    };
    let Some(found) = object.get("format_version") else {
        return Err(corrupt(path, "no format_version"));
    };
    let found = found.as_u64().filter(|v| *v > 0).ok_or_else(|| {
        corrupt(
            path,
            format!("format_version {found} is not a state format"),
        )
    })?;
    if found > u64::from(newest) {
        return Err(StateError::NewerFormat {
            path: path.to_path_buf(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            understood: newest,
        });
    }
    u32::try_from(found).map_err(|_| corrupt(path, "format_version out of range"))
}

/// The name of the checksum member of every format-2 state document and
/// journal record.
pub(crate) const CHECKSUM_KEY: &str = "sha256";

/// Lowercase hex SHA-256 of `bytes` (64 characters).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Splits `sealed` = `start` + 64 hex digits + `end` + body into (hex, body)
/// and checks that the hex is the SHA-256 of the body. The error is the
/// reason, for the caller to attach to its file (and line).
pub(crate) fn unseal<'a>(sealed: &'a [u8], start: &[u8], end: &[u8]) -> Result<&'a [u8], String> {
    let Some(rest) = sealed.strip_prefix(start) else {
        return Err(
            "it does not begin with its \"sha256\" checksum, as everything fleetform writes in format 2 does"
                .into(),
        );
    };
    if rest.len() < 64 {
        return Err("it ends inside its checksum".into());
    }
    let (hex, rest) = rest.split_at(64);
    let Some(body) = rest.strip_prefix(end) else {
        return Err("its checksum is not followed by the rest of the document".into());
    };
    if hex != sha256_hex(body).as_bytes() {
        return Err("checksum mismatch: its content changed after fleetform wrote it (damaged on disk or in a copy, or edited by hand)".into());
    }
    Ok(body)
}

/// How a format-2 state document begins: `{`, a newline and its checksum member first.
const DOCUMENT_SEAL_START: &[u8] = b"{\n  \"sha256\": \"";
/// What follows the 64 hex digits of a document's checksum.
const DOCUMENT_SEAL_END: &[u8] = b"\",\n";

/// Decodes a state document (`index.json`, a version file, `lock.json`):
/// not empty, valid JSON, a known `format_version` (newer is `NewerFormat`,
/// checked first: a newer format may seal its files differently), then, from
/// format 2 on, an intact checksum (see [`encode`]), then the expected shape.
/// A format-1 file (written before checksums) has none and must have none.
/// Errors name `path`.
pub(crate) fn decode<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, StateError> {
    decode_upto(path, bytes, FORMAT_VERSION)
}

/// [`decode`] for a kind of document this build reads up to format `newest`.
pub(crate) fn decode_upto<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    newest: u32,
) -> Result<T, StateError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(corrupt(path, "the file is empty"));
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(path, format!("not valid JSON: {e}")))?;
    let format = check_format_upto(path, &value, newest)?;
    let has_checksum = value
        .as_object_mut()
        .and_then(|object| object.remove(CHECKSUM_KEY))
        .is_some();
    if format >= 2 {
        unseal(bytes, DOCUMENT_SEAL_START, DOCUMENT_SEAL_END).map_err(|r| corrupt(path, r))?;
    } else if has_checksum {
        return Err(corrupt(
            path,
            "it says format 1, which has no checksum, yet carries one",
        ));
    }
    serde_json::from_value(value).map_err(|e| corrupt(path, e.to_string()))
}

/// A state document as written by this build: pretty JSON of `value` (an
/// object) with a final newline, sealed with a checksum. The file is
/// `{\n  "sha256": "<hex>",\n` followed by BODY, where BODY is the pretty
/// JSON of the object without its opening `{\n` (so BODY ends in `}\n`) and
/// `<hex>` is the lowercase hex SHA-256 of BODY's bytes. The checksum covers
/// the exact bytes, so any change to them, even one that keeps the JSON
/// valid, is detected by [`decode`].
pub(crate) fn encode<T: serde::Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, StateError> {
    let encoding = |e: String| io(path)(std::io::Error::other(e));
    let mut value = serde_json::to_value(value).map_err(|e| encoding(e.to_string()))?;
    value
        .as_object_mut()
        .ok_or_else(|| encoding("a state document must be a JSON object".into()))?
        .remove(CHECKSUM_KEY);
    let pretty = serde_json::to_vec_pretty(&value).map_err(|e| encoding(e.to_string()))?;
    let Some(body) = pretty.strip_prefix(b"{\n") else {
        return Err(encoding("a state document cannot be empty".into()));
    };
    let mut body = body.to_vec();
    body.push(b'\n');
    let mut bytes = DOCUMENT_SEAL_START.to_vec();
    bytes.extend_from_slice(sha256_hex(&body).as_bytes());
    bytes.extend_from_slice(DOCUMENT_SEAL_END);
    bytes.extend_from_slice(&body);
    Ok(bytes)
}
