//! `fleetform import`: discover a fleet made by hand and write its
//! configuration (the discovery is `fleetform_aws::discover`, the HCL
//! `fleetform_engine::import`); the plan of that configuration adopts it.

use clap::Args;
use fleetform_aws::AwsProvider;
use fleetform_engine::diagnostic::{render_human, Code, Diagnostic};
use fleetform_engine::import::{ImportOptions, Written};
use fleetform_engine::provider::{DiscoverRequest, Provider};
use fleetform_engine::source::SourceSet;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Args)]
#[command(group(
    clap::ArgGroup::new("match").required(true).multiple(true).args(["name_prefix", "filter"])
))]
pub(crate) struct ImportArgs {
    /// Configuration directory to write into (created if missing; files in it are never overwritten)
    #[arg(default_value = ".")]
    dir: PathBuf,

    /// A region to read (repeatable)
    #[arg(long = "region", value_name = "REGION", required = true)]
    regions: Vec<String>,

    /// Import the launch templates whose name starts with this
    #[arg(long, value_name = "PREFIX")]
    name_prefix: Option<String>,

    /// Import the launch templates carrying this tag: tag:KEY=VALUE (repeatable; all must hold)
    #[arg(long, value_name = "tag:KEY=VALUE")]
    filter: Vec<String>,

    /// The fleet's name, when DIR has no fleet block yet (default: the name of DIR)
    #[arg(long, value_name = "NAME")]
    fleet: Option<String>,

    /// Print what would be written (user data only as its file name and size); write nothing
    #[arg(long)]
    dry_run: bool,
}

fn fail(diagnostic: Diagnostic, color: bool) -> u8 {
    eprint!(
        "{}",
        render_human(&[diagnostic], &SourceSet::default(), color)
    );
    1
}

fn tag_filters(filters: &[String]) -> Result<Vec<(String, String)>, Diagnostic> {
    filters
        .iter()
        .map(|f| {
            f.strip_prefix("tag:")
                .and_then(|rest| rest.split_once('='))
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!("--filter `{f}` is not of the form tag:KEY=VALUE"),
                    )
                    .help(
                        "e.g. --filter tag:team=ci (repeat --filter for more tags; all must hold)",
                    )
                })
        })
        .collect()
}

/// The fleet name and regions an existing configuration in `dir` fixes, and
/// the labels it declares; `None` when `dir` holds no `*.hcl` file.
struct Existing {
    fleet: String,
    regions: Vec<String>,
    taken: BTreeSet<(String, String)>,
}

fn existing(dir: &Path, color: bool) -> Result<Option<Existing>, u8> {
    let has_hcl = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.path().extension().is_some_and(|x| x == "hcl"))
        })
        .unwrap_or(false);
    if !has_hcl {
        return Ok(None);
    }
    let loaded = fleetform_engine::load_dir(dir, &fleetform_engine::Inputs::default());
    let Some(config) = &loaded.config else {
        eprint!(
            "{}",
            render_human(&loaded.diagnostics, &loaded.sources, color)
        );
        eprintln!(
            "fleetform: {} holds a configuration with errors; fix it (fleetform validate) before importing into it",
            dir.display()
        );
        return Err(1);
    };
    let mut taken = BTreeSet::new();
    for (kind, names) in [
        (
            "worker_type",
            config.worker_types.keys().collect::<Vec<_>>(),
        ),
        ("ami_set", config.ami_sets.keys().collect()),
        ("key_pair", config.key_pairs.keys().collect()),
        ("network", config.networks.keys().collect()),
    ] {
        for name in names {
            taken.insert((kind.to_string(), name.clone()));
        }
    }
    Ok(Some(Existing {
        fleet: config.fleet.name.clone(),
        regions: config.fleet.regions.clone(),
        taken,
    }))
}

pub(crate) fn run(args: &ImportArgs, endpoint_url: Option<String>, color: bool) -> u8 {
    let tags = match tag_filters(&args.filter) {
        Ok(t) => t,
        Err(d) => return fail(d, color),
    };
    let existing = match existing(&args.dir, color) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let fleet =
        match (&existing, &args.fleet) {
            (Some(e), Some(asked)) if &e.fleet != asked => return fail(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!(
                        "--fleet {asked}: {} already declares fleet \"{}\"",
                        args.dir.display(),
                        e.fleet
                    ),
                )
                .help(
                    "leave --fleet out to import into that fleet, or import into another directory",
                ),
                color,
            ),
            (Some(e), _) => e.fleet.clone(),
            (None, Some(asked)) => asked.clone(),
            (None, None) => {
                let dir = std::fs::canonicalize(&args.dir).unwrap_or_else(|_| args.dir.clone());
                match dir.file_name().and_then(|n| n.to_str()) {
                    Some(name) if !name.is_empty() => name.to_string(),
                    _ => {
                        return fail(
                            Diagnostic::error(
                                Code::InvalidValue,
                                format!("{} has no name to call the fleet by", args.dir.display()),
                            )
                            .help("pass --fleet NAME"),
                            color,
                        )
                    }
                }
            }
        };
    if existing.is_none() && !fleetform_engine::import::valid_label(&fleet) {
        return fail(
            Diagnostic::error(
                Code::InvalidValue,
                format!("`{fleet}` is not a valid fleet name"),
            )
            .help("names start with a letter and use letters, digits, `-` and `_` (at most 64); pass --fleet NAME"),
            color,
        );
    }
    if let Some(e) = &existing {
        let missing: Vec<&String> = args
            .regions
            .iter()
            .filter(|r| !e.regions.contains(r))
            .collect();
        if !missing.is_empty() {
            return fail(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!(
                        "fleet \"{}\" in {} does not run in {}",
                        e.fleet,
                        args.dir.display(),
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .help("add the regions to the fleet block's `regions` first, then import again"),
                color,
            );
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetform: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let request = DiscoverRequest {
        regions: args.regions.clone(),
        name_prefix: args.name_prefix.clone(),
        tags,
    };
    let found = runtime.block_on(async {
        let provider = AwsProvider::connect(&crate::cloud::connect_options(endpoint_url))
            .await
            .map_err(|e| {
                Diagnostic::error(Code::Cloud, format!("cannot connect to AWS: {e}"))
                    .help("for the local EC2 endpoint pass --endpoint-url (see scripts/dev-ec2)")
            })?;
        provider.caller().await.map_err(|e| {
            Diagnostic::error(
                Code::Cloud,
                format!("cannot identify the caller (STS GetCallerIdentity): {e}"),
            )
            .help("check the credentials and that the endpoint answers")
        })?;
        fleetform_aws::discover::discover(&provider, &request)
            .await
            .map_err(|(region, cause)| {
                Diagnostic::error(
                    Code::Cloud,
                    format!("cannot read {region} completely: {cause}"),
                )
                .help("nothing was written: a partial read is never imported; run import again once EC2 answers")
            })
    });
    let found = match found {
        Ok(f) => f,
        Err(d) => return fail(d, color),
    };
    let templates: usize = found.values().map(|r| r.templates.len()).sum();
    if templates == 0 {
        return fail(
            Diagnostic::error(
                Code::InvalidValue,
                format!(
                    "no launch template without the fleetform:fleet tag matches in {}",
                    args.regions.join(", ")
                ),
            )
            .help("check --name-prefix / --filter and --region; templates fleetform manages already are never imported"),
            color,
        );
    }
    let write_fleet = existing.is_none();
    let written = fleetform_engine::import::write(
        &found,
        &ImportOptions {
            fleet: fleet.clone(),
            regions: args.regions.clone(),
            write_fleet,
            taken: existing.map(|e| e.taken).unwrap_or_default(),
        },
    );
    // Refuse before writing anything.
    let clashes: Vec<String> = written
        .files
        .keys()
        .filter(|path| args.dir.join(path).exists())
        .cloned()
        .collect();
    if !clashes.is_empty() {
        return fail(
            Diagnostic::error(
                Code::Io,
                format!(
                    "{} already holds {}; nothing was written",
                    args.dir.display(),
                    clashes.join(", ")
                ),
            )
            .help("import never overwrites a file: move those files away, or import into another directory"),
            color,
        );
    }
    let fleet_note = if !write_fleet {
        "declared in the directory"
    } else if args.fleet.is_some() {
        "from --fleet"
    } else {
        "the directory's name"
    };
    if args.dry_run {
        print_dry_run(&written, &args.dir);
        print_summary(&written, &fleet, fleet_note, &args.dir, true);
        return 0;
    }
    if let Err(e) = write_all(&args.dir, &written) {
        return fail(
            Diagnostic::error(
                Code::Io,
                format!("cannot write into {}: {e}", args.dir.display()),
            )
            .help("check the directory's permissions; files already written are listed above"),
            color,
        );
    }
    print_summary(&written, &fleet, fleet_note, &args.dir, false);
    // What was written must load with what was there: say so now, not at plan.
    let loaded = fleetform_engine::load_dir(&args.dir, &fleetform_engine::Inputs::default());
    if loaded.config.is_none() {
        eprint!(
            "{}",
            render_human(&loaded.diagnostics, &loaded.sources, color)
        );
        eprintln!(
            "fleetform: the configuration in {} does not validate with the imported files; fix what is shown above before planning",
            args.dir.display()
        );
        return 1;
    }
    0
}

fn print_dry_run(written: &Written, dir: &Path) {
    for (path, contents) in &written.files {
        if path.ends_with(".hcl") {
            println!("# {}", dir.join(path).display());
            print!("{contents}");
            println!();
        } else {
            println!(
                "# {} ({} bytes, not shown: user data may hold secrets)",
                dir.join(path).display(),
                contents.len()
            );
        }
    }
}

fn print_summary(written: &Written, fleet: &str, fleet_note: &str, dir: &Path, dry: bool) {
    let verb = if dry { "would write" } else { "wrote" };
    eprintln!(
        "fleetform: {verb} {} file{} into {} for fleet \"{fleet}\" ({fleet_note}): {} worker type{}",
        written.files.len(),
        crate::plural(written.files.len()),
        dir.display(),
        written.worker_types.len(),
        crate::plural(written.worker_types.len()),
    );
    for (label, template) in &written.worker_types {
        eprintln!("  worker_type.{label} <- launch template {template}");
    }
    if !written.notes.is_empty() {
        eprintln!(
            "not expressed in the configuration ({}):",
            written.notes.len()
        );
        for note in &written.notes {
            eprintln!("  {}: {}: {}", note.object, note.setting, note.reason);
        }
    }
    if !dry {
        eprintln!(
            "next: fleetform plan {} (it adopts these objects: tags them, nothing else)",
            dir.display()
        );
    }
}

/// Writes every file, each created new (an existing one fails, never overwritten).
fn write_all(dir: &Path, written: &Written) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    for (path, contents) in &written.files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
    }
    Ok(())
}
