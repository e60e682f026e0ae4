//! Withholding sensitive values from a plan: the last step of building one,
//! so that nothing downstream (renderers, plan files, state versions) ever
//! holds them. Apply gets them back from the configuration
//! ([`crate::sensitive::Withheld`]).

use super::{Action, Change};
use crate::diagnostic::Diagnostic;
use crate::model::{address, Config};
use crate::sensitive::{describe, Secrets};
use std::collections::BTreeSet;

/// The attribute of a launch template that may derive from a secret.
pub(crate) const USER_DATA: &str = "user_data";

/// Withholds, in `actions`, the user data of worker types whose user data
/// is sensitive now, was sensitive in the last recorded version
/// (`sensitive_before`, by worker type name), or whose live user data holds
/// the value of a sensitive variable; and hides sensitive values in
/// `diagnostics`.
pub(crate) fn withhold(
    config: &Config,
    secrets: &Secrets,
    sensitive_before: &BTreeSet<String>,
    actions: &mut [Action],
    diagnostics: &mut [Diagnostic],
) {
    // The worker types' templates, and those of instance types with user
    // data of their own (`worker_type.NAME.instance_type["TYPE"]`).
    let mut sensitive_now: BTreeSet<String> = BTreeSet::new();
    for wt in config.worker_types.values() {
        if wt.user_data_sensitive {
            sensitive_now.insert(address::worker_type(&wt.name));
        }
        for it in &wt.instance_types {
            if wt.instance_user_data_sensitive(it) {
                sensitive_now.insert(super::build::instance_type_address(&wt.name, &it.name));
            }
        }
    }
    let mut before: BTreeSet<String> = sensitive_before
        .iter()
        .map(|name| address::worker_type(name))
        .collect();
    // A worker type whose address moved (rewritten as a `for_each`
    // instance) keeps its id: what it withheld is found by either.
    before.extend(
        config
            .worker_types
            .values()
            .filter(|wt| sensitive_before.contains(wt.id()))
            .map(|wt| address::worker_type(&wt.name)),
    );
    let holds_secret = |v: Option<&str>| v.is_some_and(|v| secrets.appear_in(v));
    for action in actions.iter_mut() {
        let now = sensitive_now.contains(&action.address);
        // What a worker type withheld before, its instance types' templates may hold.
        let was = before.contains(super::build::owner_address(&action.address));
        if let Some(data) = action.launch_template.as_mut() {
            // A secret written out in a file is withheld like a derived one.
            if now || holds_secret(data.user_data.as_deref()) {
                data.user_data = None;
                action.sensitive.push(USER_DATA.to_string());
            }
        }
        let withheld = !action.sensitive.is_empty();
        for change in action.changes.iter_mut().filter(|c| c.path == USER_DATA) {
            if withheld
                || was
                || holds_secret(change.old.as_deref())
                || holds_secret(change.new.as_deref())
            {
                hide(change);
            }
        }
    }
    for d in diagnostics {
        d.scrub(secrets);
    }
}

/// Replaces the values of a change by their descriptions.
fn hide(change: &mut Change) {
    change.old = change.old.as_deref().map(describe);
    change.new = change.new.as_deref().map(describe);
    change.sensitive = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ActionKind, Reason, Resource};
    use crate::provider::LaunchTemplateData;

    fn action(address: &str, old: &str, new: &str) -> Action {
        Action {
            launch_template: Some(LaunchTemplateData {
                user_data: Some(new.to_string()),
                ..LaunchTemplateData::default()
            }),
            changes: vec![Change {
                path: USER_DATA.into(),
                old: Some(old.into()),
                new: Some(new.into()),
                sensitive: false,
            }],
            ..Action::new(
                address,
                "us-east-1",
                ActionKind::Update,
                Resource::LaunchTemplate,
                Reason::ConfigChanged,
            )
        }
    }

    fn config(sensitive: &[&str], plain: &[&str]) -> Config {
        let text = |names: &[&str], sensitive: bool| -> String {
            names
                .iter()
                .map(|n| {
                    let data = if sensitive { "var.token" } else { "\"plain\"" };
                    format!(
                        "worker_type \"{n}\" {{\n  ami_set = ami_set.a\n  user_data = {data}\n  instance_type \"m5.large\" {{}}\n  capacity {{\n    min = 0\n    max = 1\n  }}\n}}\n"
                    )
                })
                .collect()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let hcl = format!(
            "fleet \"f\" {{\n  regions = [\"us-east-1\"]\n}}\nvariable \"token\" {{\n  sensitive = true\n}}\nami_set \"a\" {{\n  images = {{ \"us-east-1\" = \"ami-0123456789abcdef0\" }}\n}}\n{}{}",
            text(sensitive, true),
            text(plain, false)
        );
        std::fs::write(dir.path().join("f.hcl"), hcl).expect("write");
        let inputs = crate::Inputs {
            vars: vec!["token=canary-41".into()],
            ..crate::Inputs::default()
        };
        let loaded = crate::load_dir(dir.path(), &inputs);
        loaded
            .config
            .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
    }

    #[test]
    fn sensitive_user_data_leaves_the_plan_and_its_diff_is_described() {
        let config = config(&["secret"], &["plain"]);
        let secrets = Secrets::new([("token".to_string(), "canary-41".to_string())]);
        let mut actions = vec![
            action("worker_type.secret", "a\nb\n", "canary-41\nb\nc\n"),
            action("worker_type.plain", "x\n", "y\n"),
        ];
        withhold(&config, &secrets, &BTreeSet::new(), &mut actions, &mut []);
        let json = serde_json::to_string(&actions).expect("json");
        assert!(!json.contains("canary-41"), "{json}");
        assert_eq!(actions[0].sensitive, vec![USER_DATA.to_string()]);
        assert_eq!(
            actions[0]
                .launch_template
                .as_ref()
                .and_then(|d| d.user_data.clone()),
            None
        );
        let change = &actions[0].changes[0];
        assert!(change.sensitive);
        assert_eq!(change.new.as_deref(), Some("(sensitive: 3 lines)"));
        assert_eq!(change.old.as_deref(), Some("(sensitive: 2 lines)"));
        assert!(!actions[1].changes[0].sensitive);
        assert_eq!(actions[1].changes[0].new.as_deref(), Some("y\n"));
    }

    #[test]
    fn live_user_data_holding_a_secret_is_hidden_even_when_the_config_dropped_it() {
        let config = config(&[], &["plain", "other"]);
        let secrets = Secrets::new([("token".to_string(), "canary-41".to_string())]);
        let mut actions = vec![
            action("worker_type.plain", "token=canary-41\n", "no secret\n"),
            action("worker_type.other", "old\n", "new\n"),
        ];
        actions.push(action("worker_type.plain", "x\n", "literal canary-41\n"));
        let before = BTreeSet::from(["other".to_string()]);
        withhold(&config, &secrets, &before, &mut actions, &mut []);
        // A secret written out in a file is withheld like a derived one.
        assert_eq!(actions[2].sensitive, vec![USER_DATA.to_string()]);
        assert!(actions[2].changes[0].sensitive);
        assert!(actions[0].changes[0].sensitive);
        assert!(
            actions[1].changes[0].sensitive,
            "sensitive in the last version"
        );
        assert!(!serde_json::to_string(&actions)
            .expect("json")
            .contains("canary-41"));
        // The new value is not sensitive: apply still sends it.
        assert_eq!(
            actions[0]
                .launch_template
                .as_ref()
                .and_then(|d| d.user_data.as_deref()),
            Some("no secret\n")
        );
    }
}
