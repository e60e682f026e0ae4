//! `fleetform lsp` as an editor starts it: the binary's command over stdio
//! (the features are tested in lsp/tests against the crate's own binary).

#[path = "../lsp/tests/support/mod.rs"]
mod support;

use support::{repo, Client};

#[test]
fn fleetform_lsp_reports_the_ten_mistakes_and_exits_cleanly() {
    let (mut client, init) = Client::start(env!("CARGO_BIN_EXE_fleetform"), &["lsp"], &[]);
    assert_eq!(init["serverInfo"]["name"], "fleetform");
    let dir = repo("tests/fixtures/ten-mistakes");
    let mut count = 0;
    for name in ["fleet.hcl", "workers.hcl"] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).expect("fixture");
        let uri = client.open(&path, &text);
        client.diagnostics_of(&uri, 1);
    }
    for (_, diagnostics) in client.diagnostics.values() {
        count += diagnostics.len();
    }
    assert_eq!(count, 10, "{:#?}", client.diagnostics);
    assert_eq!(client.shutdown(), Some(0));
}
