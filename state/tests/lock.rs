//! The lease lock of a local state directory. Times are explicit: no sleeps.

use fleetform_state::{holder_id, Backend, LeaseInfo, LocalBackend, StateError, FORMAT_VERSION};
use std::path::{Path, PathBuf};

fn store() -> (tempfile::TempDir, LocalBackend, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(".fleetform");
    (tmp, LocalBackend::new(&dir), dir)
}

fn locked_by(result: Result<impl std::fmt::Debug, StateError>) -> LeaseInfo {
    match result {
        Err(StateError::Locked(info)) => info,
        other => panic!("expected Locked, got {other:?}"),
    }
}

/// Names in `dir` (to prove no temporary file is left behind).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_second_lock_fails_naming_the_holder() {
    let (_tmp, store, dir) = store();
    let lease = store.lock("alice@ci:1", 60, 1000).expect("locked");
    assert_eq!(
        lease.info(),
        &LeaseInfo {
            holder: "alice@ci:1".into(),
            started: 1000,
            expires: 1060
        }
    );
    let info = locked_by(store.lock("bob@ci:2", 60, 1001));
    assert_eq!(info, *lease.info());
    assert_eq!(store.lease().expect("lease"), Some(lease.info().clone()));
    assert_eq!(names(&dir), vec!["lock.json"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("lock.json")), 0o600);
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn an_expired_lease_still_blocks_lock() {
    let (_tmp, store, _dir) = store();
    let _held = store.lock("alice@ci:1", 60, 1000).expect("locked");
    let info = locked_by(store.lock("bob@ci:2", 60, 5000));
    assert_eq!(info.holder, "alice@ci:1");
    assert!(info.expired(5000));
}

#[test]
fn racing_lock_calls_have_exactly_one_winner() {
    let (_tmp, _store, dir) = store();
    for round in 0..20 {
        let barrier = std::sync::Barrier::new(8);
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let barrier = &barrier;
                    let dir = &dir;
                    scope.spawn(move || {
                        let store = LocalBackend::new(dir);
                        barrier.wait();
                        store.lock(&format!("t{t}@host:{round}"), 60, 1000)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let store = LocalBackend::new(&dir);
        let mut winners = Vec::new();
        for result in results {
            match result {
                Ok(lease) => winners.push(lease),
                Err(StateError::Locked(_)) => {}
                Err(e) => panic!("round {round}: unexpected {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        let winner = winners.pop().expect("one");
        assert_eq!(store.lease().expect("lease").as_ref(), Some(winner.info()));
        store.release(winner).expect("released");
        assert_eq!(names(&dir), Vec::<String>::new(), "round {round}");
    }
}

#[test]
fn after_release_another_can_lock() {
    let (_tmp, store, dir) = store();
    let lease = store.lock("alice@ci:1", 60, 1000).expect("locked");
    store.release(lease).expect("released");
    assert_eq!(store.lease().expect("lease"), None);
    assert_eq!(names(&dir), Vec::<String>::new());
    let lease = store.lock("bob@ci:2", 60, 1001).expect("locked again");
    assert_eq!(lease.info().holder, "bob@ci:2");
}

#[test]
fn dropping_a_lease_does_not_release_it() {
    let (_tmp, store, _dir) = store();
    drop(store.lock("alice@ci:1", 60, 1000).expect("locked"));
    assert_eq!(
        store.lease().expect("lease").map(|i| i.holder),
        Some("alice@ci:1".to_string())
    );
}

#[test]
fn an_expired_lease_is_reported_as_expired() {
    let (_tmp, store, _dir) = store();
    let _held = store.lock("alice@ci:1", 60, 1000).expect("locked");
    let info = store.lease().expect("lease").expect("held");
    assert!(!info.expired(1059));
    assert!(info.expired(1060));
    assert!(info.expired(1100));
}

#[test]
fn break_lock_without_force_removes_only_an_expired_lease() {
    let (_tmp, store, dir) = store();
    assert_eq!(
        store.break_lock(false, 1000).expect("nothing to break"),
        None
    );
    let _held = store.lock("alice@ci:1", 60, 1000).expect("locked");
    let info = locked_by(store.break_lock(false, 1059));
    assert_eq!(info.holder, "alice@ci:1");
    assert!(
        store.lease().expect("lease").is_some(),
        "a live lease stays"
    );
    let broken = store.break_lock(false, 1060).expect("expired: broken");
    assert_eq!(broken.map(|i| i.holder), Some("alice@ci:1".to_string()));
    assert_eq!(store.lease().expect("lease"), None);
    assert_eq!(names(&dir), Vec::<String>::new());
    let _held = store.lock("bob@ci:2", 60, 1061).expect("free again");
}

#[test]
fn break_lock_with_force_removes_a_live_lease() {
    let (_tmp, store, dir) = store();
    let _held = store.lock("alice@ci:1", 60, 1000).expect("locked");
    let broken = store.break_lock(true, 1001).expect("forced");
    assert_eq!(broken.map(|i| i.holder), Some("alice@ci:1".to_string()));
    assert_eq!(store.lease().expect("lease"), None);
    assert_eq!(names(&dir), Vec::<String>::new());
}

#[test]
fn renew_extends_expiry_and_is_lost_once_the_lock_is_taken_by_another() {
    let (_tmp, store, dir) = store();
    let mut lease = store.lock("alice@ci:1", 60, 1000).expect("locked");
    store.renew(&mut lease, 60, 1050).expect("renewed");
    assert_eq!(lease.info().expires, 1110);
    assert_eq!(lease.info().started, 1000);
    let info = store.lease().expect("lease").expect("held");
    assert_eq!(info.expires, 1110);
    assert!(
        !info.expired(1100),
        "renewed lease is live past its first expiry"
    );
    locked_by(store.break_lock(false, 1100));
    assert_eq!(names(&dir), vec!["lock.json"]);

    store.break_lock(true, 1101).expect("forced");
    let other = store.lock("bob@ci:2", 60, 1102).expect("bob locks");
    assert!(matches!(
        store.renew(&mut lease, 60, 1103),
        Err(StateError::LeaseLost)
    ));
    assert!(matches!(store.release(lease), Err(StateError::LeaseLost)));
    assert_eq!(store.lease().expect("lease").as_ref(), Some(other.info()));
    assert_eq!(names(&dir), vec!["lock.json"]);
}

#[test]
fn a_lease_is_ours_by_token_not_by_holder_name() {
    // Two leases with one holder string (e.g. two threads of one process).
    let (_tmp, store, _dir) = store();
    let mut first = store.lock("alice@ci:1", 60, 1000).expect("locked");
    store.break_lock(true, 1001).expect("forced");
    let second = store.lock("alice@ci:1", 60, 1002).expect("locked");
    assert!(matches!(
        store.renew(&mut first, 60, 1003),
        Err(StateError::LeaseLost)
    ));
    assert!(matches!(store.release(first), Err(StateError::LeaseLost)));
    assert_eq!(store.lease().expect("lease").as_ref(), Some(second.info()));
    store.release(second).expect("released");
}

#[test]
fn renew_after_the_lock_was_broken_and_left_free_is_lost() {
    let (_tmp, store, _dir) = store();
    let mut lease = store.lock("alice@ci:1", 60, 1000).expect("locked");
    store.break_lock(false, 2000).expect("expired: broken");
    assert!(matches!(
        store.renew(&mut lease, 60, 2001),
        Err(StateError::LeaseLost)
    ));
    assert_eq!(
        store.lease().expect("lease"),
        None,
        "renew never re-creates a lost lock"
    );
}

#[test]
fn a_lock_left_by_a_killed_process_is_reported_expired() {
    let (_tmp, store, dir) = store();
    std::fs::create_dir_all(&dir).expect("mkdir");
    let now = fleetform_state::now();
    std::fs::write(
        dir.join("lock.json"),
        serde_json::json!({
            "format_version": 1, "holder": "x@y:1", "started": now - 7200,
            "expires": now - 3600, "token": "dead"
        })
        .to_string(),
    )
    .expect("stale lock");
    let info = store.lease().expect("lease").expect("held");
    assert_eq!(info.holder, "x@y:1");
    assert!(info.expired(now));
    assert_eq!(locked_by(store.lock(&holder_id(), 60, now)), info);
    let broken = store.break_lock(false, now).expect("expired: broken");
    assert_eq!(broken, Some(info));
    let lease = store.lock(&holder_id(), 60, now).expect("locked");
    assert_eq!(lease.info().holder, holder_id());
}

#[test]
fn a_corrupt_or_newer_lock_file_is_named_and_only_moved_aside_by_force() {
    for (text, newer) in [
        ("", false),
        ("{\"format_version\":1,\"holder\":", false),
        ("{\"format_version\":1}", false),
        (
            "{\"format_version\":2,\"holder\":\"a@b:1\",\"started\":1,\"expires\":2,\"token\":\"t\"}",
            false,
        ),
        (
            "{\"format_version\":9,\"owner\":\"future\",\"until\":\"forever\"}",
            true,
        ),
    ] {
        let (_tmp, store, dir) = store();
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("lock.json");
        std::fs::write(&path, text).expect("written");
        let errors = [
            store.lease().map(|_| ()).expect_err(text),
            store
                .lock("bob@ci:2", 60, 1000)
                .map(|_| ())
                .expect_err(text),
            store.break_lock(false, 1000).map(|_| ()).expect_err(text),
        ];
        for err in errors {
            if newer {
                assert!(
                    matches!(err, StateError::NewerFormat { found: 9, .. }),
                    "{err}"
                );
            } else {
                assert!(matches!(err, StateError::Corrupt { .. }), "{text:?}: {err}");
            }
            assert_eq!(err.path(), Some(path.as_path()), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), text);
        assert_eq!(names(&dir), vec!["lock.json"]);
        // With force it is moved aside, bytes kept, and the lock is free.
        let broken = store
            .break_lock(true, 1000)
            .expect(text)
            .expect("a lock was there");
        let names = names(&dir);
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].starts_with("lock.json.unreadable."), "{names:?}");
        assert_eq!(
            std::fs::read_to_string(dir.join(&names[0])).expect("kept"),
            text
        );
        assert!(broken.holder.contains(&names[0]), "{}", broken.holder);
        assert!(broken.holder.contains("lock.json"), "{}", broken.holder);
        assert_eq!((broken.started, broken.expires), (1000, 1000));
        assert_eq!(store.lease().expect("free"), None);
        let _lease = store.lock("bob@ci:2", 60, 1000).expect("lockable again");
    }
}

#[test]
fn a_read_only_lock_file_or_state_dir_is_never_broken() {
    use std::os::unix::fs::PermissionsExt;
    for read_only_dir in [false, true] {
        let (_tmp, store, dir) = store();
        let mut lease = store.lock("alice@ci:1", 60, 1000).expect("locked");
        let path = dir.join("lock.json");
        let target = if read_only_dir {
            dir.clone()
        } else {
            path.clone()
        };
        let mode = if read_only_dir { 0o555 } else { 0o444 };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let before = std::fs::read(&path).expect("read");
        for err in [
            store
                .break_lock(false, 5000)
                .map(|_| ())
                .expect_err("read-only"),
            store
                .break_lock(true, 1001)
                .map(|_| ())
                .expect_err("read-only"),
            store.renew(&mut lease, 60, 1002).expect_err("read-only"),
        ] {
            assert!(matches!(err, StateError::ReadOnly { .. }), "{err}");
            assert_eq!(err.path(), Some(target.as_path()), "{err}");
        }
        assert_eq!(
            store.lease().expect("readable").map(|i| i.holder),
            Some("alice@ci:1".into())
        );
        assert_eq!(std::fs::read(&path).expect("kept"), before);
        std::fs::set_permissions(
            &target,
            std::fs::Permissions::from_mode(if read_only_dir { 0o700 } else { 0o600 }),
        )
        .expect("chmod");
        store.release(lease).expect("released once writable");
    }
}

#[test]
fn the_lock_file_records_holder_times_and_format() {
    let (_tmp, store, dir) = store();
    let _held = store.lock("alice@ci:1", 30, 1000).expect("locked");
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("lock.json")).expect("read")).expect("json");
    assert_eq!(value["format_version"], FORMAT_VERSION);
    assert_eq!(value["holder"], "alice@ci:1");
    assert_eq!(value["started"], 1000);
    assert_eq!(value["expires"], 1030);
}
