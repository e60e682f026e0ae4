//! Building a plan against the state: what the engine's planner needs from
//! the recorded versions and the journal (images the rollback window
//! protects, worker types withheld before, key pair users, objects recent
//! applies created), the plan itself, and the adopt actions for what EC2
//! holds but the latest version does not record. `plan` and `apply` (and
//! `rollback`) build their plans here, once.

use crate::Error;
use fleetform_engine::model::Config;
use fleetform_engine::plan::{self, Plan, PlanOptions};
use fleetform_engine::provider::Observation;
use fleetform_engine::sensitive::Secrets;
use fleetform_engine::{inventory, Diagnostic};
use fleetform_state::Backend;

/// The plan for `config` against `observation` and the state in `store`,
/// with its diagnostics. `options` carries what the caller decides (limits,
/// targets, promotion, pins, and `now`, the time the plan is judged at);
/// what comes from the state (`versions`, `sensitive_before`,
/// `recorded_key_users`, `created`) and `secrets` are filled in here,
/// replacing whatever `options` held for them. A state that cannot be read,
/// or recorded data that is damaged, is an error: never a plan built on
/// defaults.
pub fn plan(
    store: &dyn Backend,
    config: &Config,
    observation: &Observation,
    secrets: &Secrets,
    options: PlanOptions,
) -> Result<(Plan, Vec<Diagnostic>), Error> {
    let now = options.now;
    let options = PlanOptions {
        versions: crate::version_images(store, config, now)?,
        sensitive_before: crate::sensitive_before(store)?,
        recorded_key_users: crate::recorded_key_users(store)?,
        created: crate::created(store, config, now)?,
        secrets: secrets.clone(),
        ..options
    };
    let recorded = crate::recorded_entries(store)?;
    let (mut plan, diagnostics) = plan::build(config, observation, &options);
    plan.adopt_unrecorded(&inventory::entries(config, observation).0, &recorded);
    Ok((plan, diagnostics))
}
