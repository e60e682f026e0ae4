//! fleetform's one clock: what an apply journals is stamped by
//! [`fleetform_ops::clock`], the clock plans judge by, so `FLEETFORM_NOW`
//! moves both together. Its own test binary: it sets `FLEETFORM_NOW` for
//! the whole process.

use fleetform_engine::apply;
use fleetform_engine::plan::{self, Action, PlanOptions};
use fleetform_engine::provider::{
    Caller, Mutation, MutationOutcome, Observation, ObserveRequest, Provider, ProviderError,
};
use fleetform_ops::{Execution, LockGuard, Reporter, Store};
use fleetform_state::{JournalRecord, LocalBackend};
use std::sync::Arc;

mod common;
use common::{empty_observation, fleet};

/// Says nothing.
struct Quiet;

impl Reporter for Quiet {
    fn warning(&self, _: &str) {}
    fn action_finished(&self, _: &Action, _: &Result<Vec<String>, ProviderError>) {}
}

/// A provider that makes every key pair and launch template it is asked for.
struct KeyPairs;

impl Provider for KeyPairs {
    async fn caller(&self) -> Result<Caller, ProviderError> {
        Ok(Caller {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/test".into(),
        })
    }
    async fn observe(&self, _: &ObserveRequest) -> Observation {
        empty_observation()
    }
    async fn mutate(&self, _: &str, mutation: Mutation) -> Result<MutationOutcome, ProviderError> {
        Ok(match mutation {
            Mutation::CreateLaunchTemplate { .. } => MutationOutcome::LaunchTemplate {
                id: "lt-0123456789abcdef0".into(),
                version: 1,
            },
            _ => MutationOutcome::KeyPair {
                id: "key-0123456789abcdef0".into(),
            },
        })
    }
}

#[test]
fn an_apply_journals_and_plans_judge_by_the_same_moved_clock() {
    const MOVED: i64 = 1_000_000_000;
    std::env::set_var("FLEETFORM_NOW", MOVED.to_string());
    assert_eq!(fleetform_ops::clock(), MOVED);

    let dir = tempfile::tempdir().unwrap();
    let loaded = fleet(dir.path());
    let config = loaded.config.as_ref().expect("the test fleet loads");
    let (plan, _) = plan::build(config, &empty_observation(), &PlanOptions::default());
    assert_eq!(plan.actions.len(), 2, "{:?}", plan.actions);

    let store: Store = Arc::new(LocalBackend::new(dir.path().join(".fleetform")));
    let lock = LockGuard::take(&*store, Arc::new(Quiet)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let apply_id = apply::plan_id(&plan);
    fleetform_ops::execute(
        &runtime,
        &store,
        &lock,
        &KeyPairs,
        Execution {
            plan: &plan,
            apply_id: &apply_id,
            withheld: &Default::default(),
            parallelism: 1,
        },
        &Quiet,
    )
    .unwrap();

    // The apply "crashed" before recording: its journal is all there is.
    let times: Vec<i64> = store
        .journal()
        .unwrap()
        .iter()
        .map(|record| match record {
            JournalRecord::Begin { time, .. }
            | JournalRecord::Intent { time, .. }
            | JournalRecord::Outcome { time, .. }
            | JournalRecord::End { time, .. } => *time,
        })
        .collect();
    // Begin, then an intent and an outcome per action.
    assert_eq!(times, vec![MOVED; 5]);
    // So a plan at the moved clock sees what it created as made just now,
    // not (by the system clock) years away from it.
    let created = fleetform_ops::created(&*store, config, fleetform_ops::clock()).unwrap();
    let created: Vec<(&str, i64)> = created.iter().map(|c| (c.id.as_str(), c.created)).collect();
    assert_eq!(
        created,
        vec![
            ("key-0123456789abcdef0", MOVED),
            ("lt-0123456789abcdef0", MOVED)
        ]
    );
}
