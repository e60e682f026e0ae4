//! A minimal LSP client over a child process's stdio, for the tests.

#![allow(dead_code)] // Each test file uses part of it.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::Duration;

/// How long the server may take for one message before a test fails: a
/// bound on a hung server, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(120);

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    /// The last diagnostics published per URI, with their version.
    pub diagnostics: HashMap<String, (Option<i64>, Vec<Value>)>,
    /// window/showMessage texts received.
    pub messages: Vec<String>,
}

impl Client {
    /// Starts `program` (the server) and sends `initialize` with `encodings`
    /// offered; returns the client and the initialize result.
    pub fn start(program: &str, args: &[&str], encodings: &[&str]) -> (Client, Value) {
        Client::start_with_env(program, args, encodings, &[])
    }

    /// [`Client::start`] with environment variables for the server.
    pub fn start_with_env(
        program: &str,
        args: &[&str],
        encodings: &[&str],
        env: &[(&str, &str)],
    ) -> (Client, Value) {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Ok(Some(message)) = lsp_server::Message::read(&mut reader) {
                let value = serde_json::to_value(&message).expect("messages are JSON");
                if sender.send(value).is_err() {
                    break;
                }
            }
        });
        let mut client = Client {
            child,
            stdin,
            incoming,
            next_id: 1,
            diagnostics: HashMap::new(),
            messages: Vec::new(),
        };
        let result = client.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": null,
                "capabilities": { "general": { "positionEncodings": encodings } }
            }),
        );
        client.notify("initialized", json!({}));
        (client, result)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let header = format!("Content-Length: {}\r\n\r\n", bytes.len());
        self.stdin
            .write_all(header.as_bytes())
            .expect("write header");
        self.stdin.write_all(bytes).expect("write body");
        self.stdin.flush().expect("flush");
    }

    fn send(&mut self, value: Value) {
        let body = serde_json::to_vec(&value).expect("encodable");
        self.send_raw(&body);
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and reads until its response; the whole response.
    pub fn request_full(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        self.read_until(|m| m.get("id") == Some(&json!(id)) && m.get("method").is_none())
    }

    /// Sends a request; its result (panics on an error response).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let response = self.request_full(method, params);
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response.get("result").cloned().unwrap_or(Value::Null)
    }

    /// Reads messages (recording notifications) until one matches.
    pub fn read_until(&mut self, mut wanted: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let message = match self.incoming.recv_timeout(PATIENCE) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the server sent nothing for {PATIENCE:?}")
                }
                Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output"),
            };
            match message.get("method").and_then(Value::as_str) {
                Some("textDocument/publishDiagnostics") => {
                    let params = &message["params"];
                    let uri = params["uri"].as_str().unwrap_or_default().to_string();
                    let version = params.get("version").and_then(Value::as_i64);
                    let list = params["diagnostics"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    self.diagnostics.insert(uri, (version, list));
                }
                Some("window/showMessage") => {
                    self.messages.push(
                        message["params"]["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
                _ => {}
            }
            if wanted(&message) {
                return message;
            }
        }
    }

    /// Reads until diagnostics for `uri` at `version` arrive.
    pub fn diagnostics_of(&mut self, uri: &str, version: i64) -> Vec<Value> {
        let message = self.read_until(|m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri
                && m["params"]["version"] == version
        });
        message["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn open(&mut self, path: &Path, text: &str) -> String {
        let uri = uri(path);
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "hcl", "version": 1, "text": text } }),
        );
        uri
    }

    /// `shutdown`, `exit`, and the server's exit code.
    pub fn shutdown(mut self) -> Option<i32> {
        let result = self.request("shutdown", Value::Null);
        assert_eq!(result, Value::Null);
        self.notify("exit", Value::Null);
        self.wait()
    }

    /// Waits (bounded) for the process to end; its exit code.
    pub fn wait(mut self) -> Option<i32> {
        let (sender, receiver) = channel();
        std::thread::spawn(move || {
            let _ = sender.send(self.child.wait().ok().and_then(|s| s.code()));
        });
        receiver.recv_timeout(PATIENCE).expect("the server exits")
    }
}

pub fn uri(path: &Path) -> String {
    url::Url::from_file_path(path)
        .expect("absolute path")
        .to_string()
}

/// A path in the repository (this module serves the lsp crate's tests and the root crate's).
pub fn repo(relative: &str) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if here.join("lsp").is_dir() {
        here
    } else {
        here.parent()
            .expect("the lsp crate is inside the repository")
    };
    root.join(relative).canonicalize().expect("exists")
}

/// Where `needle` is in `text` (its `nth` occurrence), as an LSP position in UTF-16.
pub fn position(text: &str, needle: &str, nth: usize) -> Value {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("`{needle}` is in the text"));
    let before = &text[..at];
    let line = before.matches('\n').count();
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let character: usize = before[start..].chars().map(char::len_utf16).sum();
    json!({ "line": line, "character": character })
}
