//! The S3 backend against the local endpoint's S3 (moto_server, over HTTP
//! through aws-sdk-s3): the same promises as the local store, with the lock
//! held by conditional writes. Times are explicit: no sleeps.

use fleetform_state::{
    ActionOutcome, Backend, JournalRecord, LeaseInfo, LocalBackend, S3Backend, S3Location,
    StateError, Version, FORMAT_VERSION,
};
use fleetform_test_support::s3::TestBucket;
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

/// The SDK configuration fleetform makes, for the local endpoint.
fn local_config(
) -> impl std::future::Future<Output = Result<aws_config::SdkConfig, String>> + Send + 'static {
    let options = fleetform_aws::ConnectOptions::for_endpoint(Some(
        fleetform_test_support::endpoint().to_string(),
    ));
    async move {
        fleetform_aws::sdk_config(&options)
            .await
            .map_err(|e| e.message)
    }
}

fn location(bucket: &TestBucket) -> S3Location {
    S3Location {
        bucket: bucket.name.clone(),
        key: "fleet/state".into(),
        region: Some("us-east-1".into()),
    }
}

/// A new bucket and a store in it.
fn store() -> (TestBucket, S3Backend) {
    let bucket = TestBucket::create("s3state");
    let store = S3Backend::connect(location(&bucket), local_config()).expect("connect");
    (bucket, store)
}

fn version(number: u64) -> Version {
    Version {
        format_version: FORMAT_VERSION,
        number,
        time: 1_700_000_000 + number as i64,
        git_commit: Some(format!("c0ffee{number}")),
        git_dirty: false,
        caller: "arn:aws:iam::123456789012:user/releng".into(),
        rollback_of: None,
        sources: BTreeMap::from([("fleet.hcl".to_string(), format!("# v{number}\n"))]),
        variables: BTreeMap::new(),
        plan: serde_json::json!({"actions": []}),
        outcomes: vec![ActionOutcome {
            action: 0,
            ok: true,
            error: None,
            ids: vec![format!("i-{number:017x}")],
        }],
        observed: serde_json::json!([]),
        diff: String::new(),
        summary: serde_json::json!({"add": number}),
        images: BTreeMap::from([("us-east-1".to_string(), vec!["ami-1".to_string()])]),
        sensitive: None,
        key_pair_users: Default::default(),
    }
}

/// The version numbers the store lists.
fn numbers(store: &S3Backend) -> Vec<u64> {
    store
        .list()
        .expect("list")
        .iter()
        .map(|s| s.number)
        .collect()
}

fn locked_by(result: Result<impl std::fmt::Debug, StateError>) -> LeaseInfo {
    match result {
        Err(StateError::Locked(info)) => info,
        other => panic!("expected Locked, got {other:?}"),
    }
}

fn corrupt_path(result: Result<impl std::fmt::Debug, StateError>) -> String {
    match result {
        Err(StateError::Corrupt { path, .. }) => path.display().to_string(),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn versions_are_written_once_listed_and_read_back() {
    let (bucket, store) = store();
    assert_eq!(store.latest().expect("latest"), None);
    assert!(store.list().expect("list").is_empty());
    for n in 1..=3 {
        store.write(&version(n)).expect("write");
    }
    assert_eq!(store.latest().expect("latest"), Some(3));
    assert_eq!(numbers(&store), vec![1, 2, 3]);
    assert_eq!(store.read(2).expect("read"), version(2));
    assert!(matches!(
        store.write(&version(2)),
        Err(StateError::VersionExists(2))
    ));
    assert!(matches!(store.read(9), Err(StateError::NoSuchVersion(9))));
    assert_eq!(
        bucket.keys("fleet/state/"),
        vec![
            "fleet/state/index.json",
            "fleet/state/versions/000001.json",
            "fleet/state/versions/000002.json",
            "fleet/state/versions/000003.json",
        ]
    );
}

#[test]
fn objects_are_the_local_store_files_byte_for_byte() {
    let (bucket, store) = store();
    let tmp = tempfile::tempdir().expect("tempdir");
    let local = LocalBackend::new(tmp.path());
    for n in 1..=2 {
        store.write(&version(n)).expect("write s3");
        local.write(&version(n)).expect("write local");
    }
    for name in ["index.json", "versions/000001.json", "versions/000002.json"] {
        let on_disk = std::fs::read(tmp.path().join(name)).expect("local file");
        assert_eq!(
            bucket.get(&format!("fleet/state/{name}")),
            Some(on_disk),
            "{name}"
        );
    }
}

#[test]
fn a_version_the_index_does_not_list_is_still_listed() {
    let (bucket, store) = store();
    store.write(&version(1)).expect("write");
    let index_after_1 = bucket.get("fleet/state/index.json").expect("index");
    store.write(&version(2)).expect("write");
    // As if the index update of version 2 had been lost.
    bucket.put("fleet/state/index.json", &index_after_1);
    assert_eq!(numbers(&store), vec![1, 2]);
    store.write(&version(3)).expect("write");
    assert_eq!(numbers(&store), vec![1, 2, 3]);
}

#[test]
fn of_racing_lockers_on_separate_connections_exactly_one_wins() {
    let bucket = TestBucket::create("s3race");
    for round in 0..3 {
        let racers = 6;
        let barrier = Arc::new(Barrier::new(racers));
        let handles: Vec<_> = (0..racers)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                let location = location(&bucket);
                std::thread::spawn(move || {
                    let store = S3Backend::connect(location, local_config()).expect("connect");
                    barrier.wait();
                    let result = store.lock(&format!("racer{i}@ci:{round}"), 60, 1000);
                    (store, result)
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("racer"))
            .collect();
        let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {:?}",
            results.iter().map(|(_, r)| r).collect::<Vec<_>>()
        );
        let winner = winners[0].1.as_ref().expect("won").info().clone();
        for (_, result) in &results {
            if let Err(e) = result {
                match e {
                    StateError::Locked(info) => assert_eq!(info, &winner),
                    other => panic!("a loser got {other:?}"),
                }
            }
        }
        let (store, lease) = results
            .into_iter()
            .find(|(_, r)| r.is_ok())
            .expect("the winner");
        store.release(lease.expect("lease")).expect("release");
        assert_eq!(store.lease().expect("lease"), None);
    }
}

#[test]
fn a_lease_expires_is_broken_and_the_old_holder_learns_it_lost_it() {
    let (_bucket, store) = store();
    let mut alice = store.lock("alice@ci:1", 30, 1000).expect("lock");
    // Live: neither a second lock nor a plain break gets it.
    assert_eq!(
        locked_by(store.lock("bob@ci:2", 30, 1010)).holder,
        "alice@ci:1"
    );
    assert_eq!(
        locked_by(store.break_lock(false, 1029)).holder,
        "alice@ci:1"
    );
    // Renewed, it lives longer.
    store.renew(&mut alice, 30, 1020).expect("renew");
    assert_eq!(alice.info().expires, 1050);
    assert_eq!(locked_by(store.break_lock(false, 1049)).expires, 1050);
    // An expired lease still blocks lock; unlock breaks it, naming its holder.
    let info = locked_by(store.lock("bob@ci:2", 30, 1050));
    assert!(info.expired(1050));
    assert_eq!(store.break_lock(false, 1050).expect("break"), Some(info));
    let bob = store.lock("bob@ci:2", 30, 1051).expect("bob locks");
    // Alice's lease is gone: renew and release say so and leave Bob's lock.
    assert!(matches!(
        store.renew(&mut alice, 30, 1052),
        Err(StateError::LeaseLost)
    ));
    assert!(matches!(store.release(alice), Err(StateError::LeaseLost)));
    assert_eq!(store.lease().expect("lease"), Some(bob.info().clone()));
    // Force breaks a live lease.
    assert_eq!(
        store
            .break_lock(true, 1052)
            .expect("force")
            .map(|i| i.holder),
        Some("bob@ci:2".to_string())
    );
    assert!(matches!(store.release(bob), Err(StateError::LeaseLost)));
    assert_eq!(store.break_lock(false, 1053).expect("nothing"), None);
}

#[test]
fn two_leases_of_one_holder_are_told_apart() {
    let (_bucket, store) = store();
    let first = store.lock("same@ci:1", 30, 1000).expect("lock");
    store.break_lock(true, 1001).expect("force");
    let second = store.lock("same@ci:1", 30, 1002).expect("lock again");
    assert!(matches!(store.release(first), Err(StateError::LeaseLost)));
    store.release(second).expect("release");
}

#[test]
fn journal_records_from_many_threads_keep_each_threads_order_and_clear() {
    let (bucket, store) = store();
    let store = Arc::new(store);
    assert!(store.journal().expect("journal").is_empty());
    store
        .append_journal(&JournalRecord::Begin {
            apply_id: "a1".into(),
            time: 1,
            holder: "h@ci:1".into(),
            actions: 40,
        })
        .expect("begin");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..10 {
                    store
                        .append_journal(&JournalRecord::Intent {
                            apply_id: "a1".into(),
                            action: t * 10 + i,
                            address: format!("worker_type.w{t}"),
                            region: "us-east-1".into(),
                            client_token: format!("tok-{t}-{i}"),
                            time: 2,
                        })
                        .expect("intent");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let records = store.journal().expect("journal");
    assert_eq!(records.len(), 41);
    assert!(matches!(records[0], JournalRecord::Begin { .. }));
    for t in 0..4 {
        let actions: Vec<usize> = records
            .iter()
            .filter_map(|r| match r {
                JournalRecord::Intent { action, .. } if action / 10 == t => Some(*action),
                _ => None,
            })
            .collect();
        assert_eq!(actions, (t * 10..t * 10 + 10).collect::<Vec<_>>());
    }
    // A second connection (the next run) appends after what is there.
    let next = S3Backend::connect(location(&bucket), local_config()).expect("connect");
    next.append_journal(&JournalRecord::End {
        apply_id: "a1".into(),
        time: 3,
        version: None,
    })
    .expect("end");
    let records = store.journal().expect("journal");
    assert!(matches!(records.last(), Some(JournalRecord::End { .. })));
    assert_eq!(records.len(), 42);
    store.clear_journal().expect("clear");
    assert!(store.journal().expect("journal").is_empty());
    assert!(bucket.keys("fleet/state/journal/").is_empty());
}

#[test]
fn a_damaged_object_is_reported_by_its_url_and_left_as_it_was() {
    let (bucket, store) = store();
    store.write(&version(1)).expect("write");
    store.write(&version(2)).expect("write");
    let url = format!("s3://{}/fleet/state", bucket.name);

    // One flipped bit in a version: valid JSON, wrong checksum.
    let key = "fleet/state/versions/000002.json";
    let mut bytes = bucket.get(key).expect("version");
    let at = bytes.len() - 10;
    bytes[at] ^= 0x01;
    bucket.put(key, &bytes);
    assert_eq!(
        corrupt_path(store.read(2)),
        format!("{url}/versions/000002.json")
    );
    assert_eq!(store.read(1).expect("intact"), version(1));
    assert_eq!(bucket.get(key), Some(bytes));

    // A truncated index: every method that needs the list refuses, and
    // writing a version writes nothing.
    let index = bucket.get("fleet/state/index.json").expect("index");
    let cut = &index[..index.len() / 2];
    bucket.put("fleet/state/index.json", cut);
    assert_eq!(corrupt_path(store.list()), format!("{url}/index.json"));
    assert_eq!(
        corrupt_path(store.write(&version(3))),
        format!("{url}/index.json")
    );
    assert_eq!(bucket.get("fleet/state/versions/000003.json"), None);
    assert_eq!(bucket.get("fleet/state/index.json").as_deref(), Some(cut));

    // A damaged journal record.
    store
        .append_journal(&JournalRecord::End {
            apply_id: "a".into(),
            time: 1,
            version: None,
        })
        .expect("append");
    let record = bucket.keys("fleet/state/journal/").pop().expect("a record");
    bucket.put(&record, b"{\"format_version\":2}");
    let path = corrupt_path(store.journal());
    assert_eq!(path, format!("s3://{}/{record}", bucket.name));
    assert!(store.clear_journal().is_err());
    assert_eq!(
        bucket.get(&record).as_deref(),
        Some(&b"{\"format_version\":2}"[..])
    );
}

#[test]
fn an_unreadable_lock_blocks_and_is_only_moved_aside_by_force() {
    let (bucket, store) = store();
    bucket.put("fleet/state/lock.json", b"not json");
    let url = format!("s3://{}/fleet/state/lock.json", bucket.name);
    assert_eq!(corrupt_path(store.lock("a@b:1", 30, 1000)), url);
    assert_eq!(corrupt_path(store.break_lock(false, 1000)), url);
    let info = store
        .break_lock(true, 1000)
        .expect("force")
        .expect("broken");
    assert!(
        info.holder.contains("lock.json.unreadable."),
        "{}",
        info.holder
    );
    let aside: Vec<String> = bucket
        .keys("fleet/state/lock.json.unreadable.")
        .into_iter()
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(bucket.get(&aside[0]).as_deref(), Some(&b"not json"[..]));
    assert_eq!(bucket.get("fleet/state/lock.json"), None);
    let _lease = store.lock("a@b:1", 30, 1001).expect("lockable again");
}

#[test]
fn a_missing_bucket_is_an_error_naming_the_state() {
    let location = S3Location {
        bucket: "no-such-bucket-fleetform".into(),
        key: "k".into(),
        region: None,
    };
    let store = S3Backend::connect(location, local_config()).expect("connect");
    match store.list() {
        Err(StateError::Remote { url, source }) => {
            assert!(url.starts_with("s3://no-such-bucket-fleetform/k/"), "{url}");
            assert!(source.to_string().contains("NoSuchBucket"), "{source}");
        }
        other => panic!("expected Remote, got {other:?}"),
    }
    assert!(matches!(
        store.lock("a@b:1", 30, 1),
        Err(StateError::Remote { .. })
    ));
}

fn end(id: &str) -> JournalRecord {
    JournalRecord::End {
        apply_id: id.into(),
        time: 1,
        version: None,
    }
}

/// A batch is one object (format 3, its records in order); one record is
/// the format-2 object of old; the journal reads both kinds, mixed, in
/// order, and clearing removes every object once.
#[test]
fn a_batch_is_one_object_read_back_in_order_among_one_record_objects() {
    let (bucket, store) = store();
    let names = ["a", "b", "c", "d", "e", "f", "g"];
    let records: Vec<JournalRecord> = names.iter().map(|n| end(n)).collect();
    store.append_journal(&records[0]).expect("one");
    store
        .append_journal_records(&records[1..4])
        .expect("a batch of three");
    store
        .append_journal_records(&records[4..5])
        .expect("a batch of one");
    store
        .append_journal_records(&records[5..])
        .expect("a batch of two");
    store.append_journal_records(&[]).expect("nothing");
    assert_eq!(store.journal().expect("reads"), records);
    let keys = bucket.keys("fleet/state/journal/");
    assert_eq!(keys.len(), 4, "one object per append: {keys:?}");
    let formats: Vec<(u64, usize)> = keys
        .iter()
        .map(|key| {
            let bytes = bucket.get(key).expect("object");
            assert!(bytes.starts_with(b"{\n  \"sha256\": \""), "sealed");
            let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            let held = value["records"].as_array().map_or(1, Vec::len);
            (value["format_version"].as_u64().expect("format"), held)
        })
        .collect();
    assert_eq!(formats, vec![(2, 1), (3, 3), (2, 1), (3, 2)]);
    // Another connection (a later run) reads the same.
    let again = S3Backend::connect(location(&bucket), local_config()).expect("connect");
    assert_eq!(again.journal().expect("reads"), records);
    store.clear_journal().expect("clears");
    assert_eq!(bucket.keys("fleet/state/journal/"), Vec::<String>::new());
    assert_eq!(store.journal().expect("reads"), Vec::new());
}

/// A batch object is sealed like every object: a flipped byte, an empty
/// batch, a batch that says format 2 and one of a newer format are named.
#[test]
fn a_damaged_or_newer_batch_object_is_named_and_left_as_it_was() {
    let (bucket, store) = store();
    store
        .append_journal_records(&[end("a"), end("b")])
        .expect("a batch");
    let key = bucket
        .keys("fleet/state/journal/")
        .pop()
        .expect("an object");
    let url = format!("s3://{}/{key}", bucket.name);
    let good = bucket.get(&key).expect("object");
    let text = String::from_utf8(good.clone()).expect("utf-8");
    let mut flipped = good.clone();
    let at = text.find("\"b\"").expect("b") + 1;
    flipped[at] ^= 0x01;
    let body = |value: serde_json::Value| -> Vec<u8> {
        // A well-sealed document of `value`, as fleetform seals them.
        let pretty = serde_json::to_vec_pretty(&value).expect("json");
        let mut rest = pretty[2..].to_vec();
        rest.push(b'\n');
        use sha2::Digest;
        let hex: String = sha2::Sha256::digest(&rest)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut bytes = format!("{{\n  \"sha256\": \"{hex}\",\n").into_bytes();
        bytes.extend_from_slice(&rest);
        bytes
    };
    let record = serde_json::to_value(end("a")).expect("json");
    for damaged in [
        flipped,
        body(serde_json::json!({"format_version": 3, "records": []})),
        body(serde_json::json!({"format_version": 2, "records": [record.clone()]})),
        body(serde_json::json!({"format_version": 3, "records": [record.clone()], "extra": 1})),
    ] {
        bucket.put(&key, &damaged);
        assert_eq!(corrupt_path(store.journal()), url);
        assert!(store.clear_journal().is_err());
        assert_eq!(bucket.get(&key), Some(damaged));
    }
    let newer = body(serde_json::json!({"format_version": 4, "records": [record]}));
    bucket.put(&key, &newer);
    match store.journal() {
        Err(e @ StateError::NewerFormat { found: 4, .. }) => {
            assert_eq!(
                e.path().map(|p| p.to_string_lossy().into_owned()),
                Some(url.clone())
            );
            // A batch object is format 3, which this fleetform reads.
            assert!(e.to_string().contains("understands (3)"), "{e}");
        }
        other => panic!("not NewerFormat: {other:?}"),
    }
    // The intact batch reads again.
    bucket.put(&key, &good);
    assert_eq!(store.journal().expect("reads"), vec![end("a"), end("b")]);
}

/// A read of the journal tells the store its next record number: the
/// append after it goes after every object listed, and one that another
/// connection took meanwhile costs a retry, never a record.
#[test]
fn an_append_after_a_read_of_the_journal_goes_after_it_even_if_another_took_the_number() {
    let (bucket, store) = store();
    store.append_journal(&end("a")).expect("one");
    let reader = S3Backend::connect(location(&bucket), local_config()).expect("connect");
    assert_eq!(reader.journal().expect("reads"), vec![end("a")]);
    reader
        .append_journal(&end("b"))
        .expect("after the one listed");
    // `store` still thinks its next number is 2, which `reader` took.
    store.append_journal(&end("c")).expect("retried past it");
    assert_eq!(
        bucket.keys("fleet/state/journal/"),
        vec![
            "fleet/state/journal/0000000001.json".to_string(),
            "fleet/state/journal/0000000002.json".to_string(),
            "fleet/state/journal/0000000003.json".to_string(),
        ]
    );
    assert_eq!(
        store.journal().expect("reads"),
        vec![end("a"), end("b"), end("c")]
    );
}

/// A new bucket and a store in it whose requests go through a proxy that
/// counts them (and changes none).
fn counted_store() -> (
    TestBucket,
    S3Backend,
    fleetform_test_support::fault::FaultProxy,
) {
    let bucket = TestBucket::create("s3count");
    let proxy = fleetform_test_support::fault::FaultProxy::start(
        fleetform_test_support::endpoint(),
        Arc::new(|_: &str, _: &str| false),
    )
    .expect("proxy");
    let options = fleetform_aws::ConnectOptions::for_endpoint(Some(proxy.url.clone()));
    let config = async move {
        fleetform_aws::sdk_config(&options)
            .await
            .map_err(|e| e.message)
    };
    let store = S3Backend::connect(location(&bucket), config).expect("connect");
    (bucket, store, proxy)
}

fn begin(id: &str) -> JournalRecord {
    JournalRecord::Begin {
        apply_id: id.into(),
        time: 1,
        holder: "me@host:1".into(),
        actions: 2,
    }
}

fn intent(id: &str, action: usize) -> JournalRecord {
    JournalRecord::Intent {
        apply_id: id.into(),
        action,
        address: format!("w{action}"),
        region: "us-east-1".into(),
        client_token: format!("ff-{id}-{action}"),
        time: 1,
    }
}

/// The requests `f` makes through `proxy`.
fn requests_of<T>(
    proxy: &fleetform_test_support::fault::FaultProxy,
    f: impl FnOnce() -> T,
) -> (T, usize) {
    let before = proxy.requests();
    let out = f();
    (out, proxy.requests() - before)
}

/// A clear reads again only the journal objects this store has not seen
/// as they are listed (by ETag): what it wrote itself is not fetched,
/// what another store wrote is; then the objects holding a beginning go,
/// then the rest.
#[test]
fn a_clear_reads_only_the_journal_objects_this_store_has_not_seen_as_listed() {
    let (bucket, store, proxy) = counted_store();
    store.append_journal(&begin("a")).expect("append");
    store
        .append_journal_records(&[intent("a", 0), intent("a", 1)])
        .expect("append");
    let other = S3Backend::connect(location(&bucket), local_config()).expect("connect");
    other.append_journal(&end("a")).expect("append");
    assert_eq!(bucket.keys("fleet/state/journal/").len(), 3);
    let (cleared, requests) = requests_of(&proxy, || store.clear_journal());
    cleared.expect("cleared");
    assert_eq!(
        requests, 4,
        "a listing, a read of the other store's object, two removals"
    );
    assert_eq!(bucket.keys("fleet/state/journal/"), Vec::<String>::new());
}

/// `end_journal` writes the end beside the removal of the beginning, and
/// removes it with the rest: a listing, then two requests at once, then
/// one; the journal is empty after. A journal that does not read still
/// gets its end (as an append before a clear did) and is left as it was.
#[test]
fn an_end_is_written_beside_the_removal_of_the_beginning_and_removed_with_the_rest() {
    let (bucket, store, proxy) = counted_store();
    store.append_journal(&begin("a")).expect("append");
    store.append_journal(&intent("a", 0)).expect("append");
    let (ended, requests) = requests_of(&proxy, || store.end_journal(&end("a")));
    ended.expect("ended");
    assert_eq!(
        requests, 4,
        "a listing, the end beside a removal, a removal"
    );
    assert_eq!(bucket.keys("fleet/state/journal/"), Vec::<String>::new());
    assert_eq!(store.journal().expect("journal"), Vec::new());

    store.append_journal(&begin("b")).expect("append");
    let key = bucket
        .keys("fleet/state/journal/")
        .pop()
        .expect("an object");
    bucket.put(&key, b"{\"format_version\":2}");
    assert!(store.end_journal(&end("b")).is_err());
    let keys = bucket.keys("fleet/state/journal/");
    assert_eq!(keys.len(), 2, "the damaged object and the end: {keys:?}");
    assert_eq!(
        bucket.get(&key).as_deref(),
        Some(&b"{\"format_version\":2}"[..])
    );
}

/// A version write goes by the version list as last read (the index's
/// ETag its condition) instead of reading it again; without such a read
/// it reads first, as ever; and a list gone stale (another writer since)
/// costs a retry of the index, never a lost version.
#[test]
fn a_version_write_goes_by_the_list_last_read_and_a_stale_one_costs_a_retry() {
    let (bucket, store, proxy) = counted_store();
    store.list().expect("list");
    let (written, requests) = requests_of(&proxy, || store.write(&version(1)));
    written.expect("written");
    assert_eq!(requests, 2, "the version and the index, no read");
    let (written, requests) = requests_of(&proxy, || store.write(&version(2)));
    written.expect("written");
    assert_eq!(requests, 4, "a listing and the index read first, then both");

    assert_eq!(store.latest().expect("latest"), Some(2));
    let other = S3Backend::connect(location(&bucket), local_config()).expect("connect");
    other.write(&version(3)).expect("written");
    store.write(&version(4)).expect("written");
    let numbers: Vec<u64> = store
        .list()
        .expect("list")
        .iter()
        .map(|s| s.number)
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 4]);
    let index: serde_json::Value =
        serde_json::from_slice(&bucket.get("fleet/state/index.json").expect("index"))
            .expect("json");
    assert_eq!(
        index["versions"].as_array().map(Vec::len),
        Some(4),
        "the index itself lists every version"
    );
}

/// `record` writes the version, lists the journal beside the index's
/// replacement, then ends and empties it: six requests after a list (the
/// version, the index beside the listing, the end beside one removal, the
/// other removal), four one after another. A version it cannot write
/// leaves the journal as it was.
#[test]
fn record_lists_the_journal_beside_the_index_and_leaves_it_alone_when_the_write_fails() {
    let (bucket, store, proxy) = counted_store();
    store.append_journal(&begin("a")).expect("append");
    store.append_journal(&intent("a", 0)).expect("append");
    store.list().expect("list");
    let (recorded, requests) = requests_of(&proxy, || store.record(&version(1), &end("a")));
    recorded.expect("written").expect("ended");
    assert_eq!(requests, 6);
    assert_eq!(store.latest().expect("latest"), Some(1));
    assert_eq!(bucket.keys("fleet/state/journal/"), Vec::<String>::new());

    store.append_journal(&begin("b")).expect("append");
    let before = bucket.keys("fleet/state/journal/");
    assert!(matches!(
        store.record(&version(1), &end("b")),
        Err(StateError::VersionExists(1))
    ));
    assert_eq!(bucket.keys("fleet/state/journal/"), before);
}
