//! The server as a process: JSON-RPC over its stdin and stdout, as an
//! editor drives it.

mod support;

use serde_json::{json, Value};
use support::{position, repo, uri, Client};

const SERVER: &str = env!("CARGO_BIN_EXE_fleetform-lsp");

fn start(encodings: &[&str]) -> (Client, Value) {
    Client::start(SERVER, &[], encodings)
}

fn total(client: &Client, uris: &[&str]) -> usize {
    uris.iter()
        .map(|u| client.diagnostics.get(*u).map_or(0, |(_, d)| d.len()))
        .sum()
}

#[test]
fn ten_mistakes_are_ten_diagnostics_and_fixing_one_leaves_nine() {
    let dir = repo("tests/fixtures/ten-mistakes");
    let fleet_path = dir.join("fleet.hcl");
    let workers_path = dir.join("workers.hcl");
    let fleet_text = std::fs::read_to_string(&fleet_path).expect("fixture");
    let workers_text = std::fs::read_to_string(&workers_path).expect("fixture");
    let (mut client, init) = start(&[]);
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-16");

    let fleet = client.open(&fleet_path, &fleet_text);
    let workers = client.open(&workers_path, &workers_text);
    client.diagnostics_of(&fleet, 1);
    client.diagnostics_of(&workers, 1);
    let all: Vec<Value> = [&fleet, &workers]
        .iter()
        .flat_map(|u| client.diagnostics[*u].1.clone())
        .collect();
    assert_eq!(all.len(), 10, "{all:#?}");
    for d in &all {
        assert_eq!(d["source"], "fleetform");
        assert!(d["code"].is_string(), "{d}");
        assert!(d["range"]["start"]["line"].is_u64(), "{d}");
        assert!(
            d["message"].as_str().is_some_and(|m| m.contains("help: ")),
            "{d}"
        );
    }
    // The misspelt attribute is reported on its own name.
    let typo = all
        .iter()
        .find(|d| d["code"] == "unknown-attribute")
        .expect("rollbak_window is reported");
    assert_eq!(
        typo["range"]["start"],
        position(&fleet_text, "rollbak_window", 0)
    );

    // Fix the spelling (an incremental change of the one word).
    let start = position(&fleet_text, "rollbak_window", 0);
    let end = json!({ "line": start["line"], "character": start["character"].as_u64().unwrap_or(0) + 14 });
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": fleet, "version": 2 },
            "contentChanges": [{ "range": { "start": start, "end": end }, "text": "rollback_window" }]
        }),
    );
    client.diagnostics_of(&fleet, 2);
    assert_eq!(
        total(&client, &[&fleet, &workers]),
        9,
        "{:#?}",
        client.diagnostics
    );
    assert_eq!(
        client.diagnostics[&fleet]
            .1
            .iter()
            .filter(|d| d["code"] == "unknown-attribute")
            .count(),
        0
    );

    assert_eq!(client.shutdown(), Some(0));
}

#[test]
fn utf16_and_utf8_columns_after_non_ascii_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fleet.hcl");
    // `rollbak_window` follows a comment of two-byte, three-byte and four-byte characters.
    let text = "fleet \"f\" {\n  account_id = \"123456789012\"\n  regions = [\"us-east-1\"]\n  /* é € 🦀 */ rollbak_window = \"30d\"\n}\n";
    std::fs::write(&path, text).expect("write");
    for (offered, expected, column) in [
        (vec![], "utf-16", 2 + 12 + 1),
        (vec!["utf-8", "utf-16"], "utf-8", 2 + 17 + 1),
    ] {
        let (mut client, init) = start(&offered);
        assert_eq!(init["capabilities"]["positionEncoding"], expected);
        let uri = client.open(&path, text);
        let diags = client.diagnostics_of(&uri, 1);
        let typo = diags
            .iter()
            .find(|d| d["code"] == "unknown-attribute")
            .unwrap_or_else(|| panic!("reported: {diags:#?}"));
        assert_eq!(
            typo["range"]["start"],
            json!({ "line": 3, "character": column }),
            "{expected}"
        );
        assert_eq!(client.shutdown(), Some(0));
    }
}

#[test]
fn navigation_completion_hover_and_formatting_on_quickstart() {
    let dir = repo("examples/quickstart");
    let fleet_path = dir.join("fleet.hcl");
    let workers_path = dir.join("workers.hcl");
    let fleet_text = std::fs::read_to_string(&fleet_path).expect("example");
    let workers_text = std::fs::read_to_string(&workers_path).expect("example");
    let (mut client, _) = start(&[]);
    let workers = client.open(&workers_path, &workers_text);
    let fleet = uri(&fleet_path);
    client.diagnostics_of(&workers, 1);
    assert!(
        client.diagnostics[&workers].1.is_empty(),
        "{:#?}",
        client.diagnostics
    );
    let doc = json!({ "uri": workers });

    // Definition of `ami_set.ubuntu`, declared in the other file.
    let at = position(&workers_text, "ami_set.ubuntu", 0);
    let found = client.request(
        "textDocument/definition",
        json!({ "textDocument": doc, "position": at }),
    );
    assert_eq!(found[0]["uri"], fleet);
    assert_eq!(
        found[0]["range"]["start"],
        position(&fleet_text, "ubuntu\" {", 0)
    );

    // References: both worker types, and the declaration.
    let refs = client.request(
        "textDocument/references",
        json!({ "textDocument": doc, "position": at, "context": { "includeDeclaration": true } }),
    );
    assert_eq!(refs.as_array().map(Vec::len), Some(3), "{refs}");

    // Rename the AMI set: the declaration and both references, over two files.
    let edit = client.request(
        "textDocument/rename",
        json!({ "textDocument": doc, "position": at, "newName": "jammy" }),
    );
    assert_eq!(
        edit["changes"][&fleet].as_array().map(Vec::len),
        Some(1),
        "{edit}"
    );
    assert_eq!(
        edit["changes"][&workers].as_array().map(Vec::len),
        Some(2),
        "{edit}"
    );
    assert!(client.messages.is_empty());

    // Rename a worker type: its label, plus `name` to keep the EC2 identity.
    let label = position(&workers_text, "linux-small\" {", 0);
    let edit = client.request(
        "textDocument/rename",
        json!({ "textDocument": doc, "position": label, "newName": "small" }),
    );
    let texts: Vec<&str> = edit["changes"][&workers]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["newText"].as_str())
        .collect();
    assert_eq!(texts, ["small", "\n  name = \"linux-small\""], "{edit}");
    // (The message comes before the response, so it has been read.)
    assert!(
        client
            .messages
            .iter()
            .any(|m| m.contains("name = \"linux-small\"")),
        "{:?}",
        client.messages
    );

    // An invalid new name is an error, not an edit.
    let bad = client.request_full(
        "textDocument/rename",
        json!({ "textDocument": doc, "position": label, "newName": "no spaces" }),
    );
    assert!(
        bad["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a valid name")),
        "{bad}"
    );

    // Hover on the AMI set: its image per region.
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": doc, "position": at }),
    );
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(shown.contains("us-east-1: `ami-785db401`"), "{shown}");
    // Hover on a worker type: capacity range, price at max, user data length.
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": doc, "position": label }),
    );
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(shown.contains("capacity 1..4"), "{shown}");
    assert!(shown.contains("/h on demand"), "{shown}");
    assert!(shown.contains("bytes rendered"), "{shown}");

    // Hover on an instance type: its price from the catalog.
    let in_label = position(&workers_text, "m5.xlarge", 0);
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": doc, "position": in_label }),
    );
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        shown.contains("instance type `m5.xlarge`") && shown.contains("/h on demand"),
        "{shown}"
    );

    // Completion: references after `ami_set.`, attributes in `capacity`,
    // instance types in a label, values of `market`.
    let labels = |result: &Value| -> Vec<String> {
        result
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["label"].as_str().map(str::to_string))
            .collect()
    };
    let after_dot = position(&workers_text, "ubuntu", 0);
    let items = client.request(
        "textDocument/completion",
        json!({ "textDocument": doc, "position": after_dot }),
    );
    assert_eq!(labels(&items), ["ubuntu"]);
    let in_capacity = position(&workers_text, "min = 1", 0);
    let items = client.request(
        "textDocument/completion",
        json!({ "textDocument": doc, "position": in_capacity }),
    );
    // `min` and `max` are set already: only `scope` is left.
    assert_eq!(labels(&items), ["scope"]);
    let in_label = position(&workers_text, "t3.medium", 0);
    let items = client.request(
        "textDocument/completion",
        json!({ "textDocument": doc, "position": in_label }),
    );
    assert!(labels(&items).contains(&"m5.xlarge".to_string()));
    let in_market = position(&workers_text, "spot\"", 0);
    let items = client.request(
        "textDocument/completion",
        json!({ "textDocument": doc, "position": in_market }),
    );
    assert_eq!(labels(&items), ["spot", "on-demand"]);
    // After `=`: references and the engine's functions.
    let after_equals = position(&workers_text, "templatefile", 0);
    let items = client.request(
        "textDocument/completion",
        json!({ "textDocument": doc, "position": after_equals }),
    );
    let names = labels(&items);
    assert!(
        names.contains(&"templatefile".to_string()) && names.contains(&"var".to_string()),
        "{names:?}"
    );
    let top = json!({ "line": 0, "character": 0 });
    let items = client.request(
        "textDocument/completion",
        json!({ "textDocument": doc, "position": top }),
    );
    assert!(labels(&items).contains(&"worker_type".to_string()));

    // Document symbols: the two worker types.
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": doc }),
    );
    let names: Vec<&str> = symbols
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["linux-small", "linux-large"]);

    // Formatting: nothing to change in a formatted file; `fmt`'s output for an unformatted one.
    let edits = client.request(
        "textDocument/formatting",
        json!({ "textDocument": doc, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(edits, json!([]));
    let messy = workers_text.replace("  ami_set  = ami_set.ubuntu", "ami_set=ami_set.ubuntu");
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": workers, "version": 2 }, "contentChanges": [{ "text": messy }] }),
    );
    let edits = client.request(
        "textDocument/formatting",
        json!({ "textDocument": doc, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(edits[0]["newText"].as_str(), Some(workers_text.as_str()));

    assert_eq!(client.shutdown(), Some(0));
}

#[test]
fn bad_input_gets_answers_or_errors_never_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("workers.hcl");
    std::fs::write(&path, "worker_type \"a\" {\n}\n").expect("write");
    let (mut client, _) = start(&[]);

    // A directory without a fleet block: diagnostics, not a crash.
    let text = "worker_type \"a\" {\n}\n";
    let doc_uri = client.open(&path, text);
    let diags = client.diagnostics_of(&doc_uri, 1);
    assert!(!diags.is_empty());

    // Malformed JSON and a body that is not UTF-8: the server goes on.
    client.send_raw(b"{not json");
    let mut bytes = br##"{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":{"uri":"URI","version":2},"contentChanges":[{"text":"# "##
        .to_vec();
    bytes = String::from_utf8_lossy(&bytes)
        .replace("URI", &doc_uri)
        .into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"\\n\"}]}}");
    client.send_raw(&bytes);
    client.diagnostics_of(&doc_uri, 2);
    assert!(
        client
            .messages
            .iter()
            .any(|m| m.contains("not valid UTF-8")),
        "{:?}",
        client.messages
    );

    // Positions past the end of the line and of the document.
    let doc = json!({ "uri": doc_uri });
    for at in [
        json!({ "line": 0, "character": 10_000 }),
        json!({ "line": 10_000, "character": 3 }),
    ] {
        // (A null result arrives as a response without `result`.)
        let response = client.request_full(
            "textDocument/hover",
            json!({ "textDocument": doc, "position": at }),
        );
        assert!(response.get("error").is_none(), "{response}");
        let response = client.request_full(
            "textDocument/completion",
            json!({ "textDocument": doc, "position": at }),
        );
        assert!(response["result"].is_array(), "{response}");
    }

    // An unknown method is an LSP error.
    let response = client.request_full("fleetform/nothing", json!({}));
    assert_eq!(response["error"]["code"], -32601);

    // The file deleted while open: the buffer still counts.
    std::fs::remove_file(&path).expect("remove");
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": doc_uri, "version": 3 }, "contentChanges": [{ "text": "fleet \"f\" {\n" }] }),
    );
    let diags = client.diagnostics_of(&doc_uri, 3);
    assert!(diags.iter().any(|d| d["code"] == "syntax"), "{diags:#?}");

    // A 10 MB buffer.
    let big = "# padding padding padding padding padding padding padding padding\n".repeat(160_000);
    assert!(big.len() > 10_000_000);
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": doc_uri, "version": 4 }, "contentChanges": [{ "text": big }] }),
    );
    client.diagnostics_of(&doc_uri, 4);
    let formatting = client.request_full(
        "textDocument/formatting",
        json!({ "textDocument": doc, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert!(formatting["result"].is_array(), "{formatting}");

    assert_eq!(client.shutdown(), Some(0));
}

#[test]
fn exit_without_shutdown_is_exit_code_one() {
    let (mut client, _) = start(&[]);
    client.notify("exit", Value::Null);
    assert_eq!(client.wait(), Some(1));
}

#[test]
fn an_unset_variable_is_not_an_error_while_editing() {
    let dir = repo("examples/quickstart");
    let path = dir.join("fleet.hcl");
    let text = std::fs::read_to_string(&path).expect("example");
    let without_default = text.replace("  default     = \"releng\"\n", "");
    assert_ne!(text, without_default, "the example sets a default");
    let (mut client, _) = start(&[]);
    // The unsaved buffer, not the file on disk, is what is checked.
    let uri = client.open(&path, &without_default);
    let diags = client.diagnostics_of(&uri, 1);
    assert!(
        diags.iter().all(|d| d["code"] != "variable-unset"),
        "{diags:#?}"
    );
    assert!(diags.is_empty(), "{diags:#?}");
    // A mistake elsewhere in the same buffer is still reported.
    let broken = without_default.replace("rollback_window", "rollbak_window");
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": broken }] }),
    );
    let diags = client.diagnostics_of(&uri, 2);
    let codes: Vec<&str> = diags.iter().filter_map(|d| d["code"].as_str()).collect();
    assert_eq!(codes, ["unknown-attribute"], "{diags:#?}");
    assert_eq!(client.shutdown(), Some(0));
}

#[test]
fn a_change_in_one_file_reports_and_then_clears_another() {
    let dir = repo("examples/quickstart");
    let fleet_path = dir.join("fleet.hcl");
    let workers = uri(&dir.join("workers.hcl"));
    let text = std::fs::read_to_string(&fleet_path).expect("example");
    let (mut client, _) = start(&[]);
    let fleet = client.open(&fleet_path, &text);
    client.diagnostics_of(&fleet, 1);
    // The other file of the directory is published in the same round, after it.
    let message = client.read_until(|m| {
        m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == workers
    });
    assert_eq!(message["params"]["diagnostics"], json!([]));

    // Renaming the AMI set in the unsaved buffer breaks the references in the other file.
    let renamed = text.replace("ami_set \"ubuntu\"", "ami_set \"jammy\"");
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": fleet, "version": 2 }, "contentChanges": [{ "text": renamed }] }),
    );
    client.diagnostics_of(&fleet, 2);
    let message = client.read_until(|m| {
        m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == workers
    });
    let codes: Vec<&str> = message["params"]["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        ["undefined-reference", "undefined-reference"],
        "{message}"
    );

    // Undoing it clears that file.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": fleet, "version": 3 }, "contentChanges": [{ "text": text }] }),
    );
    client.diagnostics_of(&fleet, 3);
    let message = client.read_until(|m| {
        m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == workers
    });
    assert_eq!(message["params"]["diagnostics"], json!([]));
    assert_eq!(client.shutdown(), Some(0));
}

/// Copies examples/quickstart into a temporary directory.
fn quickstart_copy() -> tempfile::TempDir {
    let from = repo("examples/quickstart");
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["", "keys", "userdata"] {
        let source = from.join(sub);
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        for entry in std::fs::read_dir(&source).expect("read_dir").flatten() {
            if entry.path().is_file() {
                std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name()))
                    .expect("copy");
            }
        }
    }
    dir
}

#[test]
fn hover_never_shows_a_sensitive_value() {
    let dir = quickstart_copy();
    let path = dir.path().join("workers.hcl");
    let text = std::fs::read_to_string(&path).expect("copied").replacen(
        "user_data    = templatefile(\"userdata/worker.sh\", { worker_type = \"linux-small\" })",
        "user_data    = \"token=${var.token}\"",
        1,
    ) + "\nvariable \"token\" {\n  sensitive = true\n}\n";
    let secret = "s3cr3t-9f8e7d";
    let (mut client, _) =
        Client::start_with_env(SERVER, &[], &[], &[("FLEETFORM_VAR_token", secret)]);
    let uri = client.open(&path, &text);
    let diags = client.diagnostics_of(&uri, 1);
    assert!(diags.is_empty(), "{diags:#?}");
    let doc = json!({ "uri": uri });
    for at in [
        position(&text, "linux-small\" {", 0),
        position(&text, "var.token", 0),
        position(&text, "token\" {", 0),
    ] {
        let hover = client.request(
            "textDocument/hover",
            json!({ "textDocument": doc, "position": at }),
        );
        let shown = hover["contents"]["value"].as_str().unwrap_or_default();
        assert!(!shown.is_empty());
        assert!(!shown.contains(secret), "{shown}");
    }
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": doc, "position": position(&text, "linux-small\" {", 0) }),
    );
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    let expected = format!(
        "user data: {} bytes rendered (sensitive)",
        "token=".len() + secret.len()
    );
    assert!(shown.contains(&expected), "{shown}");
    assert_eq!(client.shutdown(), Some(0));
}
