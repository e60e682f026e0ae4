//! Reading JSON-RPC messages from the client on a thread of their own.
//!
//! lsp-server's own stdio transport ends the connection on the first
//! malformed message; a language server should outlive a client's mistake,
//! so this reader frames messages itself and reports a bad one instead
//! (lsp-server's [`Message`] still does the JSON-RPC decoding and writing).

use lsp_server::Message;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{channel, Receiver};

/// Largest message accepted: far above a 10 MB buffer sent whole, small
/// enough that a wrong `Content-Length` cannot exhaust memory.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// What the reader thread passes on.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A well-formed message; `lossy` when its bytes were not UTF-8 and the
    /// invalid ones were replaced by U+FFFD.
    Message { message: Message, lossy: bool },
    /// A message that could not be decoded; the connection goes on.
    Malformed(String),
}

/// Starts the thread that reads `input` until it ends.
pub(crate) fn spawn_reader(input: impl Read + Send + 'static) -> Receiver<Incoming> {
    let (sender, receiver) = channel();
    // If no thread can be started the receiver sees a closed channel: the
    // server then ends as if the client had gone.
    let _ = std::thread::Builder::new()
        .name("fleetform-lsp-reader".into())
        .spawn(move || {
            let mut input = BufReader::new(input);
            while let Some(incoming) = read_one(&mut input) {
                if sender.send(incoming).is_err() {
                    break;
                }
            }
        });
    receiver
}

/// Reads one framed message; `None` at the end of the input.
fn read_one(input: &mut impl BufRead) -> Option<Incoming> {
    let mut length: Option<usize> = None;
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let header = line.trim_end();
        if header.is_empty() {
            if length.is_some() {
                break;
            }
            // Blank lines between messages are skipped.
            continue;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok();
            }
        }
    }
    let length = length?;
    if length > MAX_MESSAGE_BYTES {
        // Skip the body so the next message can still be read.
        let skipped = std::io::copy(&mut input.take(length as u64), &mut std::io::sink()).ok()?;
        return (skipped == length as u64).then(|| {
            Incoming::Malformed(format!(
                "a message of {length} bytes is larger than the {MAX_MESSAGE_BYTES} accepted"
            ))
        });
    }
    // Grown as the bytes arrive, not reserved from what the header claims.
    let mut body = Vec::with_capacity(length.min(1 << 20));
    input.take(length as u64).read_to_end(&mut body).ok()?;
    if body.len() < length {
        return None;
    }
    let (text, lossy) = match String::from_utf8(body) {
        Ok(text) => (text, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    Some(match serde_json::from_str::<Message>(&text) {
        Ok(message) => Incoming::Message { message, lossy },
        Err(e) => Incoming::Malformed(format!("not a JSON-RPC message: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_message_does_not_end_the_stream() {
        let good = r#"{"jsonrpc":"2.0","method":"exit"}"#;
        let stream = format!(
            "Content-Length: 5\r\n\r\n{{bad}}Content-Length: {}\r\n\r\n{good}",
            good.len()
        );
        let mut input = std::io::Cursor::new(stream.into_bytes());
        assert!(matches!(read_one(&mut input), Some(Incoming::Malformed(_))));
        assert!(matches!(
            read_one(&mut input),
            Some(Incoming::Message { lossy: false, .. })
        ));
        assert!(read_one(&mut input).is_none());
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let mut body = br#"{"jsonrpc":"2.0","method":"x","params":{"t":""#.to_vec();
        body.push(0xff);
        body.extend_from_slice(br#""}}"#);
        let mut stream = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        stream.extend_from_slice(&body);
        let mut input = std::io::Cursor::new(stream);
        assert!(matches!(
            read_one(&mut input),
            Some(Incoming::Message { lossy: true, .. })
        ));
    }
}
