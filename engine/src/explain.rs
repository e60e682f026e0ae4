//! The long explanation of every diagnostic code, printed by
//! `fleetform explain CODE` (as `rustc --explain` does).
//!
//! [`explanation`] matches on [`Code`] without a wildcard arm: a code added
//! to the `codes!` table without its text here does not compile. It owns the
//! text only; the CLI prints it.

use crate::diagnostic::{did_you_mean, Code};
use std::fmt::Write as _;

/// What a code is about, in the words a user needs to act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explanation {
    /// One line: the name of the check.
    pub title: &'static str,
    /// What fleetform checks.
    pub checks: &'static str,
    /// The kind of outage or mistake the check stops.
    pub prevents: &'static str,
    /// How to resolve it.
    pub resolve: &'static str,
    /// The flag or step that overrides it, where one does.
    pub overrides: Option<&'static str>,
}

/// The long explanation of `code`.
pub fn explanation(code: Code) -> Explanation {
    match code {
        Code::ImageInUse => Explanation {
            title: "image-in-use: an image still needed is never deregistered",
            checks: "Before an image of an AMI set is pruned, fleetform looks for everything that \
                     still needs it: a worker type of the configuration, a launch template in EC2, \
                     a copy made from it, or a recorded state version younger than \
                     `fleet.rollback_window`. The newest image of a set in a region is always kept. \
                     An image past its `retain` that something still holds is kept, with a warning \
                     naming what holds it.",
            prevents: "Deregistering an image that running launch templates still launch from: every \
                       new worker of those types fails to start, and a rollback to last week's \
                       version has no image to go back to.",
            resolve: "Nothing is wrong: the image is pruned by a later apply once nothing holds it. \
                      Move the worker types and launch templates to a newer image, and wait until \
                      the versions that used it are older than the rollback window. `fleetform \
                      images` shows what holds each image and when it becomes prunable.",
            overrides: None,
        },
        Code::ImageMissing => Explanation {
            title: "image-missing: every region of a worker type has an image",
            checks: "Each region a worker type runs in needs an image in its AMI set. `validate` \
                     checks that the set names one for the region; `plan` checks that the image \
                     exists in that region, is visible to the account and is `available` (a \
                     `lookup` must match at least one available image).",
            prevents: "A worker type that cannot launch in a region: the launch template points at an \
                       image that is not there, so every scale-up in that region fails while the \
                       queue of CI jobs grows.",
            resolve: "Add the region to the AMI set's `images` (or `copy_to`), publish an image that \
                      the `lookup` matches, wait for a pending image to become available, or take \
                      the region out of the worker type's `regions`. Never remove an image that a \
                      worker type is still configured to use.",
            overrides: None,
        },
        Code::ImageCompat => Explanation {
            title: "image-compat: the image suits every instance type it runs on",
            checks: "An AMI set declares `virtualization` (hvm or pv) and `architecture` (x86_64 or \
                     arm64). Paravirtual images run only on previous-generation families (m1 m2 m3 \
                     c1 c3 t1 hs1); arm64 images only on Graviton families (a1 and families with a \
                     `g` such as m6g, c7gn, t4g), and x86_64 images never on them. `plan` also \
                     checks that the real image has the declared virtualization and architecture.",
            prevents: "Launches that EC2 refuses for every instance: a paravirtual image on hardware \
                       that only boots HVM, or an x86_64 image on an arm64 instance type. The fleet \
                       looks healthy in the configuration and runs no worker at all.",
            resolve: "Use an image of the kind the instance types need, pick instance types that suit \
                      the image, or correct the AMI set's `virtualization` or `architecture` when it \
                      does not describe its images.",
            overrides: None,
        },
        Code::CapacityBound => Explanation {
            title: "capacity-bound: no plan ends above a worker type's max",
            checks: "For every worker type and region, the capacity left running after the plan \
                     (instances weighted by their instance type's `capacity`) never exceeds \
                     `capacity.max`. Above max, fleetform terminates instances past \
                     `max_lifetime` first, then those of older launch template versions, then the \
                     oldest; it launches only the instance types that still fit under max. An \
                     instance of a type the worker type does not declare has no known weight: it \
                     counts at the heaviest declared weight, with a warning naming the type and \
                     how many run.",
            prevents: "A runaway fleet: a provisioner or a scan gone wrong that leaves hundreds of the \
                       largest instances running, far past what the worker type was meant to cost.",
            resolve: "Read the plan: the terminations it proposes bring the region back under max. \
                      If the fleet needs more, raise `capacity.max` in the configuration. For the \
                      undeclared-type warning, declare the type with its `capacity`, or have the \
                      provisioner launch only declared types.",
            overrides: None,
        },
        Code::BlindScaling => Explanation {
            title: "blind-scaling: no scaling in a region fleetform could not read completely",
            checks: "When a read of a region fails or may have been cut short (an error, throttling \
                     that outlived the retries, a time-out, a full last page without a next-page \
                     token) for key pairs, images, launch templates or instances, fleetform plans \
                     no launch and no termination in that region and says why. Other regions are \
                     planned as usual. The same code warns about objects a recent apply created \
                     that a complete read does not list yet (EC2 is eventually consistent): for \
                     `fleet.consistency_grace` after their creation they count as present, and \
                     nothing is launched or created again in their place.",
            prevents: "Treating what could not be seen as nothing: a scan that saw zero workers \
                       launched hundreds of the largest instances, and one that missed half of them \
                       terminated the rest.",
            resolve: "Run `fleetform plan` again once EC2 answers; the warning names the region, the \
                      kind of object and the cause (credentials, permissions, throttling, network). \
                      Objects not yet visible need nothing: they appear within minutes, and one \
                      still missing after the grace period is treated as gone.",
            overrides: None,
        },
        Code::BlastRadius => Explanation {
            title: "blast-radius: large changes need a second look",
            checks: "A plan may launch at most `fleet.limits.max_launches` instances, terminate at \
                     most `max_terminations` and delete at most `max_deletions` objects (key pairs, \
                     launch templates, pruned images) in one apply.",
            prevents: "One reviewed-in-a-hurry change taking down the fleet: a renamed worker type \
                       that terminates every instance of the old one, or a typo in `max` that \
                       launches hundreds of instances.",
            resolve: "Review the plan. If it is what you meant, allow it for this run with a flag; if \
                      such changes are normal for the fleet, raise the limits in `fleet.limits`. \
                      Splitting a change into smaller applies also keeps each under the limits.",
            overrides: Some(
                "`--max-launches N` allows up to N launches, `--max-terminations N` up to N \
                 terminations, and `--allow-destroy` any number of terminations and deletions \
                 (on `plan` and `apply`).",
            ),
        },
        Code::Budget => Explanation {
            title: "budget: the fleet at max capacity stays within the budget",
            checks: "Every worker type at `capacity.max` in every region, each capacity unit priced \
                     at the dearest of its instance types (on-demand Linux prices), must cost no \
                     more per hour than `fleet.budget.max_hourly_usd`. Instance types with no known \
                     price are left out of the figure, with a warning.",
            prevents: "A bill nobody agreed to: a `max` raised from 10 to 100 on a metal instance type \
                       is a few characters in a pull request and thousands of dollars a day.",
            resolve: "Lower `capacity.max` or choose cheaper instance types, or raise \
                      `budget.max_hourly_usd` when the spending is intended. The error names the \
                      worker types that cost the most.",
            overrides: None,
        },
        Code::KeyReplace => Explanation {
            title: "key-replace: replacing or removing a key pair names who uses it",
            checks: "When a plan deletes or replaces a key pair in EC2 (a rename, a new public key, or \
                     a key pair removed from the configuration), fleetform lists the worker types \
                     and the running instances that use it.",
            prevents: "Locking out the running fleet: instances keep the key they were launched with, \
                       so anything that logs in with the new key, or that derives a worker's \
                       identity from the key pair name, breaks for every instance still running.",
            resolve: "Check the listed worker types and instances. Roll the worker types to the new \
                      key (so their instances are replaced) before removing the old one, or keep \
                      the old key pair until nothing uses it.",
            overrides: None,
        },
        Code::AccountGuard => Explanation {
            title: "account-guard: the credentials belong to the fleet's account",
            checks: "Before any command reads or changes the cloud, fleetform asks STS which account \
                     the credentials belong to and compares it with `fleet.account_id`.",
            prevents: "Applying a fleet to the wrong account: credentials of another team or of \
                       production left in the environment would create, and worse terminate, \
                       instances there.",
            resolve: "Use credentials of the account the fleet names (`AWS_PROFILE`, `aws sso \
                      login`), or correct `fleet.account_id` if the fleet has really moved.",
            overrides: None,
        },
        Code::StalePlan => Explanation {
            title: "stale-plan: a saved plan is applied only as it was reviewed",
            checks: "`apply PLANFILE` compares the plan file with now: the configuration files, the \
                     resolved model (variables and files read included), the last recorded state \
                     version, and what EC2 holds. If any of them moved since `plan -out`, the plan \
                     is refused.",
            prevents: "Carrying out a plan that no longer matches the world: a pull request reviewed \
                       on Monday, applied on Friday after another apply, would undo that apply or \
                       act on instances that are gone.",
            resolve: "Run `fleetform plan -out FILE` again, review the new plan, and apply that file.",
            overrides: Some("None: plan again; a new plan is the only way past it."),
        },
        Code::DryRun => Explanation {
            title: "dry-run: EC2 would accept every launch",
            checks: "`plan --dry-run` asks EC2 to try every launch of the plan with DryRun=true (from \
                     the launch template, or from its image before the template exists) and \
                     reports what EC2 refuses: missing permissions, unknown parameters, images or \
                     instance types it will not launch.",
            prevents: "An apply that fails half way: key pairs and templates created, then every \
                       launch refused for a permission or parameter nobody could see in the plan.",
            resolve: "Fix what EC2 names: grant the permission to the credentials, or change the \
                      worker type's image, instance types or other settings; then run `plan \
                      --dry-run` again.",
            overrides: Some("Plan without `--dry-run` to skip the check."),
        },
        Code::Network => Explanation {
            title: "network: every subnet and security group a worker type launches into exists and fits",
            checks: "Plan reads the subnets and security groups each `network` names, by id, in \
                     every region its worker types run in. A subnet must exist and lie in the \
                     availability zone it is listed under; a security group must exist in that \
                     region and belong to the same VPC as the subnets it is used with. Before any \
                     cloud call, validate checks that every worker type region has at least one \
                     subnet and a `security_groups` entry, and that every zone belongs to a fleet \
                     region.",
            prevents: "Launches that EC2 refuses at apply because a subnet was deleted or a group was \
                       recreated in another VPC, after key pairs and templates were already changed; \
                       or, without a network, instances started in a default VPC with a default \
                       security group that production accounts do not have or must not use.",
            resolve: "Correct the id in the `network` block (the message names it and what EC2 has), \
                      or recreate the subnet or group. Nothing launches for the worker types that \
                      use the network until it is right; other worker types are planned as usual.",
            overrides: None,
        },
        Code::Offering => Explanation {
            title: "offering: EC2 offers each instance type where a worker type runs",
            checks: "Plan reads, per region, which availability zones offer each instance type the \
                     configuration uses (DescribeInstanceTypeOfferings). An instance type that no \
                     zone of a worker type region offers is an error. A (zone, instance type) pair \
                     that is not offered, or that the network's `exclude` names, is skipped: \
                     launches go to the other pairs, and the plan lists what it skipped.",
            prevents: "A worker type that can never start in a region, discovered only when its queue \
                       backs up; and launches that fail in a zone where a type is not sold.",
            resolve: "Use the instance type only in regions that offer it (`regions` inside its \
                      `instance_type` block), replace it with one that is offered, or run the \
                      worker type in other regions.",
            overrides: None,
        },
        Code::AutoScaling => Explanation {
            title: "auto-scaling: an Auto Scaling group can hold the worker type's bounds",
            checks: "A worker type with `scaling = \"asg\"` needs a `network` (a group launches \
                     into its subnets); its `max_lifetime` must be at least one day (Auto Scaling \
                     refuses less); `instance_refresh` only applies to such a worker type; and its \
                     bounds must leave room for the heaviest instance weight, because a group's \
                     MaxSize is `max` less the heaviest weight but one (Auto Scaling may overshoot \
                     MaxSize by that much when it launches a weighted instance). `exclude` in its \
                     network cannot be expressed in a group and is a warning. At plan time: a \
                     refresh already in flight is shown and no second one is started; running \
                     instances that do not fit under a new group's MaxSize stay outside it.",
            prevents: "A group that lets a provisioner launch past `max` between applies because of \
                       weighted overshoot; a worker type switched to a group that starts its \
                       capacity a second time next to the running instances; refreshes that \
                       replace the same instances twice at once.",
            resolve: "Add `network = network.NAME`, raise `max_lifetime` to at least \"1d\", remove \
                      `instance_refresh` from a directly scaled worker type, or raise `max` (or \
                      lower the heaviest `capacity` weight) so that `max - (heaviest - 1)` is at \
                      least `min`. For a refresh in flight, wait until it ends and plan again.",
            overrides: None,
        },
        Code::Io => Explanation {
            title: "io: a file or directory could not be read",
            checks: "fleetform reads every `*.hcl` file of the configuration directory and the files \
                     that `file()`, `templatefile()` and `-var-file` name.",
            prevents: "Planning from half a configuration: a worker type in a file that could not be \
                       read would look removed, and its instances would be terminated.",
            resolve: "Check that the path exists and that you may read it; the message names the \
                      file and the system's error.",
            overrides: None,
        },
        Code::Encoding => Explanation {
            title: "encoding: a configuration file is not UTF-8",
            checks: "Every `*.hcl` file must be valid UTF-8.",
            prevents: "A configuration read differently from what its author saw in the editor.",
            resolve: "Save the file as UTF-8 (most editors offer it under 'encoding').",
            overrides: None,
        },
        Code::NoConfig => Explanation {
            title: "no-config: the directory holds no configuration",
            checks: "The directory given (or the current one) must contain at least one `*.hcl` file.",
            prevents: "Planning an empty configuration from a wrong directory: every object of the \
                       fleet would look removed.",
            resolve: "Pass the configuration directory as the last argument, or run fleetform from it.",
            overrides: None,
        },
        Code::Syntax => Explanation {
            title: "syntax: the HCL does not parse",
            checks: "Every file must be valid HCL. HCL allows at most one attribute in a block written \
                     on one line, so `capacity { min = 0  max = 10 }` is an error.",
            prevents: "Acting on a configuration that means something other than what it says.",
            resolve: "Fix the syntax at the place shown; write each attribute on its own line. The \
                      language is described in README.md.",
            overrides: None,
        },
        Code::UnknownBlock => Explanation {
            title: "unknown-block: a block type that the language does not have",
            checks: "Top-level blocks are `fleet`, `backend`, `variable`, `locals`, `key_pair`, \
                     `ami_set` and `worker_type`; each block allows only its own nested blocks.",
            prevents: "A misspelled block (`worker-type`, `capacty`) silently ignored: its worker type \
                       or bounds would not exist, and the plan would act without them.",
            resolve: "Correct the name; the message suggests the closest one.",
            overrides: None,
        },
        Code::UnknownAttribute => Explanation {
            title: "unknown-attribute: an attribute that the block does not have",
            checks: "Every attribute must be one its block defines.",
            prevents: "A misspelled setting silently ignored: `max_lifetim = \"96h\"` would leave \
                       workers running for ever, `markt = \"spot\"` would run them on demand.",
            resolve: "Correct the name; the message suggests the closest one.",
            overrides: None,
        },
        Code::Missing => Explanation {
            title: "missing: a required attribute or block is absent",
            checks: "Blocks must carry what they cannot do without, e.g. a `fleet` block, a worker \
                     type's `ami_set` and `capacity`, a key pair's `public_key`.",
            prevents: "fleetform guessing a value that decides what runs and what it costs.",
            resolve: "Add the attribute or block named in the message.",
            overrides: None,
        },
        Code::Duplicate => Explanation {
            title: "duplicate: a name or attribute is declared twice",
            checks: "Block names are unique per kind across all files, and each attribute appears \
                     once per block.",
            prevents: "Two definitions of one worker type where only one would take effect, depending \
                       on the order the files are read.",
            resolve: "Rename or remove one of the two; the message points at both.",
            overrides: None,
        },
        Code::Type => Explanation {
            title: "type: a value has the wrong type",
            checks: "Each attribute has a type (string, number, bool, list, map, duration, reference).",
            prevents: "A value read as something else than meant, e.g. a capacity given as a string.",
            resolve: "Give a value of the type the message names.",
            overrides: None,
        },
        Code::InvalidValue => Explanation {
            title: "invalid-value: a value is of the right type but not allowed",
            checks: "Values must be among those an attribute allows: `market` is `on-demand` or \
                     `spot`, durations use the units s m h d w, names start with a letter, tags \
                     may not start with `fleetform:`, and so on.",
            prevents: "A setting EC2 would refuse at apply time, or one that clashes with the tags \
                       fleetform uses to find its own objects.",
            resolve: "Use one of the values the message lists.",
            overrides: None,
        },
        Code::UndefinedReference => Explanation {
            title: "undefined-reference: a reference to something that is not declared",
            checks: "`var.NAME`, `local.NAME`, `ami_set.NAME` and `key_pair.NAME` must name a \
                     declared variable, local, AMI set or key pair.",
            prevents: "A worker type pointing at an AMI set or key pair that does not exist, which \
                       could not launch.",
            resolve: "Declare what is referenced, or correct the reference; the message suggests the \
                      closest name.",
            overrides: None,
        },
        Code::ReferenceCycle => Explanation {
            title: "reference-cycle: locals that depend on themselves",
            checks: "Locals may use each other in any order, as long as no chain of references comes \
                     back to where it started.",
            prevents: "A value that cannot be computed.",
            resolve: "Break the chain the message names.",
            overrides: None,
        },
        Code::VariableUnset => Explanation {
            title: "variable-unset: a variable with no value",
            checks: "Every declared variable needs a value: a `default`, `FLEETFORM_VAR_NAME` in the \
                     environment, a `-var-file`, or `-var NAME=VALUE`.",
            prevents: "Planning with an empty value where one was meant, e.g. user data without its \
                       token.",
            resolve: "Give the variable a value by one of those means, or a `default`.",
            overrides: None,
        },
        Code::VariableUndeclared => Explanation {
            title: "variable-undeclared: a value for a variable that is not declared",
            checks: "`-var` and `-var-file` may only set declared variables.",
            prevents: "A misspelled variable name whose value is silently dropped while the default \
                       is used instead.",
            resolve: "Declare the variable with a `variable` block, or correct its name.",
            overrides: None,
        },
        Code::Function => Explanation {
            title: "function: a function call failed",
            checks: "Functions get the arguments they expect, and paths given to `file` and \
                     `templatefile` exist and stay inside the configuration directory.",
            prevents: "User data or keys read from the wrong place, or from outside the reviewed \
                       configuration.",
            resolve: "Fix the call as the message says: the argument, the path, or the template \
                      variable.",
            overrides: None,
        },
        Code::CapacityRange => Explanation {
            title: "capacity-range: capacity bounds that cannot hold",
            checks: "`capacity.min` may not be above `max`, every instance type's `capacity` weight \
                     is at least 1, and some mix of the weights must land between min and max.",
            prevents: "Bounds no plan can meet, so every plan would either launch past max or stay \
                       below min for ever.",
            resolve: "Correct min, max or the weights so that they can be met.",
            overrides: None,
        },
        Code::Region => Explanation {
            title: "region: a region that is not one of the fleet's",
            checks: "Regions named by worker types, AMI sets and roll-outs must be among \
                     `fleet.regions`, and must be region names.",
            prevents: "A worker type planned in a region fleetform never reads, or never planned \
                       where it was meant to run.",
            resolve: "Add the region to `fleet.regions`, or correct its name.",
            overrides: None,
        },
        Code::Cloud => Explanation {
            title: "cloud: a call to AWS failed",
            checks: "fleetform could not connect to AWS or a call failed: credentials, network, \
                     permissions, or an endpoint that does not answer.",
            prevents: "Acting on what could not be read: the command stops instead.",
            resolve: "Check the credentials (`aws sts get-caller-identity` uses the same ones), the \
                      network, and `--endpoint-url` if you use a local endpoint; then run the \
                      command again.",
            overrides: None,
        },
        Code::PlanFile => Explanation {
            title: "plan-file: a saved plan that cannot be read",
            checks: "A plan file given to `show` or `apply` must be complete, undamaged and of a \
                     format this version of fleetform reads.",
            prevents: "Applying a truncated or altered plan, which would carry out only part of what \
                       was reviewed, or something else entirely.",
            resolve: "Run `fleetform plan -out FILE` again; a file written by a newer fleetform needs \
                      that version.",
            overrides: None,
        },
        Code::NotApplied => Explanation {
            title: "not-applied: nothing has been applied to this state yet",
            checks: "`fleetform output` prints what the latest recorded version of the state \
                     observed after its apply; the state must hold at least one version.",
            prevents: "Handing provisioners launch templates, subnets and groups that do not exist \
                       yet, or ids guessed from the configuration alone.",
            resolve: "Run `fleetform apply` on this configuration first (it records a version), or \
                      point the command at the directory whose state holds the fleet.",
            overrides: None,
        },
        Code::TooLarge => Explanation {
            title: "too-large: an expression that could grow past the evaluation limit",
            checks: "Before it is evaluated, every expression's size is bounded; one that could build \
                     a value past 16 MiB (deeply nested `for`s, repeated interpolation) is refused.",
            prevents: "A configuration that makes fleetform run out of memory on every CI runner that \
                       plans it.",
            resolve: "Simplify the expression: fewer nested `for`s or smaller inputs.",
            overrides: None,
        },
    }
}

/// The code `text` names, case-insensitively (`ff003`, `FF003`, `Unknown-Attribute`).
///
/// # Errors
/// An unknown code, with the closest known code if one is close enough.
pub fn parse_code(text: &str) -> Result<Code, Option<&'static str>> {
    let text = text.trim().to_ascii_lowercase();
    let known: Vec<(String, Code)> = Code::ALL
        .iter()
        .map(|code| (code.as_str().to_ascii_lowercase(), *code))
        .collect();
    if let Some((_, code)) = known.iter().find(|(name, _)| *name == text) {
        return Ok(*code);
    }
    let closest = did_you_mean(&text, known.iter().map(|(name, _)| name.as_str()));
    Err(closest.and_then(|name| {
        known
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, code)| code.as_str())
    }))
}

/// `FF001 image-in-use: ...` or `syntax: ...`: the code and its title.
fn heading(code: Code) -> String {
    let title = explanation(code).title;
    if title.starts_with(&format!("{code}: ")) {
        title.to_string()
    } else {
        format!("{code} {title}")
    }
}

/// The text `fleetform explain CODE` prints.
pub fn render(code: Code) -> String {
    let e = explanation(code);
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", heading(code));
    for (title, body) in [
        ("What it checks", e.checks),
        ("What it prevents", e.prevents),
        ("How to resolve it", e.resolve),
        ("Override", e.overrides.unwrap_or("None.")),
    ] {
        let _ = writeln!(out, "{title}\n{}\n", wrap(body, 80));
    }
    out
}

/// One line per code: what `fleetform explain` with no code prints.
pub fn index() -> String {
    let mut out = String::new();
    for code in Code::ALL {
        let _ = writeln!(out, "{}", heading(*code));
    }
    out
}

/// Wraps `text` at `width` columns, indented by two spaces.
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::from(" ");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > width && line.len() > 1 {
            lines.push(std::mem::replace(&mut line, String::from(" ")));
        }
        line.push(' ');
        line.push_str(word);
    }
    lines.push(line);
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_title_and_the_three_sections() {
        for code in Code::ALL {
            let e = explanation(*code);
            assert!(
                code.as_str().starts_with("FF") || e.title.starts_with(&format!("{code}: ")),
                "{code}: a configuration code's title starts with the code: {}",
                e.title
            );
            for (section, text) in [
                ("checks", e.checks),
                ("prevents", e.prevents),
                ("resolve", e.resolve),
            ] {
                assert!(
                    text.split_whitespace().count() >= 5,
                    "{code}: the `{section}` section says something: {text:?}"
                );
            }
            let rendered = render(*code);
            for heading in ["What it checks", "What it prevents", "How to resolve it"] {
                assert!(rendered.contains(heading), "{code}: {rendered}");
            }
        }
    }

    #[test]
    fn explanations_cite_no_internal_documents() {
        for code in Code::ALL {
            let rendered = render(*code).to_ascii_lowercase();
            // Spelt in two pieces so the scan of the binary's strings (tests/cli.rs) passes.
            for word in [concat!("se", "ed"), "design.md", "issue "] {
                assert!(
                    !rendered.contains(word),
                    "{code} mentions {word}: {rendered}"
                );
            }
        }
    }

    #[test]
    fn the_flags_that_override_a_check_are_named() {
        let blast = explanation(Code::BlastRadius).overrides.unwrap_or_default();
        for flag in [
            "--allow-destroy",
            "--max-launches N",
            "--max-terminations N",
        ] {
            assert!(blast.contains(flag), "{blast}");
        }
        let stale = explanation(Code::StalePlan).overrides.unwrap_or_default();
        assert!(stale.contains("plan again"), "{stale}");
    }

    #[test]
    fn codes_are_found_whatever_their_case() {
        assert_eq!(parse_code("ff003"), Ok(Code::ImageCompat));
        assert_eq!(parse_code("FF003"), Ok(Code::ImageCompat));
        assert_eq!(parse_code("Unknown-Attribute"), Ok(Code::UnknownAttribute));
        assert_eq!(
            parse_code("unknown-atribute"),
            Err(Some("unknown-attribute"))
        );
        assert_eq!(parse_code("zzzzzz"), Err(None));
    }

    #[test]
    fn the_index_has_one_line_per_code() {
        let index = index();
        assert_eq!(index.lines().count(), Code::ALL.len());
        for code in Code::ALL {
            assert!(
                index.lines().any(|l| l.starts_with(code.as_str())),
                "{code} missing from the index"
            );
        }
    }
}
