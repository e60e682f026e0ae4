//! The apply transaction without the binary: against a local state store in
//! a temporary directory and a provider that only records the calls it gets
//! (engine logic, no network, no fake of AWS).

use fleetform_engine::apply;
use fleetform_engine::plan::saved::{Bindings, SavedPlan};
use fleetform_engine::plan::{self, Action, Plan, PlanOptions};
use fleetform_engine::provider::{
    tags, Caller, Mutation, MutationOutcome, Observation, ObserveRequest, Observed,
    ObservedKeyPair, Provider, ProviderError,
};
use fleetform_engine::{Inputs, Loaded};
use fleetform_ops::{Execution, LockGuard, Reporter, Store, VersionInputs};
use fleetform_state::{Backend, JournalRecord, LocalBackend, Version};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

mod common;
use common::{empty_observation, fleet};

/// Collects warnings and finished actions instead of printing them.
#[derive(Default)]
struct Collected {
    warnings: Mutex<Vec<String>>,
    finished: Mutex<Vec<String>>,
}

impl Reporter for Collected {
    fn warning(&self, message: &str) {
        self.warnings.lock().unwrap().push(message.to_string());
    }
    fn action_finished(&self, action: &Action, _: &Result<Vec<String>, ProviderError>) {
        self.finished.lock().unwrap().push(action.address.clone());
    }
}

/// A provider that records every mutating call and answers it with success.
#[derive(Default)]
struct Recording {
    calls: Mutex<Vec<String>>,
}

impl Provider for Recording {
    async fn caller(&self) -> Result<Caller, ProviderError> {
        Ok(Caller {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/test".into(),
        })
    }
    async fn observe(&self, _: &ObserveRequest) -> Observation {
        empty_observation()
    }
    async fn mutate(
        &self,
        region: &str,
        mutation: Mutation,
    ) -> Result<MutationOutcome, ProviderError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{region}: {mutation:?}"));
        Ok(MutationOutcome::KeyPair {
            id: "key-0123456789abcdef0".into(),
        })
    }
}

/// The plan for `loaded` against an empty EC2: create the key pair and
/// the launch template.
fn plan_of(loaded: &Loaded) -> Plan {
    let config = loaded.config.as_ref().unwrap();
    let (plan, _) = plan::build(config, &empty_observation(), &PlanOptions::default());
    assert_eq!(plan.actions.len(), 2, "{:?}", plan.actions);
    plan
}

/// A local state store in `dir`.
fn local_store(dir: &std::path::Path) -> Store {
    Arc::new(LocalBackend::new(dir.join(".fleetform")))
}

/// Breaks the lock of `store` and takes it for another holder.
fn taken_over(store: &dyn Backend) {
    let now = fleetform_state::now();
    store.break_lock(true, now).unwrap();
    let _other = store.lock("other@elsewhere:42", 600, now).unwrap();
}

#[test]
fn a_lease_broken_and_taken_by_another_holder_is_reported_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let reporter = Arc::new(Collected::default());
    {
        let lock = LockGuard::take(&*store, Arc::clone(&reporter) as Arc<dyn Reporter>).unwrap();
        assert_eq!(lock.lost(), None, "a lease just taken is held");
        taken_over(&*store);
        assert_eq!(
            lock.lost().as_deref(),
            Some("the state lock is now held by other@elsewhere:42")
        );
    }
    // Dropping the guard does not remove the other holder's lock, and says so.
    assert_eq!(
        store.lease().unwrap().map(|l| l.holder).as_deref(),
        Some("other@elsewhere:42")
    );
    let warnings = reporter.warnings.lock().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("cannot release the state lock")),
        "{warnings:?}"
    );
}

#[test]
fn a_second_lock_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let reporter: Arc<dyn Reporter> = Arc::new(Collected::default());
    let _held = LockGuard::take(&*store, Arc::clone(&reporter)).unwrap();
    match LockGuard::take(&*store, reporter) {
        Err(e @ fleetform_ops::Error::Locked { .. }) => {
            let message = e.to_string();
            assert!(
                message.starts_with(&format!(
                    "the state is locked by {}",
                    fleetform_state::holder_id()
                )),
                "{message}"
            );
        }
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("a held lock was taken again"),
    };
}

/// Carries out `plan` under `lock` with a recording provider; the outcomes
/// and the calls the provider got.
fn run(
    store: &Store,
    lock: &LockGuard<'_>,
    plan: &Plan,
    config: &fleetform_engine::model::Config,
) -> (Vec<apply::Outcome>, Vec<String>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = Recording::default();
    let withheld = fleetform_engine::sensitive::Withheld::of(config, &Default::default())
        .expect("no secrets to digest");
    let apply_id = apply::plan_id(plan);
    let outcomes = fleetform_ops::execute(
        &runtime,
        store,
        lock,
        &provider,
        Execution {
            plan,
            apply_id: &apply_id,
            withheld: &withheld,
            parallelism: 4,
        },
        &Collected::default(),
    )
    .unwrap();
    let calls = provider.calls.into_inner().unwrap();
    (outcomes, calls)
}

#[test]
fn with_the_lease_held_the_intent_is_journaled_and_the_call_made() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = fleet(dir.path());
    let plan = plan_of(&loaded);
    let store = local_store(dir.path());
    let lock = LockGuard::take(&*store, Arc::new(Collected::default())).unwrap();
    let (outcomes, calls) = run(&store, &lock, &plan, loaded.config.as_ref().unwrap());
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    let journal = store.journal().unwrap();
    assert!(matches!(
        journal[0],
        JournalRecord::Begin { actions: 2, .. }
    ));
    let count = |intent: bool| {
        journal
            .iter()
            .filter(|r| match r {
                JournalRecord::Intent { .. } => intent,
                JournalRecord::Outcome { ok, .. } => !intent && *ok,
                _ => false,
            })
            .count()
    };
    assert_eq!((count(true), count(false)), (2, 2), "{journal:?}");
}

#[test]
fn an_intent_that_cannot_be_journaled_means_the_provider_is_not_called() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = fleet(dir.path());
    let plan = plan_of(&loaded);
    let store = local_store(dir.path());
    let lock = LockGuard::take(&*store, Arc::new(Collected::default())).unwrap();
    // The lease is lost between taking the lock and carrying out the plan.
    taken_over(&*store);
    let (outcomes, calls) = run(&store, &lock, &plan, loaded.config.as_ref().unwrap());
    assert_eq!(calls, Vec::<String>::new(), "no call without the lock");
    assert_eq!(outcomes.len(), 2);
    for outcome in &outcomes {
        let error = outcome.result.as_ref().unwrap_err();
        assert_eq!(
            error.message,
            "not started: the state lock is now held by other@elsewhere:42"
        );
    }
    // No intent was written: the journal holds the beginning and the failed outcome.
    let journal = store.journal().unwrap();
    assert!(
        !journal
            .iter()
            .any(|r| matches!(r, JournalRecord::Intent { .. })),
        "{journal:?}"
    );
}

/// A plan of `loaded` saved against state version `base`.
fn saved(loaded: &Loaded, dir: &std::path::Path, base: Option<u64>) -> SavedPlan {
    let config = loaded.config.as_ref().unwrap();
    SavedPlan::new(
        plan_of(loaded),
        Bindings {
            sources: &loaded.sources,
            config,
            observation: &empty_observation(),
            created: 0,
            config_dir: dir,
            base_state_version: base,
            sensitive: None,
        },
    )
}

#[test]
fn a_saved_plan_still_matching_everything_is_not_stale() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = fleet(dir.path());
    let saved = saved(&loaded, dir.path(), Some(3));
    let moved = fleetform_ops::staleness(&saved, &loaded, &empty_observation(), Some(3));
    assert_eq!(moved, Vec::<String>::new());
}

#[test]
fn a_saved_plan_whose_base_state_version_moved_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = fleet(dir.path());
    let saved = saved(&loaded, dir.path(), None);
    let moved = fleetform_ops::staleness(&saved, &loaded, &empty_observation(), Some(1));
    assert_eq!(
        moved,
        vec!["the state moved from version none to 1".to_string()]
    );
    let saved = self::saved(&loaded, dir.path(), Some(2));
    let moved = fleetform_ops::staleness(&saved, &loaded, &empty_observation(), Some(3));
    assert_eq!(
        moved,
        vec!["the state moved from version 2 to 3".to_string()]
    );
}

/// A version numbered `number` recording `plan` and `observed` as they are
/// (no check of what they hold), with nothing else in it.
fn version(number: u64, plan: serde_json::Value, observed: serde_json::Value) -> Version {
    Version {
        format_version: fleetform_state::FORMAT_VERSION,
        number,
        time: fleetform_state::now(),
        git_commit: None,
        git_dirty: false,
        caller: "arn:aws:iam::123456789012:user/test".into(),
        rollback_of: None,
        sources: BTreeMap::new(),
        variables: BTreeMap::new(),
        plan,
        outcomes: Vec::new(),
        observed,
        diff: String::new(),
        summary: serde_json::Value::Null,
        images: BTreeMap::new(),
        sensitive: None,
        key_pair_users: BTreeMap::new(),
    }
}

/// A recorded plan with no actions (what a refresh records, as far as what is read back goes).
fn empty_plan() -> serde_json::Value {
    serde_json::json!({"actions": []})
}

/// EC2 as [`empty_observation`], holding the fleet's key pair `workers`,
/// tagged as fleetform tags what it creates.
fn observation_with_key_pair() -> Observation {
    let mut observation = empty_observation();
    let region = observation.regions.get_mut("us-east-1").unwrap();
    region.key_pairs = Observed::Complete {
        items: vec![ObservedKeyPair {
            name: "workers".into(),
            id: "key-0123456789abcdef0".into(),
            fingerprint: "ab:cd".into(),
            tags: fleetform_engine::provider::Tags::from([
                (tags::FLEET.to_string(), "ops-test".to_string()),
                (tags::ADDRESS.to_string(), "key_pair.workers".to_string()),
            ]),
        }],
    };
    observation
}

#[test]
fn a_no_op_apply_records_a_managed_object_the_latest_version_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = fleet(dir.path());
    let config = loaded.config.as_ref().unwrap();
    let store = local_store(dir.path());
    store
        .write(&version(1, empty_plan(), serde_json::json!([])))
        .unwrap();
    let why =
        fleetform_ops::unrecorded(&*store, Some(1), config, &observation_with_key_pair()).unwrap();
    assert_eq!(
        why.as_deref(),
        Some("EC2 holds 1 object of this fleet that the last version does not record")
    );
    // Once a version records it, there is nothing left to record.
    let recorded = fleetform_engine::inventory::entries(config, &observation_with_key_pair()).0;
    store
        .write(&version(
            2,
            empty_plan(),
            serde_json::to_value(&recorded).unwrap(),
        ))
        .unwrap();
    let why =
        fleetform_ops::unrecorded(&*store, Some(2), config, &observation_with_key_pair()).unwrap();
    assert_eq!(why, None);
}

#[test]
fn a_no_op_apply_records_an_apply_the_journal_shows_never_ended() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = fleet(dir.path());
    let config = loaded.config.as_ref().unwrap();
    let store = local_store(dir.path());
    assert_eq!(
        fleetform_ops::unrecorded(&*store, None, config, &empty_observation()).unwrap(),
        None
    );
    store
        .append_journal(&JournalRecord::Begin {
            apply_id: "crashed".into(),
            time: fleetform_state::now(),
            holder: "ci@runner:7".into(),
            actions: 2,
        })
        .unwrap();
    let why = fleetform_ops::unrecorded(&*store, None, config, &empty_observation()).unwrap();
    assert_eq!(
        why.as_deref(),
        Some("the journal holds an apply that never ended")
    );
}

/// Asserts that `result` is [`fleetform_ops::Error::Damaged`] naming version `number`.
fn assert_damaged<T: std::fmt::Debug>(result: Result<T, fleetform_ops::Error>, number: u64) {
    match result {
        Err(fleetform_ops::Error::Damaged { version, what }) => {
            assert_eq!(version, number, "{what}")
        }
        other => panic!("expected version {number} to be damaged, got {other:?}"),
    }
}

#[test]
fn a_version_whose_observed_is_not_a_list_of_entries_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = fleet(dir.path());
    let config = loaded.config.as_ref().unwrap();
    let store = local_store(dir.path());
    store
        .write(&version(1, empty_plan(), serde_json::json!([])))
        .unwrap();
    store
        .write(&version(
            2,
            empty_plan(),
            serde_json::json!({"not": "a list"}),
        ))
        .unwrap();
    let error = fleetform_ops::recorded_entries(&*store).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("version 2 is damaged: its observed objects are not a list of entries"),
        "{error}"
    );
    assert_damaged(fleetform_ops::recorded_entries(&*store), 2);
    // A no-op apply does not take it for a version that records nothing.
    assert_damaged(
        fleetform_ops::unrecorded(&*store, Some(2), config, &observation_with_key_pair()),
        2,
    );
    // Nor does a plan, nor a version built on it (the changes were made: unrecorded).
    assert_damaged(
        fleetform_ops::plan(
            &*store,
            config,
            &empty_observation(),
            &loaded.secrets,
            PlanOptions::default(),
        ),
        2,
    );
    let plan = plan_of(&loaded);
    let built = fleetform_ops::build_version(
        VersionInputs {
            store: &*store,
            dir: dir.path(),
            source_dir: dir.path(),
            loaded: &loaded,
            config,
            inputs: &Inputs::default(),
            caller: "arn:aws:iam::123456789012:user/test",
            rollback_of: None,
            plan: &plan,
            latest: Some(2),
            outcomes: &[],
            after: &empty_observation(),
            time: fleetform_state::now(),
        },
        &Collected::default(),
    );
    match built {
        Err(fleetform_ops::Error::Unrecorded(cause)) => assert_damaged(Err::<(), _>(*cause), 2),
        other => panic!("expected the version to be unrecorded, got {other:?}"),
    }
}

#[test]
fn a_version_whose_plan_does_not_decode_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = fleet(dir.path());
    let config = loaded.config.as_ref().unwrap();
    let store = local_store(dir.path());
    // Images that are not a list: a rollback to it cannot know which to pin.
    let bad_images = version(
        1,
        serde_json::json!({"actions": [], "images": "ami-785db401"}),
        serde_json::json!([]),
    );
    assert_damaged(fleetform_ops::pins_of(&bad_images), 1);
    // No actions: what it created cannot be told (counted as present while EC2 catches up).
    store
        .write(&version(
            1,
            serde_json::json!("no plan"),
            serde_json::json!([]),
        ))
        .unwrap();
    assert_damaged(
        fleetform_ops::created(&*store, config, fleetform_state::now()),
        1,
    );
    assert_damaged(fleetform_ops::pins_of(&store.read(1).unwrap()), 1);
}
