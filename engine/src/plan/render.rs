//! Renderers of a [`Plan`]: human text (grouped by address and region, with
//! `+ ~ - -/+` markers and unified diffs for multi-line values, the images
//! chosen and where staged roll-outs stand) and a Markdown pull-request
//! comment that fits GitHub's comment limit. JSON is the plan itself,
//! serialized.

use super::{Action, ActionKind, Change, Plan, Reason, Resource, Stage};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Instance ids shown before "and N more".
const IDS_SHOWN: usize = 10;

fn paint(text: &str, action: ActionKind, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match action {
        ActionKind::Create | ActionKind::Launch | ActionKind::Copy => "32",
        ActionKind::Update
        | ActionKind::Adopt
        | ActionKind::Refresh
        | ActionKind::Attach
        | ActionKind::Detach => "33",
        ActionKind::Delete | ActionKind::Terminate | ActionKind::Replace | ActionKind::Prune => {
            "31"
        }
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn quoted(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "(none)".to_string(),
    }
}

fn ids_text(ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(IDS_SHOWN).map(String::as_str).collect();
    let more = ids.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{}, and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn group_name(a: &Action) -> &str {
    a.auto_scaling_group
        .as_ref()
        .map(|g| g.name.as_str())
        .or(a.name.as_deref())
        .unwrap_or("")
}

/// `: min 0, max 40 (MaxSize 37)`, the bounds of a planned group.
fn group_bounds(a: &Action) -> String {
    match &a.auto_scaling_group {
        Some(g) if g.max_size != g.max => format!(
            ": min {}, max {} (MaxSize {}: the heaviest weight may overshoot it)",
            g.min, g.max, g.max_size
        ),
        Some(g) => format!(": min {}, max {}", g.min, g.max),
        None => String::new(),
    }
}

/// One line describing an action (without its attribute changes).
pub fn headline(a: &Action) -> String {
    let name = a.name.as_deref().unwrap_or("");
    let id = a.ids.first().map(|i| format!(" {i}")).unwrap_or_default();
    match (a.resource, a.action) {
        (_, ActionKind::Adopt) if a.reason == Reason::Import => format!(
            "{} {name} {}, made by hand: tag with fleetform's tags ({} {}; import)",
            match a.resource {
                Resource::KeyPair => "key pair",
                Resource::LaunchTemplate => "launch template",
                Resource::Instances => "instances of",
                Resource::Image => "image",
                Resource::AutoScalingGroup => "Auto Scaling group",
            },
            ids_text(&a.ids),
            a.tags.len(),
            if a.tags.len() == 1 { "tag" } else { "tags" },
        ),
        (Resource::LaunchTemplate, ActionKind::Update) if a.reason == Reason::Import => format!(
            "launch template {name}{id}: new version that only adds fleetform's tag specifications, made default (import)"
        ),
        (_, ActionKind::Adopt) => format!(
            "{} {name}{id} found by its tags will be recorded in state ({})",
            match a.resource {
                Resource::KeyPair => "key pair",
                Resource::LaunchTemplate => "launch template",
                Resource::Instances => "instances",
                Resource::Image => "image",
                Resource::AutoScalingGroup => "Auto Scaling group",
            },
            a.reason
        ),
        (_, ActionKind::Attach) => format!(
            "attach {} running instance{} to Auto Scaling group {} ({}): {}",
            a.ids.len(),
            if a.ids.len() == 1 { "" } else { "s" },
            group_name(a),
            a.reason,
            ids_text(&a.ids)
        ),
        (_, ActionKind::Detach) => format!(
            "detach {} instance{} from Auto Scaling group {}, which keep running ({}): {}",
            a.ids.len(),
            if a.ids.len() == 1 { "" } else { "s" },
            group_name(a),
            a.reason,
            ids_text(&a.ids)
        ),
        (Resource::AutoScalingGroup, ActionKind::Create) => format!(
            "Auto Scaling group {} will be created{}",
            group_name(a),
            group_bounds(a)
        ),
        (Resource::AutoScalingGroup, ActionKind::Refresh) => format!(
            "Auto Scaling group {}: start an instance refresh, keeping {}% healthy ({}{})",
            group_name(a),
            a.auto_scaling_group
                .as_ref()
                .and_then(|g| g.min_healthy_percentage)
                .unwrap_or(0),
            a.reason,
            match a.stage {
                Some(Stage::Canary) => "; canary region of a staged roll-out",
                Some(Stage::Promote) => "; promoted once the canaries succeed",
                None => "",
            }
        ),
        (Resource::AutoScalingGroup, ActionKind::Delete) => format!(
            "Auto Scaling group {name} will be deleted with its {} instance{} ({})",
            a.count.unwrap_or(0),
            if a.count == Some(1) { "" } else { "s" },
            a.reason
        ),
        (Resource::AutoScalingGroup, _) => format!(
            "Auto Scaling group {} will be updated{}{} ({})",
            group_name(a),
            group_bounds(a),
            match a.count {
                Some(n) if n > 0 => format!(
                    "; Auto Scaling terminates up to {n} instance{} to meet the lower bound",
                    if n == 1 { "" } else { "s" }
                ),
                _ => String::new(),
            },
            a.reason
        ),
        (Resource::Image, ActionKind::Copy) => match a.ids.first() {
            Some(id) => format!(
                "copy {id} of {} is pending; apply waits until it is available ({})",
                a.source_image.as_deref().unwrap_or("?"),
                a.reason
            ),
            None => format!(
                "copy {} from {} as {name}, tagged at creation; apply waits until it is available",
                a.source_image.as_deref().unwrap_or("?"),
                a.source_region.as_deref().unwrap_or("?")
            ),
        },
        (Resource::Image, _) => format!(
            "deregister image {name}{id} and delete its {} snapshot{} ({})",
            a.ids.len().saturating_sub(1),
            if a.ids.len() == 2 { "" } else { "s" },
            a.reason
        ),
        (Resource::KeyPair, ActionKind::Create) => format!("key pair {name} will be imported"),
        (Resource::KeyPair, ActionKind::Replace) => {
            format!("key pair {name}{id} will be replaced ({})", a.reason)
        }
        (Resource::KeyPair, _) => format!("key pair {name}{id} will be deleted ({})", a.reason),
        (Resource::LaunchTemplate, ActionKind::Create) => {
            format!("launch template {name} will be created")
        }
        (Resource::LaunchTemplate, ActionKind::Update) => {
            format!(
                "launch template {name}{id}: new version, made default ({}{})",
                a.reason,
                match a.stage {
                    Some(Stage::Canary) => "; canary region of a staged roll-out",
                    Some(Stage::Promote) => "; promoted once the canaries succeed",
                    None => "",
                }
            )
        }
        (Resource::LaunchTemplate, _) => {
            format!("launch template {name}{id} will be deleted ({})", a.reason)
        }
        (Resource::Instances, ActionKind::Launch) => match (&a.instance_type, &a.placement) {
            // Mixed instance types: the split below says which.
            (None, Some(_)) => format!(
                "launch {} instance{} ({}{})",
                a.count.unwrap_or(0),
                if a.count == Some(1) { "" } else { "s" },
                a.reason,
                capacity_note(&a.changes)
            ),
            _ => format!(
                "launch {} x {} ({}{})",
                a.count.unwrap_or(0),
                a.instance_type.as_deref().unwrap_or("?"),
                a.reason,
                capacity_note(&a.changes)
            ),
        },
        (Resource::Instances, _) => format!(
            "terminate {} instance{} ({}{}): {}",
            a.ids.len(),
            if a.ids.len() == 1 { "" } else { "s" },
            a.reason,
            capacity_note(&a.changes),
            ids_text(&a.ids)
        ),
    }
}

fn capacity_note(changes: &[Change]) -> String {
    changes
        .iter()
        .find(|c| c.path == "capacity")
        .map(|c| {
            format!(
                "; capacity {} -> {}",
                c.old.as_deref().unwrap_or("?"),
                c.new.as_deref().unwrap_or("?")
            )
        })
        .unwrap_or_default()
}

/// A launch's split per zone and the pairs it falls through to, indented.
fn placement_text(a: &Action, out: &mut String) {
    let Some(placement) = &a.placement else {
        return;
    };
    for part in &placement.split {
        let template = placement
            .pairs
            .iter()
            .find(|p| p.holds(part))
            .and_then(|p| p.template_name.as_deref())
            .map(|name| format!(" from {name}"))
            .unwrap_or_default();
        match (&part.zone, &part.subnet_id) {
            (Some(zone), Some(subnet)) => {
                let _ = writeln!(
                    out,
                    "      {zone} ({subnet}): {} x {}{template}",
                    part.count, part.instance_type
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "      {} x {}{template}",
                    part.count, part.instance_type
                );
            }
        }
    }
    if placement.pairs.len() > 1 {
        let pairs: Vec<String> = placement
            .pairs
            .iter()
            .map(|p| match &p.zone {
                Some(zone) => format!("{zone}/{}", p.instance_type),
                None => p.instance_type.clone(),
            })
            .collect();
        let _ = writeln!(out, "      falls through: {}", pairs.join(", "));
    }
}

/// The pairs launches skip: each one EC2 does not offer, and how many the
/// networks' `exclude` leaves out (the configuration says which; listing
/// them on every plan of a large fleet would bury the rest; `--json` has
/// them all).
pub fn skipped_pairs_text(plan: &Plan) -> String {
    let mut out = String::new();
    let excluded = plan
        .skipped_pairs
        .iter()
        .filter(|p| p.reason == super::SkipReason::Excluded)
        .count();
    let not_offered: Vec<&super::SkippedPair> = plan
        .skipped_pairs
        .iter()
        .filter(|p| p.reason == super::SkipReason::NotOffered)
        .collect();
    if !not_offered.is_empty() {
        out.push_str("Skipped (zone, instance type) pairs EC2 does not offer:\n");
        for p in &not_offered {
            let _ = writeln!(
                out,
                "  {} {}: {} in {}",
                p.address, p.region, p.instance_type, p.zone
            );
        }
    }
    if excluded > 0 {
        let _ = writeln!(
            out,
            "Skipped {excluded} (zone, instance type) pair{} that networks exclude (plan --json lists them).",
            if excluded == 1 { "" } else { "s" }
        );
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Attribute changes, indented; multi-line values as unified diffs.
fn changes_text(a: &Action, out: &mut String) {
    placement_text(a, out);
    for c in a.changes.iter().filter(|c| c.path != "capacity") {
        if c.sensitive {
            // `old`/`new` describe the values, which the plan withholds.
            let described = match (&c.old, &c.new) {
                (None, Some(new)) => new.trim_end_matches(')').to_string(),
                (Some(old), None) => format!("{}, removed", old.trim_end_matches(')')),
                (_, new) => format!(
                    "{}, changed",
                    new.as_deref()
                        .unwrap_or(crate::sensitive::SHOWN)
                        .trim_end_matches(')')
                ),
            };
            if a.action == ActionKind::Create {
                let _ = writeln!(out, "      {} = {described})", c.path);
            } else {
                let _ = writeln!(out, "      {}: {described})", c.path);
            }
            continue;
        }
        let multiline = c.old.as_deref().is_some_and(|v| v.contains('\n'))
            || c.new.as_deref().is_some_and(|v| v.contains('\n'));
        if multiline {
            let _ = writeln!(out, "      {}:", c.path);
            let diff = similar::TextDiff::from_lines(
                c.old.as_deref().unwrap_or(""),
                c.new.as_deref().unwrap_or(""),
            );
            for line in diff.unified_diff().context_radius(2).to_string().lines() {
                let _ = writeln!(out, "        {line}");
            }
        } else if a.action == ActionKind::Create {
            let _ = writeln!(out, "      {} = {}", c.path, quoted(&c.new));
        } else {
            let _ = writeln!(
                out,
                "      {}: {} -> {}",
                c.path,
                quoted(&c.old),
                quoted(&c.new)
            );
        }
    }
}

/// What an empty plan says; it never claims a match for regions it could not read.
fn no_changes(plan: &Plan) -> String {
    let held = plan
        .rollouts
        .iter()
        .flat_map(|r| &r.regions)
        .any(|r| r.status == "held");
    if held && plan.summary.skipped_regions.is_empty() {
        "No changes to apply now: image changes outside the canary regions wait for `apply --promote`.\n".to_string()
    } else if plan.summary.skipped_regions.is_empty() {
        "No changes: EC2 matches the configuration.\n".to_string()
    } else {
        format!(
            "No changes in the regions that could be read; {} could not be read completely, so nothing is known there.\n",
            plan.summary.skipped_regions.join(", ")
        )
    }
}

/// The summary line: `Plan: A to add, C to change, D to destroy; capacity: +L -T; est. $X/h`.
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut line = format!(
        "Plan: {} to add, {} to change, {} to destroy; capacity: +{} -{}; est. ${:.2}/h",
        s.add, s.change, s.destroy, s.launch, s.terminate, s.hourly_usd
    );
    if s.adopt > 0 {
        let _ = write!(line, "; {} to adopt", s.adopt);
    }
    if s.copy > 0 || s.prune > 0 {
        let _ = write!(line, "; images: {} to copy, {} to prune", s.copy, s.prune);
    }
    let held: usize = plan
        .rollouts
        .iter()
        .flat_map(|r| &r.regions)
        .filter(|r| r.status == "held")
        .count();
    if held > 0 {
        let _ = write!(
            line,
            "; {held} region{} held for `apply --promote`",
            if held == 1 { "" } else { "s" }
        );
    }
    if !s.skipped_regions.is_empty() {
        let _ = write!(
            line,
            "; skipped (incomplete observation): {}",
            s.skipped_regions.join(", ")
        );
    }
    line
}

/// The plan as people read it on a terminal.
pub fn human(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str(&no_changes(plan));
    } else {
        let mut group: Option<(&str, &str)> = None;
        for a in &plan.actions {
            if group != Some((a.address.as_str(), a.region.as_str())) {
                let _ = writeln!(out, "\n# {} in {}", a.address, a.region);
                group = Some((a.address.as_str(), a.region.as_str()));
            }
            let _ = writeln!(
                out,
                "  {} {}",
                paint(a.action.marker(), a.action, color),
                headline(a)
            );
            changes_text(a, &mut out);
        }
        out.push('\n');
    }
    out.push_str(&images_text(plan));
    out.push_str(&skipped_pairs_text(plan));
    out.push_str(&rollouts_text(plan));
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

/// The image of every AMI set in every region it serves: id, name, creation date.
pub fn images_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.images.is_empty() {
        return out;
    }
    out.push_str("Images:\n");
    for p in &plan.images {
        let how = match p.via {
            crate::images::ImageVia::Images => "images".to_string(),
            crate::images::ImageVia::Lookup => "lookup".to_string(),
            crate::images::ImageVia::Source => "source".to_string(),
            crate::images::ImageVia::Copy => {
                format!("copy of {}", p.copy_of.as_deref().unwrap_or("?"))
            }
            crate::images::ImageVia::Pinned => "pinned by rollback".to_string(),
        };
        let Some(id) = p.image_id.as_deref() else {
            let _ = writeln!(
                out,
                "  ami_set.{} {}: {} [{how}]",
                p.ami_set,
                p.region,
                match p.via {
                    crate::images::ImageVia::Copy => "copied by this apply",
                    _ => "no image found",
                }
            );
            continue;
        };
        let _ = writeln!(
            out,
            "  ami_set.{} {}: {id} {} created {} [{how}{}]",
            p.ami_set,
            p.region,
            p.name
                .as_deref()
                .map_or("(name unknown)".to_string(), |n| format!("{n:?}")),
            p.creation_date.as_deref().unwrap_or("?"),
            match p.state.as_deref() {
                Some("available") | None => String::new(),
                Some(state) => format!(", {state}"),
            }
        );
    }
    out.push('\n');
    out
}

/// Where each staged roll-out stands: which region is on which image.
pub fn rollouts_text(plan: &Plan) -> String {
    let mut out = String::new();
    for r in &plan.rollouts {
        let _ = writeln!(out, "Roll-out of {}:", r.address);
        for region in &r.regions {
            let now = region.current.as_deref().unwrap_or("(no template yet)");
            let to = region.target.as_deref().unwrap_or("?");
            let what = match region.status.as_str() {
                "on-target" => format!("on {now}"),
                "new" => format!("new template on {to}"),
                "canary" => format!("{now} -> {to} now (canary)"),
                "promote" => format!("{now} -> {to} once the canaries succeed"),
                "held" => format!("stays on {now}; {to} waits for `apply --promote`"),
                other => format!("{now} ({other})"),
            };
            let _ = writeln!(
                out,
                "  {}{}: {what}",
                region.region,
                if region.canary { " (canary)" } else { "" }
            );
        }
        out.push('\n');
    }
    out
}

/// GitHub's limit for one comment, in characters.
pub const MARKDOWN_LIMIT: usize = 65_536;

/// How much detail a Markdown rendering keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Detail {
    /// Every change, folded per address.
    Full,
    /// The table only: one row per address and region.
    Table,
    /// One row per address, its actions counted across regions.
    PerAddress,
}

/// The plan as a pull-request comment: findings first, a table, details
/// folded; never longer than [`MARKDOWN_LIMIT`] characters. A plan too large
/// for that loses detail step by step (the changes, then one row per region,
/// then rows past what fits), and says so and where the whole plan is.
pub fn markdown(plan: &Plan) -> String {
    markdown_within(plan, MARKDOWN_LIMIT)
}

/// [`markdown`] within `limit` characters.
pub fn markdown_within(plan: &Plan, limit: usize) -> String {
    for detail in [Detail::Full, Detail::Table, Detail::PerAddress] {
        let out = markdown_at(plan, detail, usize::MAX);
        if out.chars().count() <= limit {
            return out;
        }
    }
    // Rows past what fits are counted, not shown: find the most rows that fit.
    let (mut low, mut high) = (0usize, plan.actions.len());
    while low < high {
        let mid = (low + high).div_ceil(2);
        if markdown_at(plan, Detail::PerAddress, mid).chars().count() <= limit {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    let out = markdown_at(plan, Detail::PerAddress, low);
    if out.chars().count() <= limit {
        return out;
    }
    // Even the findings do not fit: keep the head and say so.
    let note =
        "\n\n_Truncated to fit a comment; run `fleetform show PLANFILE` for the whole plan._\n";
    let keep = limit.saturating_sub(note.chars().count());
    let mut cut: String = out.chars().take(keep).collect();
    cut.push_str(note);
    cut
}

fn markdown_at(plan: &Plan, detail: Detail, max_rows: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### fleetform plan for `{}`\n", plan.fleet);
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    if !plan.diagnostics.is_empty() {
        let _ = writeln!(
            out,
            "#### Safety findings\n\n| | code | finding | where |\n|---|---|---|---|"
        );
        for d in &plan.diagnostics {
            let icon = if d.severity == crate::Severity::Error {
                "❌"
            } else {
                "⚠️"
            };
            let place = match (&d.file, d.line) {
                (Some(f), Some(l)) => format!("`{f}:{l}`"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "| {icon} | {} | {} | {place} |",
                d.code,
                d.message.replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    if !plan.rollouts.is_empty() {
        let _ = writeln!(
            out,
            "#### Staged roll-outs\n\n```\n{}```\n",
            rollouts_text(plan)
        );
    }
    if !plan.images.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Images: {} region{}</summary>\n\n```\n{}```\n</details>\n",
            plan.images.len(),
            if plan.images.len() == 1 { "" } else { "s" },
            images_text(plan)
        );
    }
    if !plan.skipped_pairs.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Skipped pairs: {}</summary>\n\n```\n{}```\n</details>\n",
            plan.skipped_pairs.len(),
            skipped_pairs_text(plan)
        );
    }
    if plan.is_empty() {
        out.push_str(&no_changes(plan));
        return out;
    }
    if detail == Detail::PerAddress {
        per_address_table(plan, max_rows, &mut out);
    } else {
        let _ = writeln!(out, "| address | region | changes |\n|---|---|---|");
        let mut rows: Vec<(&str, &str, Vec<String>)> = Vec::new();
        for a in &plan.actions {
            let short = format!(
                "{} {}",
                a.action.marker(),
                headline(a).split(" (").next().unwrap_or_default()
            );
            match rows.last_mut() {
                Some((addr, region, items)) if *addr == a.address && *region == a.region => {
                    items.push(short)
                }
                _ => rows.push((&a.address, &a.region, vec![short])),
            }
        }
        for (addr, region, items) in &rows {
            let _ = writeln!(
                out,
                "| `{addr}` | {region} | {} |",
                items.join("<br>").replace('|', "\\|")
            );
        }
    }
    if detail != Detail::Full {
        let _ = writeln!(
            out,
            "\n_Details left out to fit GitHub's {MARKDOWN_LIMIT}-character comment limit; `fleetform show PLANFILE` shows the whole plan._"
        );
        return out;
    }
    let _ = writeln!(out, "\n#### Details\n");
    let mut current: Option<&str> = None;
    for a in &plan.actions {
        if current != Some(a.address.as_str()) {
            if current.is_some() {
                out.push_str("```\n</details>\n\n");
            }
            let count = plan
                .actions
                .iter()
                .filter(|x| x.address == a.address)
                .count();
            let _ = writeln!(
                out,
                "<details><summary><code>{}</code>: {count} change{}</summary>\n\n```diff",
                a.address,
                if count == 1 { "" } else { "s" }
            );
            current = Some(&a.address);
        }
        let _ = writeln!(out, "{} [{}] {}", a.action.marker(), a.region, headline(a));
        let mut changes = String::new();
        changes_text(a, &mut changes);
        out.push_str(&changes);
    }
    if current.is_some() {
        out.push_str("```\n</details>\n");
    }
    out
}

/// One row per address: how many of each action, over how many regions; at
/// most `max_rows` rows, then a count of the rest.
fn per_address_table(plan: &Plan, max_rows: usize, out: &mut String) {
    let _ = writeln!(out, "| address | regions | changes |\n|---|---|---|");
    let mut rows: Vec<(&str, BTreeSet<&str>, BTreeMap<&'static str, usize>)> = Vec::new();
    for a in &plan.actions {
        match rows.last_mut() {
            Some((addr, regions, counts)) if *addr == a.address => {
                regions.insert(&a.region);
                *counts.entry(a.action.name()).or_default() += 1;
            }
            _ => rows.push((
                &a.address,
                BTreeSet::from([a.region.as_str()]),
                BTreeMap::from([(a.action.name(), 1)]),
            )),
        }
    }
    for (addr, regions, counts) in rows.iter().take(max_rows) {
        let changes: Vec<String> = counts
            .iter()
            .map(|(name, n)| format!("{name} ×{n}"))
            .collect();
        let _ = writeln!(
            out,
            "| `{addr}` | {} | {} |",
            regions.len(),
            changes.join(" ").replace('|', "\\|")
        );
    }
    if rows.len() > max_rows {
        let _ = writeln!(
            out,
            "| … and {} more addresses | | |",
            rows.len() - max_rows
        );
    }
}
