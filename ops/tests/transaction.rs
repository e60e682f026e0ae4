//! The apply transaction without the binary: against a local state store in
//! a temporary directory and a provider that only records the calls it gets
//! (engine logic, no network, no fake of AWS).

use fleetform_engine::apply;
use fleetform_engine::plan::saved::{Bindings, SavedPlan};
use fleetform_engine::plan::{self, Action, Plan, PlanOptions};
use fleetform_engine::provider::{
    Caller, Mutation, MutationOutcome, Observation, ObserveRequest, Observed, Provider,
    ProviderError, RegionObservation,
};
use fleetform_engine::{Inputs, Loaded};
use fleetform_ops::{Execution, LockGuard, Reporter, Store};
use fleetform_state::{Backend, JournalRecord, LocalBackend};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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

/// EC2 read completely in us-east-1, holding nothing of the fleet.
fn empty_observation() -> Observation {
    Observation {
        regions: BTreeMap::from([(
            "us-east-1".to_string(),
            RegionObservation {
                key_pairs: Observed::Complete { items: Vec::new() },
                images: Observed::Complete { items: Vec::new() },
                launch_templates: Observed::Complete { items: Vec::new() },
                instances: Observed::Complete { items: Vec::new() },
            },
        )]),
        api_calls: 0,
    }
}

/// A fleet of one worker type that launches nothing, loaded from `dir`.
fn fleet(dir: &std::path::Path) -> Loaded {
    std::fs::write(
        dir.join("fleet.hcl"),
        r#"fleet "ops-test" {
  account_id = "123456789012"
  regions    = ["us-east-1"]
}

key_pair "workers" {
  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEm4t1QbPzCEOY3vN7Jz1oa9kFjC8m9sR0W0kq4d9Q1a ops@test"
}

ami_set "ubuntu" {
  images = {
    "us-east-1" = "ami-785db401"
  }
}

worker_type "linux" {
  ami_set  = ami_set.ubuntu
  key_pair = key_pair.workers

  instance_type "t3.medium" { capacity = 1 }

  capacity {
    min = 0
    max = 0
  }
}
"#,
    )
    .unwrap();
    let loaded = fleetform_engine::load_dir(dir, &Inputs::default());
    assert!(
        loaded.config.is_some() && !loaded.has_errors(),
        "the test fleet loads: {:?}",
        loaded.diagnostics
    );
    loaded
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
