//! The objects recent applies created, gathered from the state for plan,
//! which counts those EC2 does not list yet as present
//! (`fleetform_engine::plan::visibility`): what the versions recorded within
//! `fleet.consistency_grace` launched and created, and what the journal shows
//! an apply that never ended created. Plain data out; the engine decides.

use crate::Error;
use fleetform_engine::model::Config;
use fleetform_engine::plan::visibility::Created;
use fleetform_engine::plan::{ActionKind, Resource};
use fleetform_state::{Backend, JournalRecord, Version};
use std::collections::{BTreeMap, BTreeSet};

/// Everything the state says was created less than `fleet.consistency_grace`
/// before `now` (older objects are judged by what EC2 lists alone), less
/// what a later recorded action terminated or deleted.
pub fn created(store: &dyn Backend, config: &Config, now: i64) -> Result<Vec<Created>, Error> {
    let grace = config.fleet.consistency_grace.as_secs() as i64;
    let mut created = Vec::new();
    let mut removed = BTreeSet::new();
    for summary in store.list()? {
        if now.saturating_sub(summary.time) < grace {
            let version = store.read(summary.number)?;
            from_version(&version, &mut created, &mut removed)?;
        }
    }
    created.extend(from_journal(&store.journal()?));
    created.retain(|c| !removed.contains(&c.id));
    Ok(created)
}

/// What the successful actions of `version` created (into `created`) and
/// terminated or deleted (their ids into `removed`), at the version's time.
/// A version whose plan holds no list of actions is [`Error::Damaged`].
fn from_version(
    version: &Version,
    created: &mut Vec<Created>,
    removed: &mut BTreeSet<String>,
) -> Result<(), Error> {
    let actions = crate::record::recorded_actions(version)?;
    for outcome in version.outcomes.iter().filter(|o| o.ok) {
        let Some(action) = actions.get(outcome.action) else {
            continue;
        };
        // A launch that may fall through to another instance type may have
        // launched that one: its type is then unknown, and the plan counts
        // such an instance at the heaviest weight (fail closed).
        let instance_type = match &action.placement {
            Some(p)
                if p.pairs
                    .iter()
                    .any(|x| Some(&x.instance_type) != action.instance_type.as_ref()) =>
            {
                None
            }
            _ => action.instance_type.clone(),
        };
        let made = |id: &String, resource: Resource| Created {
            id: id.clone(),
            resource,
            address: action.address.clone(),
            region: action.region.clone(),
            instance_type: instance_type.clone(),
            created: version.time,
        };
        match (action.resource, action.action) {
            (Resource::Instances, ActionKind::Launch) => {
                created.extend(outcome.ids.iter().map(|id| made(id, Resource::Instances)))
            }
            // A template's outcome is its id and version number.
            (Resource::LaunchTemplate, ActionKind::Create) => created.extend(
                outcome
                    .ids
                    .first()
                    .map(|id| made(id, Resource::LaunchTemplate)),
            ),
            (Resource::KeyPair, ActionKind::Create | ActionKind::Replace) => {
                created.extend(outcome.ids.first().map(|id| made(id, Resource::KeyPair)))
            }
            (_, ActionKind::Terminate | ActionKind::Delete) => {
                removed.extend(action.ids.iter().cloned())
            }
            _ => {}
        }
    }
    Ok(())
}

/// What the applies of `records` that never ended created, at the time of
/// each outcome. The journal does not record an action's kind, so it is told
/// by what the call returned: instances (`i-...`), a key pair (`key-...`),
/// a launch template with its version 1 (`lt-...`, `1`: a new template; an
/// update returns a later version). The type of an instance is not recorded
/// (the plan counts it at the heaviest weight its worker type declares).
fn from_journal(records: &[JournalRecord]) -> Vec<Created> {
    let ended: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| match r {
            JournalRecord::End { apply_id, .. } => Some(apply_id.as_str()),
            _ => None,
        })
        .collect();
    let mut intents: BTreeMap<(&str, usize), (&str, &str)> = BTreeMap::new();
    let mut created = Vec::new();
    for record in records {
        match record {
            JournalRecord::Intent {
                apply_id,
                action,
                address,
                region,
                ..
            } => {
                intents.insert((apply_id, *action), (address, region));
            }
            JournalRecord::Outcome {
                apply_id,
                action,
                ok: true,
                ids,
                time,
                ..
            } if !ended.contains(apply_id.as_str()) => {
                let Some((address, region)) = intents.get(&(apply_id.as_str(), *action)) else {
                    continue;
                };
                let made = |id: &String, resource: Resource| Created {
                    id: id.clone(),
                    resource,
                    address: address.to_string(),
                    region: region.to_string(),
                    instance_type: None,
                    created: *time,
                };
                match ids.as_slice() {
                    [id] if id.starts_with("key-") => created.push(made(id, Resource::KeyPair)),
                    [id, version] if id.starts_with("lt-") && version == "1" => {
                        created.push(made(id, Resource::LaunchTemplate))
                    }
                    _ => created.extend(
                        ids.iter()
                            .filter(|id| id.starts_with("i-"))
                            .map(|id| made(id, Resource::Instances)),
                    ),
                }
            }
            _ => {}
        }
    }
    created
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetform_state::ActionOutcome;
    use serde_json::Value;

    fn version(time: i64, actions: Value, outcomes: Vec<(usize, bool, &[&str])>) -> Version {
        Version {
            format_version: 2,
            number: 1,
            time,
            git_commit: None,
            git_dirty: false,
            caller: String::new(),
            rollback_of: None,
            sources: BTreeMap::new(),
            variables: BTreeMap::new(),
            plan: serde_json::json!({ "actions": actions }),
            outcomes: outcomes
                .into_iter()
                .map(|(action, ok, ids)| ActionOutcome {
                    action,
                    ok,
                    error: None,
                    ids: ids.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
            observed: Value::Null,
            diff: String::new(),
            summary: Value::Null,
            images: BTreeMap::new(),
            sensitive: None,
            key_pair_users: BTreeMap::new(),
        }
    }

    #[test]
    fn a_version_yields_what_its_successful_actions_created() {
        let actions = serde_json::json!([
            {"reason": "new", "address": "key_pair.k", "region": "r", "resource": "key_pair", "action": "create"},
            {"reason": "new", "address": "worker_type.w", "region": "r", "resource": "launch_template", "action": "create"},
            {"reason": "new", "address": "worker_type.w", "region": "r", "resource": "instances", "action": "launch", "instance_type": "m5.large", "count": 2},
            {"reason": "new", "address": "worker_type.x", "region": "r", "resource": "instances", "action": "launch", "instance_type": "m5.large", "count": 1},
            {"reason": "new", "address": "worker_type.w", "region": "r", "resource": "launch_template", "action": "update", "ids": ["lt-old"]},
        ]);
        let v = version(
            50,
            actions,
            vec![
                (0, true, &["key-1"]),
                (1, true, &["lt-1", "1"]),
                (2, true, &["i-1", "i-2"]),
                (3, false, &[]),
                (4, true, &["lt-old", "3"]),
            ],
        );
        let (mut created, mut removed) = (Vec::new(), BTreeSet::new());
        from_version(&v, &mut created, &mut removed).expect("actions");
        let got: Vec<(&str, Resource, Option<&str>, i64)> = created
            .iter()
            .map(|c| {
                (
                    c.id.as_str(),
                    c.resource,
                    c.instance_type.as_deref(),
                    c.created,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("key-1", Resource::KeyPair, None, 50),
                ("lt-1", Resource::LaunchTemplate, None, 50),
                ("i-1", Resource::Instances, Some("m5.large"), 50),
                ("i-2", Resource::Instances, Some("m5.large"), 50),
            ]
        );
        assert!(removed.is_empty());
        assert_eq!(created[2].address, "worker_type.w");
        assert_eq!(created[2].region, "r");
    }

    #[test]
    fn a_launch_that_may_fall_through_to_another_type_records_no_type() {
        let pair = |t: &str| serde_json::json!({"zone": "r-a", "subnet_id": "subnet-a", "instance_type": t, "weight": 1});
        let placement = |types: &[&str]| {
            serde_json::json!({
                "split": [{"zone": "r-a", "subnet_id": "subnet-a", "instance_type": "m5.large", "count": 1}],
                "pairs": types.iter().map(|t| pair(t)).collect::<Vec<_>>(),
            })
        };
        let actions = serde_json::json!([
            {"reason": "below-min", "address": "worker_type.w", "region": "r", "resource": "instances", "action": "launch", "instance_type": "m5.large", "count": 1, "placement": placement(&["m5.large", "c5.metal"])},
            {"reason": "below-min", "address": "worker_type.x", "region": "r", "resource": "instances", "action": "launch", "instance_type": "m5.large", "count": 1, "placement": placement(&["m5.large"])},
        ]);
        let v = version(70, actions, vec![(0, true, &["i-1"]), (1, true, &["i-2"])]);
        let (mut created, mut removed) = (Vec::new(), BTreeSet::new());
        from_version(&v, &mut created, &mut removed).expect("actions");
        let types: Vec<Option<&str>> = created.iter().map(|c| c.instance_type.as_deref()).collect();
        // i-1 may be a c5.metal: counted at the heaviest weight; i-2 can only be an m5.large.
        assert_eq!(types, [None, Some("m5.large")]);
    }

    #[test]
    fn a_version_that_terminated_an_instance_removes_it() {
        let actions = serde_json::json!([
            {"reason": "new", "address": "worker_type.w", "region": "r", "resource": "instances", "action": "terminate", "ids": ["i-1"]},
        ]);
        let v = version(60, actions, vec![(0, true, &[])]);
        let (mut created, mut removed) = (Vec::new(), BTreeSet::new());
        from_version(&v, &mut created, &mut removed).expect("actions");
        assert_eq!(removed, BTreeSet::from(["i-1".to_string()]));
    }

    #[test]
    fn the_journal_of_an_apply_that_never_ended_yields_what_it_created() {
        let intent = |apply: &str, action: usize| JournalRecord::Intent {
            apply_id: apply.into(),
            action,
            address: "worker_type.w".into(),
            region: "r".into(),
            client_token: "t".into(),
            time: 1,
        };
        let outcome = |apply: &str, action: usize, ids: &[&str]| JournalRecord::Outcome {
            apply_id: apply.into(),
            action,
            ok: true,
            error: None,
            ids: ids.iter().map(|s| s.to_string()).collect(),
            time: 7,
        };
        let records = vec![
            // A finished apply: its objects are in its version, not here.
            intent("done", 0),
            outcome("done", 0, &["i-old"]),
            JournalRecord::End {
                apply_id: "done".into(),
                time: 3,
                version: Some(1),
            },
            intent("open", 0),
            outcome("open", 0, &["lt-1", "1"]),
            intent("open", 1),
            outcome("open", 1, &["lt-2", "4"]),
            intent("open", 2),
            outcome("open", 2, &["i-1", "i-2"]),
            intent("open", 3),
            outcome("open", 3, &[]),
        ];
        let got: Vec<(String, Resource, i64)> = from_journal(&records)
            .into_iter()
            .map(|c| (c.id, c.resource, c.created))
            .collect();
        assert_eq!(
            got,
            vec![
                ("lt-1".to_string(), Resource::LaunchTemplate, 7),
                ("i-1".to_string(), Resource::Instances, 7),
                ("i-2".to_string(), Resource::Instances, 7),
            ]
        );
    }
}
