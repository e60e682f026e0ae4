//! Time from didChange to publishDiagnostics, and memory after many edits.
//!
//! `cargo run -p fleetform-lsp --example lsp_bench -- DIR [EDITS]` opens every
//! `*.hcl` file of DIR, then sends EDITS (default 1,000) changes to the first
//! one (appending and removing a comment, alternately, so the configuration
//! stays the same), each answered by the full diagnostics of the directory,
//! and prints the median and slowest time from a didChange to the
//! publishDiagnostics of the changed buffer, the median time of a completion
//! request, and the process's RSS before and after.
//! The server runs in this process (over pipes), so the RSS is the server's
//! plus this small client's.

use lsp_server::{Message, Notification, Request, RequestId};
use serde_json::{json, Value};
use std::io::BufReader;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: lsp_bench DIR [EDITS]")?).canonicalize()?;
    let edits: usize = args.next().map_or(Ok(1000), |n| n.parse())?;

    let (server_in, mut to_server) = std::io::pipe()?;
    let (from_server, server_out) = std::io::pipe()?;
    let server = std::thread::spawn(move || fleetform_lsp::serve(server_in, server_out));
    let mut from_server = BufReader::new(from_server);
    let mut send = |message: Message| message.write(&mut to_server);
    let mut read = move || -> Result<Message, Box<dyn std::error::Error>> {
        Message::read(&mut from_server)?.ok_or_else(|| "the server closed its output".into())
    };

    send(
        Request::new(
            RequestId::from(1),
            "initialize".into(),
            json!({ "capabilities": {} }),
        )
        .into(),
    )?;
    while !matches!(read()?, Message::Response(_)) {}
    send(Notification::new("initialized".into(), json!({})).into())?;

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "hcl"))
        .collect();
    files.sort();
    let first = files.first().ok_or("no *.hcl files")?.clone();
    let uri = |p: &PathBuf| {
        url::Url::from_file_path(p)
            .map(|u| u.to_string())
            .unwrap_or_default()
    };
    let n_files = files.len();
    let mut text = String::new();
    for path in &files {
        let t = std::fs::read_to_string(path)?;
        if *path == first {
            text = t.clone();
        }
        send(Notification::new(
            "textDocument/didOpen".into(),
            json!({ "textDocument": { "uri": uri(path), "languageId": "hcl", "version": 1, "text": t } }),
        )
        .into())?;
    }
    // The server loads before it answers any request: once this (unknown)
    // request is answered, every open has been published.
    send(Request::new(RequestId::from(3), "fleetform/sync".into(), Value::Null).into())?;
    while !matches!(read()?, Message::Response(_)) {}
    let before = rss_kib();

    let first_uri = uri(&first);
    let mut times: Vec<Duration> = Vec::with_capacity(edits);
    for version in 2..(edits + 2) {
        let new_text = if version % 2 == 0 {
            format!("{text}# edit\n")
        } else {
            text.clone()
        };
        let started = Instant::now();
        send(Notification::new(
            "textDocument/didChange".into(),
            json!({ "textDocument": { "uri": first_uri, "version": version }, "contentChanges": [{ "text": new_text }] }),
        )
        .into())?;
        // The changed buffer's publish carries its version.
        loop {
            if let Message::Notification(n) = read()? {
                if n.method == "textDocument/publishDiagnostics"
                    && n.params["uri"] == first_uri.as_str()
                    && n.params["version"] == version
                {
                    break;
                }
            }
        }
        times.push(started.elapsed());
    }
    let after = rss_kib();

    // Requests index every file of the directory (again only where it changed).
    let mut requests: Vec<Duration> = Vec::new();
    for id in 10..30 {
        let started = Instant::now();
        send(Request::new(
            RequestId::from(id),
            "textDocument/completion".into(),
            json!({ "textDocument": { "uri": first_uri }, "position": { "line": 0, "character": 0 } }),
        )
        .into())?;
        while !matches!(read()?, Message::Response(_)) {}
        requests.push(started.elapsed());
    }
    requests.sort();
    send(Request::new(RequestId::from(2), "shutdown".into(), Value::Null).into())?;
    while !matches!(read()?, Message::Response(_)) {}
    send(Notification::new("exit".into(), Value::Null).into())?;
    let _ = server.join();

    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let worst = times.last().copied().unwrap_or_default();
    println!(
        "{}: {n_files} files, {edits} edits: didChange -> publishDiagnostics median {median:?}, slowest {worst:?}; completion median {:?}; RSS {} KiB after opening, {} KiB after the edits",
        dir.display(),
        requests.get(requests.len() / 2).copied().unwrap_or_default(),
        before.map_or("?".into(), |k| k.to_string()),
        after.map_or("?".into(), |k| k.to_string()),
    );
    Ok(())
}
