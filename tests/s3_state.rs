//! The CLI on a `backend "s3"` state, against the local endpoint's S3
//! (moto_server, through aws-sdk-s3): racing applies, a lease that expires,
//! `state migrate` there and back, and damaged objects named by their URL.

use fleetform_state::{version_digest, Backend, LocalBackend, S3Backend, S3Location};
use fleetform_test_support::fault::{first_change, HoldingProxy};
use fleetform_test_support::process::{stderr_of, wait_bounded};
use fleetform_test_support::s3::TestBucket;
use fleetform_test_support::{endpoint, unique_fleet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy one";

const STATE_KEY: &str = "teams/ci/fleet-state";

/// A fleet of two worker types in one region; `backend` is prepended.
fn write_fleet(dir: &Path, fleet: &str, backend: &str, user_data: &str) {
    let mut hcl = format!(
        "{backend}fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\"]\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n    \"us-east-1\" = \"ami-785db401\"\n  }}\n}}\n"
    );
    for name in ["builder", "tester"] {
        hcl.push_str(&format!(
            "\nworker_type \"{name}\" {{\n  ami_set   = ami_set.linux\n  key_pair  = key_pair.workers\n  user_data = \"{user_data}\"\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = 1\n    max = 2\n  }}\n}}\n"
        ));
    }
    std::fs::write(dir.join("fleet.hcl"), hcl).expect("write config");
    std::fs::write(dir.join("workers.pub"), KEY).expect("write key");
}

fn s3_block(bucket: &TestBucket) -> String {
    format!(
        "backend \"s3\" {{\n  bucket = \"{}\"\n  key    = \"{STATE_KEY}/\"\n  region = \"us-east-1\"\n}}\n\n",
        bucket.name
    )
}

/// A fleet whose state is in a new bucket.
fn s3_fleet(prefix: &str) -> (TempDir, String, TestBucket) {
    let bucket = TestBucket::create(prefix);
    let fleet = unique_fleet(prefix);
    let dir = tempfile::tempdir().expect("tempdir");
    write_fleet(dir.path(), &fleet, &s3_block(&bucket), "v1");
    (dir, fleet, bucket)
}

/// The CLI with EC2 requests sent to `via` and S3 requests straight to the
/// local endpoint (so a proxy in front of EC2 never sees them).
fn command(args: &[&str], dir: &Path, via: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetform"));
    command
        .args(args)
        .arg("--no-color")
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", via)
        .env("FLEETFORM_S3_ENDPOINT", endpoint())
        .stdin(Stdio::null());
    command
}

fn fleetform(args: &[&str], dir: &Path) -> Output {
    command(args, dir, endpoint()).output().expect("runs")
}

fn spawn(args: &[&str], dir: &Path, via: &str, env: &[(&str, &str)]) -> Child {
    let mut command = command(args, dir, via);
    command.envs(env.iter().copied());
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {}", text(out));
}

fn s3_store(bucket: &TestBucket) -> S3Backend {
    S3Backend::connect(
        S3Location {
            bucket: bucket.name.clone(),
            key: STATE_KEY.into(),
            region: Some("us-east-1".into()),
        },
        {
            let options = fleetform_aws::ConnectOptions::for_endpoint(Some(endpoint().to_string()));
            async move {
                fleetform_aws::sdk_config(&options)
                    .await
                    .map_err(|e| e.message)
            }
        },
    )
    .expect("connect")
}

/// A proxy in front of EC2 that holds the first mutating call until released.
fn hold_first_change() -> HoldingProxy {
    HoldingProxy::start(endpoint(), first_change()).expect("proxy")
}

#[test]
fn of_applies_racing_on_one_s3_state_exactly_one_holds_the_lock_the_others_exit_3() {
    let (dir, fleet, bucket) = s3_fleet("s3-race");
    for (round, racers) in [2usize, 4].into_iter().enumerate() {
        write_fleet(
            dir.path(),
            &fleet,
            &s3_block(&bucket),
            &format!("race{round}"),
        );
        let proxy = hold_first_change();
        let mut children: Vec<Child> = (0..racers)
            .map(|_| spawn(&["apply", "--auto-approve"], dir.path(), &proxy.url, &[]))
            .collect();
        assert!(
            proxy.wait_for_held(Duration::from_secs(60)).is_some(),
            "{racers} racers: one reached EC2"
        );
        let lease = s3_store(&bucket)
            .lease()
            .expect("lock readable")
            .expect("held");
        let mut holder = None;
        let mut refused = 0;
        for child in &mut children {
            if lease.holder.ends_with(&format!(":{}", child.id())) {
                holder = Some(child.id());
                continue;
            }
            let status = wait_bounded(child, Duration::from_secs(60)).expect("a loser exits");
            let err = stderr_of(child);
            assert_eq!(status.code(), Some(3), "{racers} racers: {err}");
            assert!(
                err.contains(&format!("locked by {}", lease.holder)),
                "names the holder: {err}"
            );
            refused += 1;
        }
        assert_eq!(refused, racers - 1, "exactly one holds the lock");
        let holder = holder.expect("the holder is one of the racers");
        proxy.release_one();
        for child in &mut children {
            if child.id() == holder {
                let status = wait_bounded(child, Duration::from_secs(180)).expect("finishes");
                assert!(status.success(), "the holder applies: {}", stderr_of(child));
            }
        }
        assert_eq!(s3_store(&bucket).lease().expect("lock readable"), None);
    }
    let versions = s3_store(&bucket).list().expect("versions");
    assert_eq!(versions.len(), 2, "one version per round");
    assert!(
        !dir.path().join(".fleetform").exists(),
        "nothing was written to a local state"
    );
}

#[test]
fn a_killed_holders_s3_lease_blocks_then_expires_and_unlock_breaks_it() {
    let (dir, _fleet, bucket) = s3_fleet("s3-lease");
    let holding = hold_first_change();
    let mut child = spawn(
        &["apply", "--auto-approve"],
        dir.path(),
        &holding.url,
        &[("FLEETFORM_LOCK_LEASE_SECS", "3")],
    );
    let pid = child.id();
    assert!(holding.wait_for_held(Duration::from_secs(60)).is_some());
    let _ = child.kill();
    let _ = child.wait();
    holding.release_one();
    let blocked = fleetform(&["apply", "--auto-approve"], dir.path());
    assert_eq!(blocked.status.code(), Some(3), "{}", text(&blocked));
    assert!(
        text(&blocked).contains(&format!(":{pid}")),
        "{}",
        text(&blocked)
    );
    // A live lease is never broken without --force.
    let refused = fleetform(&["unlock"], dir.path());
    if refused.status.success() {
        // Only possible if the 3 s lease already ran out.
        assert!(text(&refused).contains("expired"), "{}", text(&refused));
    } else {
        assert!(
            text(&refused).contains(&format!(":{pid}")),
            "{}",
            text(&refused)
        );
        // Expiry is a time, not an event: poll (bounded) until it is reported.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = fleetform(&["unlock"], dir.path());
            if out.status.success() {
                assert!(
                    text(&out).contains("broke the lock of")
                        && text(&out).contains(&format!(":{pid}")),
                    "{}",
                    text(&out)
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the lease expires: {}",
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    assert_eq!(s3_store(&bucket).lease().expect("readable"), None);
    // The next apply finishes what the killed one began and records it.
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert_ok(&out, "apply after unlock");
    assert!(text(&out).contains("interrupted"), "{}", text(&out));
    assert_eq!(s3_store(&bucket).latest().expect("latest"), Some(1));
    assert!(s3_store(&bucket).journal().expect("journal").is_empty());
}

/// `history --json` without its times' formatting differences: the whole document.
fn history(dir: &Path) -> serde_json::Value {
    let out = fleetform(&["history", "--json"], dir);
    assert_ok(&out, "history");
    serde_json::from_slice(&out.stdout).expect("history JSON")
}

fn digests(store: &dyn Backend) -> Vec<(u64, String)> {
    store
        .list()
        .expect("list")
        .iter()
        .map(|s| {
            let version = store.read(s.number).expect("read");
            (s.number, version_digest(&version).expect("digest"))
        })
        .collect()
}

#[test]
fn state_migrate_moves_every_version_to_s3_and_back_verified_by_hashes() {
    let bucket = TestBucket::create("s3-migrate");
    let fleet = unique_fleet("s3-migrate");
    let dir = tempfile::tempdir().expect("tempdir");
    // Two versions in the local state.
    for user_data in ["v1", "v2"] {
        write_fleet(dir.path(), &fleet, "", user_data);
        assert_ok(
            &fleetform(&["apply", "--auto-approve"], dir.path()),
            "local apply",
        );
    }
    let local = LocalBackend::new(dir.path().join(".fleetform"));
    let local_history = history(dir.path());
    let local_digests = digests(&local);
    assert_eq!(local_digests.len(), 2);

    // Without a backend "s3" block there is nowhere to migrate to.
    let out = fleetform(&["state", "migrate", "--to", "s3"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("backend \"s3\""), "{}", text(&out));

    write_fleet(dir.path(), &fleet, &s3_block(&bucket), "v2");
    let out = fleetform(&["state", "migrate", "--to", "s3"], dir.path());
    assert_ok(&out, "migrate to s3");
    assert!(
        text(&out).contains("migrated 2 versions") && text(&out).contains("2 copied"),
        "{}",
        text(&out)
    );
    for (_, sha) in &local_digests {
        assert!(
            text(&out).contains(sha.as_str()),
            "prints each hash: {}",
            text(&out)
        );
    }
    let s3 = s3_store(&bucket);
    assert_eq!(digests(&s3), local_digests);
    assert_eq!(history(dir.path()), local_history, "history now reads S3");
    assert_eq!(s3.lease().expect("lease"), None, "the S3 lock was released");
    assert_eq!(
        local.lease().expect("lease"),
        None,
        "the local lock was released"
    );
    // The same documents, byte for byte.
    for name in ["versions/000001.json", "versions/000002.json", "index.json"] {
        let file = std::fs::read(dir.path().join(".fleetform").join(name)).expect("local file");
        assert_eq!(
            bucket.get(&format!("{STATE_KEY}/{name}")),
            Some(file),
            "{name}"
        );
    }
    // Run again: nothing to copy, nothing written.
    let again = fleetform(&["state", "migrate", "--to", "s3"], dir.path());
    assert_ok(&again, "migrate again");
    assert!(
        text(&again).contains("0 copied, 2 already there"),
        "{}",
        text(&again)
    );

    // The S3 state is the state now: plan sees no change, and an apply records version 3 there.
    let plan = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    write_fleet(dir.path(), &fleet, &s3_block(&bucket), "v3");
    assert_ok(
        &fleetform(&["apply", "--auto-approve"], dir.path()),
        "apply on s3",
    );
    assert_eq!(s3.latest().expect("latest"), Some(3));
    assert_eq!(
        local.latest().expect("latest"),
        Some(2),
        "the old local state is left as it was"
    );

    // And back, into a new directory.
    let out = fleetform(
        &[
            "state",
            "migrate",
            "--to",
            "local",
            "--local-path",
            "state-back",
        ],
        dir.path(),
    );
    assert_ok(&out, "migrate to local");
    assert!(text(&out).contains("migrated 3 versions"), "{}", text(&out));
    let back = LocalBackend::new(dir.path().join("state-back"));
    assert_eq!(digests(&back), digests(&s3));
    // Into the old local state: versions 1 and 2 are found there, 3 is copied.
    let out = fleetform(&["state", "migrate", "--to", "local"], dir.path());
    assert_ok(&out, "migrate into the old local state");
    assert!(
        text(&out).contains("1 copied, 2 already there"),
        "{}",
        text(&out)
    );
    assert_eq!(digests(&local), digests(&s3));
}

#[test]
fn a_damaged_s3_object_is_reported_by_its_url_and_nothing_is_changed() {
    let (dir, _fleet, bucket) = s3_fleet("s3-damage");
    assert_ok(
        &fleetform(&["apply", "--auto-approve"], dir.path()),
        "apply",
    );
    let url = format!("s3://{}/{STATE_KEY}", bucket.name);

    let key = format!("{STATE_KEY}/versions/000001.json");
    let mut bytes = bucket.get(&key).expect("version object");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x04;
    bucket.put(&key, &bytes);
    let out = fleetform(&["show", "--version", "1"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{url}/versions/000001.json is corrupt")),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("panicked"), "{}", text(&out));

    let index_key = format!("{STATE_KEY}/index.json");
    let index = bucket.get(&index_key).expect("index");
    bucket.put(&index_key, &index[..index.len() - 3]);
    for args in [&["history"][..], &["apply", "--auto-approve"][..]] {
        let out = fleetform(args, dir.path());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("{url}/index.json is corrupt")),
            "{args:?}: {}",
            text(&out)
        );
        assert!(
            text(&out).contains("copy it to another key"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(
        bucket.get(&key),
        Some(bytes),
        "the damaged version is untouched"
    );
    assert_eq!(
        bucket.get(&index_key).as_deref(),
        Some(&index[..index.len() - 3]),
        "the damaged index is untouched"
    );
    assert_eq!(
        s3_store(&bucket).lease().expect("lease"),
        None,
        "the lock was released"
    );
}

#[test]
fn a_missing_bucket_or_a_broken_backend_block_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = unique_fleet("s3-missing");
    write_fleet(
        dir.path(),
        &fleet,
        "backend \"s3\" {\n  bucket = \"fleetform-no-such-bucket\"\n  key    = \"k\"\n}\n\n",
        "v1",
    );
    let out = fleetform(&["history"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("s3://fleetform-no-such-bucket/k/"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("NoSuchBucket"), "{}", text(&out));
    assert!(
        text(&out).contains("check that the bucket exists"),
        "{}",
        text(&out)
    );

    // A backend block with an error: no command guesses the state.
    write_fleet(
        dir.path(),
        &fleet,
        "backend \"s3\" {\n  bucket = \"b\"\n}\n\n",
        "v1",
    );
    for args in [&["history"][..], &["unlock"][..]] {
        let out = fleetform(args, dir.path());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("missing required attribute `key`"),
            "{}",
            text(&out)
        );
        assert!(
            text(&out).contains("cannot tell where the state is"),
            "{}",
            text(&out)
        );
    }
    assert!(!dir.path().join(".fleetform").exists());
}

fn version(number: u64, note: &str) -> fleetform_state::Version {
    fleetform_state::Version {
        format_version: fleetform_state::FORMAT_VERSION,
        number,
        time: 1_700_000_000,
        git_commit: None,
        git_dirty: false,
        caller: "arn:aws:iam::123456789012:user/a".into(),
        rollback_of: None,
        sources: [("fleet.hcl".to_string(), note.to_string())].into(),
        variables: Default::default(),
        plan: serde_json::json!({"actions": []}),
        outcomes: Vec::new(),
        observed: serde_json::json!([]),
        diff: String::new(),
        summary: serde_json::json!({"add": 0}),
        images: Default::default(),
        sensitive: None,
        key_pair_users: Default::default(),
    }
}

#[test]
fn state_migrate_refuses_another_history_an_unfinished_apply_and_a_held_lock() {
    let (dir, _fleet, bucket) = s3_fleet("s3-refuse");
    let local = LocalBackend::new(dir.path().join(".fleetform"));
    for n in 1..=2 {
        local.write(&version(n, "ours")).expect("write");
    }
    let s3 = s3_store(&bucket);
    s3.write(&version(1, "ours")).expect("write");
    s3.write(&version(2, "theirs")).expect("write");
    let before = bucket.keys(STATE_KEY);
    let out = fleetform(&["state", "migrate", "--to", "s3"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("version 2 is in both stores with different contents"),
        "{}",
        text(&out)
    );
    assert_eq!(bucket.keys(STATE_KEY), before, "nothing written");
    assert_eq!(s3.lease().expect("lease"), None);
    assert_eq!(local.lease().expect("lease"), None);

    // An apply that was not recorded, in the source: refused.
    let (dir, _fleet, bucket) = s3_fleet("s3-refuse");
    let local = LocalBackend::new(dir.path().join(".fleetform"));
    local.write(&version(1, "ours")).expect("write");
    local
        .append_journal(&fleetform_state::JournalRecord::Begin {
            apply_id: "a".into(),
            time: 1,
            holder: "x@y:1".into(),
            actions: 3,
        })
        .expect("journal");
    let out = fleetform(&["state", "migrate", "--to", "s3"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("journal at"), "{}", text(&out));
    assert!(bucket.keys(&format!("{STATE_KEY}/versions/")).is_empty());
    local.clear_journal().expect("clear");

    // The destination's lock is held: exit 3, naming the holder.
    let s3 = s3_store(&bucket);
    let lease = s3
        .lock("someone@elsewhere:7", 600, fleetform_state::now())
        .expect("lock");
    let out = fleetform(&["state", "migrate", "--to", "s3"], dir.path());
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("someone@elsewhere:7"), "{}", text(&out));
    assert_eq!(
        local.lease().expect("lease"),
        None,
        "the source lock was released"
    );
    s3.release(lease).expect("release");
    assert_ok(
        &fleetform(&["state", "migrate", "--to", "s3"], dir.path()),
        "migrate",
    );
}

/// A fleet of `worker_types` worker types in one region, each launching
/// one instance (min 1, max 2): a key pair, a template and a launch each.
fn launching_fleet(dir: &Path, fleet: &str, backend: &str, worker_types: usize) {
    let mut hcl = format!(
        "{backend}fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\"]\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n    \"us-east-1\" = \"ami-785db401\"\n  }}\n}}\n"
    );
    for n in 0..worker_types {
        hcl.push_str(&format!(
            "\nworker_type \"w{n}\" {{\n  ami_set  = ami_set.linux\n  key_pair = key_pair.workers\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = 1\n    max = 2\n  }}\n}}\n"
        ));
    }
    std::fs::write(dir.join("fleet.hcl"), hcl).expect("write config");
    std::fs::write(dir.join("workers.pub"), KEY).expect("write key");
}

/// Key pairs, launch templates and instances of the fleet in `dir`, as EC2
/// holds them: how many of each (address, region, kind).
fn objects_in_ec2(dir: &Path) -> std::collections::BTreeMap<(String, String, String), usize> {
    use fleetform_engine::provider::{ObserveRequest, Provider};
    let loaded = fleetform_engine::load_dir(dir, &fleetform_engine::Inputs::default());
    let config = loaded.config.expect("valid config");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let provider = runtime
        .block_on(fleetform_aws::AwsProvider::connect(
            &fleetform_aws::ConnectOptions {
                endpoint_url: Some(endpoint().to_string()),
                ..fleetform_aws::ConnectOptions::default()
            },
        ))
        .expect("connects");
    let observation = runtime.block_on(provider.observe(&ObserveRequest::for_config(&config)));
    let (entries, incomplete) = fleetform_engine::inventory::entries(&config, &observation);
    assert!(incomplete.is_empty(), "{incomplete:?}");
    let mut counts = std::collections::BTreeMap::new();
    for e in entries.into_iter().filter(|e| e.kind.as_str() != "image") {
        *counts
            .entry((e.address, e.region, e.kind.as_str().to_string()))
            .or_insert(0) += 1;
    }
    counts
}

/// How many intents and outcomes `records` hold.
fn intents_and_outcomes(records: &[fleetform_state::JournalRecord]) -> (usize, usize) {
    use fleetform_state::JournalRecord::{Intent, Outcome};
    let intents = records
        .iter()
        .filter(|r| matches!(r, Intent { .. }))
        .count();
    let outcomes = records
        .iter()
        .filter(|r| matches!(r, Outcome { .. }))
        .count();
    (intents, outcomes)
}

/// Kills an apply of the fleet in `dir` (parallelism 16) at the `at`-th
/// journaled call, before EC2 sees it or after EC2 carried it out (then
/// before its outcome can be recorded), and checks the write-ahead rule
/// from outside: every call that reached EC2's door had its intent in the
/// journal (read from `journal` after the kill), and the stopped call has
/// no outcome. Breaks the killed holder's lock.
fn kill_at_a_call(
    dir: &Path,
    at: usize,
    after_ec2: bool,
    journal: &dyn Fn() -> Vec<fleetform_state::JournalRecord>,
    extra_env: &[(&str, &str)],
) {
    let round = format!("call {at}, after EC2: {after_ec2}");
    let stop =
        fleetform_test_support::fault::CallStop::start(endpoint(), at, after_ec2).expect("proxy");
    let mut child = spawn(
        &["apply", "--auto-approve", "--parallelism", "16"],
        dir,
        &stop.url,
        extra_env,
    );
    let stopped = stop.wait_tripped(Duration::from_secs(120));
    child.kill().expect("killed");
    child.wait().expect("reaped");
    assert!(stopped.is_some(), "{round}: stopped mid-call");
    let records = journal();
    let (intents, outcomes) = intents_and_outcomes(&records);
    assert!(
        intents >= stop.calls(),
        "{round}: {} calls reached EC2, only {intents} intents are in the journal",
        stop.calls()
    );
    assert!(
        outcomes < intents,
        "{round}: the stopped call has no outcome"
    );
    let unlock = fleetform(&["unlock", "--force"], dir);
    assert_ok(&unlock, &round);
}

/// The next apply after kills converges: a no-op plan, and every object
/// once in EC2.
fn converges_without_duplicates(dir: &Path, worker_types: usize) {
    let apply = fleetform(&["apply", "--auto-approve"], dir);
    assert_ok(&apply, "the apply after the kills");
    let plan = fleetform(&["plan", "--detailed-exitcode"], dir);
    assert_eq!(plan.status.code(), Some(0), "converged: {}", text(&plan));
    let counts = objects_in_ec2(dir);
    assert_eq!(
        counts.len(),
        1 + 2 * worker_types,
        "every object: {counts:?}"
    );
    assert!(
        counts.values().all(|&n| n == 1),
        "nothing twice: {counts:?}"
    );
}

/// Group commit on an S3 state: an apply killed after its intents' batch
/// was written but before the call reached EC2, and one killed after EC2
/// made the call but before its outcome was recorded, each leave a journal
/// holding the intent of every call made; the next apply converges without
/// a duplicate key pair, template or instance.
#[test]
fn an_apply_on_s3_state_killed_between_batch_and_call_or_call_and_outcome_converges() {
    let worker_types = 6;
    let bucket = TestBucket::create("s3-group");
    let fleet = unique_fleet("s3-group");
    let dir = tempfile::tempdir().expect("tempdir");
    launching_fleet(dir.path(), &fleet, &s3_block(&bucket), worker_types);
    let store = s3_store(&bucket);
    let journal = || store.journal().expect("journal reads");
    // 13 calls: the key pair, 6 templates, 6 launches.
    kill_at_a_call(dir.path(), 4, false, &journal, &[]);
    kill_at_a_call(dir.path(), 6, true, &journal, &[]);
    converges_without_duplicates(dir.path(), worker_types);
    assert_eq!(
        bucket.keys(&format!("{STATE_KEY}/journal/")),
        Vec::<String>::new(),
        "the finished apply cleared the journal"
    );
}

/// At parallelism 16 the records of actions in flight share journal
/// objects: an apply of 60 actions, stopped at its last call, has written
/// its 60 intents (and outcomes) in well under one object per record.
#[test]
fn at_parallelism_16_the_journal_of_an_s3_state_takes_far_fewer_objects_than_records() {
    let bucket = TestBucket::create("s3-batch");
    let fleet = unique_fleet("s3-batch");
    let dir = tempfile::tempdir().expect("tempdir");
    // 19 worker types x 3 regions + 3 key pairs = 60 actions, no launches.
    let regions = ["us-east-1", "us-west-2", "eu-central-1"];
    let images: String = regions
        .iter()
        .map(|r| format!("    \"{r}\" = \"ami-785db401\"\n"))
        .collect();
    let mut hcl = format!(
        "{}fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\", \"us-west-2\", \"eu-central-1\"]\n  limits {{\n    max_launches = 0\n  }}\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n{images}  }}\n}}\n",
        s3_block(&bucket)
    );
    for n in 0..19 {
        hcl.push_str(&format!(
            "\nworker_type \"w{n}\" {{\n  ami_set  = ami_set.linux\n  key_pair = key_pair.workers\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    max = 2\n  }}\n}}\n"
        ));
    }
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write config");
    std::fs::write(dir.path().join("workers.pub"), KEY).expect("write key");
    let store = s3_store(&bucket);
    let journal = || store.journal().expect("journal reads");
    kill_at_a_call(dir.path(), 60, false, &journal, &[]);
    let records = journal();
    let (intents, _) = intents_and_outcomes(&records);
    assert_eq!(intents, 60, "every action's intent");
    let objects = bucket.keys(&format!("{STATE_KEY}/journal/")).len();
    assert!(
        objects * 2 <= records.len() && objects <= 30,
        "{objects} journal objects for {} records of 60 actions",
        records.len()
    );
    eprintln!(
        "{objects} journal objects for {} records of 60 actions",
        records.len()
    );
    let apply = fleetform(&["apply", "--auto-approve"], dir.path());
    assert_ok(&apply, "the apply after the kill");
    let plan = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(plan.status.code(), Some(0), "converged: {}", text(&plan));
}
