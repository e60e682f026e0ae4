//! The engine alone, no cloud: load + evaluate + diff + checks + render of a
//! configuration against an observation, timed in-process. Prints one JSON
//! line with the medians of each part and the peak memory of the process.
//!
//! `cargo run --release -p fleetform-engine --example engine_bench -- DIR [--observation FILE | --synthesize FILE] [--runs R]`
//!
//! With `--observation`, the observation is read from FILE: one recorded from
//! EC2 (see the `observe_record` example of fleetform-aws) or one written by
//! `--synthesize`. Without it, the observation is synthesized: the fleet as a
//! converged apply leaves it (every key pair, launch template and minimum
//! instance the plan from empty would create, and the configured images), so
//! the plan against it must be a no-op; the bench says so if it is not.
//! `--synthesize FILE` writes that observation to FILE and stops.
//! `--heap` also counts the bytes the heap holds and prints the peak of each
//! part of the last run (`heap_*_mb`: what the engine holds at most, beside
//! the observation; off by default, as counting costs a little time).
//! `--load-only` times the load alone (median of the runs), for profiling it.

use fleetform_engine::model::{Config, Virtualization};
use fleetform_engine::plan::{self, render, ActionKind, PlanOptions, Resource};
use fleetform_engine::provider::{
    LaunchTemplateData, Observation, Observed, ObservedImage, ObservedInstance, ObservedKeyPair,
    ObservedLaunchTemplate, ObservedSecurityGroup, ObservedSubnet, Offering, RegionObservation,
};
use fleetform_engine::Inputs;
use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The allocator of the `fleetform` binary (mimalloc), counting the bytes
/// held (and their peak) while `COUNTING` is on.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let held = HELD.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(held, Ordering::Relaxed);
            } else {
                HELD.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes in MiB.
fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let mut dir = None;
    let mut recorded: Option<PathBuf> = None;
    let mut runs = 7usize;
    let mut synthesize: Option<PathBuf> = None;
    let mut heap = false;
    let mut load_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--observation" => recorded = args.next().map(PathBuf::from),
            "--synthesize" => synthesize = args.next().map(PathBuf::from),
            "--heap" => heap = true,
            "--load-only" => load_only = true,
            "--runs" => runs = args.next().and_then(|r| r.parse().ok()).unwrap_or(runs),
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: engine_bench DIR [--observation FILE | --synthesize FILE] [--runs R] [--heap] [--load-only]");
        std::process::exit(2);
    };
    let inputs = Inputs::default();
    if load_only {
        // Only the load, timed in a loop: to profile it alone.
        let mut times: Vec<Duration> = (0..runs.max(1))
            .map(|_| {
                let start = Instant::now();
                let loaded = fleetform_engine::load_dir(&dir, &inputs);
                let took = start.elapsed();
                drop(loaded);
                took
            })
            .collect();
        println!("{{\"load_ms\":{:.2}}}", median(&mut times));
        return;
    }
    let now = unix_now();
    let load_valid = || {
        let loaded = fleetform_engine::load_dir(&dir, &inputs);
        match loaded.config {
            Some(config) if !loaded.diagnostics.iter().any(|d| d.is_error()) => config,
            _ => {
                eprintln!("{} is not valid; run `fleetform validate`", dir.display());
                std::process::exit(1);
            }
        }
    };
    let (observation, source) = match &recorded {
        Some(path) => {
            let text = std::fs::read(path).unwrap_or_else(|e| {
                eprintln!("cannot read {}: {e}", path.display());
                std::process::exit(1);
            });
            match serde_json::from_slice::<Observation>(&text) {
                Ok(o) => (o, "file"),
                Err(e) => {
                    eprintln!("{} is not an observation: {e}", path.display());
                    std::process::exit(1);
                }
            }
        }
        None => (converged(&load_valid(), now), "synthesized"),
    };
    if let Some(path) = synthesize {
        // Written for a later run in a fresh process, whose peak memory is
        // then the engine's and the observation's, not the synthesis's.
        let written = serde_json::to_vec(&observation)
            .map_err(|e| e.to_string())
            .and_then(|bytes| std::fs::write(&path, bytes).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        return;
    }
    // From here on the peak is what the engine holds and makes: the
    // observation as a plan process has it, one config, one plan. (Linux:
    // writing 5 to clear_refs resets VmHWM to the current resident size.)
    // mimalloc keeps freed pages for a while; the observation's file and
    // its parse are freed, and a plan process never holds them (the system
    // allocator returns such large blocks at once).
    // SAFETY: a plain call into mimalloc, which is the global allocator.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let observation_rss_mb = proc_status_mb("VmRSS:");

    let options = PlanOptions {
        now,
        ..PlanOptions::default()
    };
    let (mut load, mut build, mut render_t, mut total) = (vec![], vec![], vec![], vec![]);
    let mut actions = 0;
    let mut output_bytes = 0;
    let mut findings = 0;
    let mut first_finding: Option<String> = None;
    let (mut worker_types, mut slots) = (0, 0);
    // Peak bytes held beyond what was held before the run: while loading,
    // while planning (with the config held), and at the end (config, plan
    // and output).
    let (mut heap_load, mut heap_plan, mut heap_after) = (0, 0, 0);
    if heap {
        COUNTING.store(true, Ordering::Relaxed);
    }
    for _ in 0..runs.max(1) {
        let base = HELD.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let start = Instant::now();
        let loaded = fleetform_engine::load_dir(&dir, &inputs);
        let loaded_at = start.elapsed();
        heap_load = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        PEAK.store(HELD.load(Ordering::Relaxed), Ordering::Relaxed);
        let Some(config) = loaded.config.as_ref() else {
            std::process::exit(1);
        };
        worker_types = config.worker_types.len();
        slots = config.worker_types.values().map(|w| w.regions.len()).sum();
        let (plan, diagnostics) = plan::build(config, &observation, &options);
        let built_at = start.elapsed();
        heap_plan = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        findings = diagnostics.len();
        first_finding = diagnostics.first().map(|d| d.message.clone());
        let human = render::human(&plan, false);
        let json = serde_json::to_string(&plan).unwrap_or_default();
        let diags =
            fleetform_engine::diagnostic::render_human(&diagnostics, &loaded.sources, false);
        let done = start.elapsed();
        heap_after = HELD.load(Ordering::Relaxed).saturating_sub(base);
        output_bytes = human.len() + json.len() + diags.len();
        actions = plan.actions.len();
        load.push(loaded_at);
        build.push(built_at - loaded_at);
        render_t.push(done - built_at);
        total.push(done);
    }
    let instances: usize = observation
        .regions
        .values()
        .filter_map(|r| r.instances.complete())
        .map(Vec::len)
        .sum();
    let heap_figures = if heap {
        format!(
            ",\"heap_load_mb\":{:.1},\"heap_plan_mb\":{:.1},\"heap_held_mb\":{:.1}",
            mib(heap_load),
            mib(heap_plan),
            mib(heap_after)
        )
    } else {
        String::new()
    };
    println!(
        "{{\"worker_types\":{},\"slots\":{slots},\"instances\":{instances},\"observation\":\"{source}\",\"actions\":{actions},\"output_bytes\":{output_bytes},\"runs\":{},\"load_ms\":{:.2},\"build_ms\":{:.2},\"render_ms\":{:.2},\"total_ms\":{:.2},\"peak_rss_mb\":{:.1},\"observation_rss_mb\":{observation_rss_mb:.1}{heap_figures}}}",
        worker_types,
        total.len(),
        median(&mut load),
        median(&mut build),
        median(&mut render_t),
        median(&mut total),
        proc_status_mb("VmHWM:"),
    );
    if actions != 0 {
        eprintln!("warning: the plan against this observation is not a no-op: {actions} actions");
    }
    if let Some(first) = first_finding {
        eprintln!("note: the plan has {findings} findings; the first: {first}");
    }
}

fn median(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A memory figure of this process from /proc/self/status (`VmHWM:` is the
/// peak resident size, `VmRSS:` the current one), in MiB; 0 where unknown.
fn proc_status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The observation a converged apply of `config` leaves: the plan from an
/// empty fleet, carried out on paper.
fn converged(config: &Config, now: i64) -> Observation {
    let mut regions: BTreeMap<String, RegionObservation> = BTreeMap::new();
    let empty = |images: Vec<ObservedImage>| RegionObservation {
        key_pairs: Observed::Complete { items: vec![] },
        images: Observed::Complete { items: images },
        launch_templates: Observed::Complete { items: vec![] },
        instances: Observed::Complete { items: vec![] },
        subnets: Observed::nothing(),
        security_groups: Observed::nothing(),
        offerings: Observed::nothing(),
        // A converged fleet of launch templates has no Auto Scaling group.
        auto_scaling_groups: Observed::Complete { items: vec![] },
        adoptable: Observed::nothing(),
    };
    for region in &config.fleet.regions {
        let images = config
            .ami_sets
            .values()
            .filter_map(|set| {
                let id = set.images.get(region)?;
                Some(ObservedImage {
                    id: id.clone(),
                    name: format!("{}-image", set.name),
                    state: "available".into(),
                    virtualization: match set.virtualization {
                        Virtualization::Pv => "paravirtual".into(),
                        Virtualization::Hvm => "hvm".into(),
                    },
                    architecture: set.architecture.to_string(),
                    creation_date: "2026-01-01T00:00:00.000Z".into(),
                    owner: "123456789012".into(),
                    snapshot_ids: vec![],
                    tags: BTreeMap::new(),
                    root_device_name: Some("/dev/xvda".into()),
                })
            })
            .collect();
        let mut observed = empty(images);
        // What EC2 holds of the networks the fleet names, as ObserveRequest
        // asks for them: every subnet in its zone, every group in one VPC,
        // every instance type offered in every zone named.
        let request = fleetform_engine::provider::ObserveRequest::for_config(config);
        let zones: Vec<(String, String)> = config
            .networks
            .values()
            .flat_map(|n| n.subnets_in(region))
            .map(|(zone, id)| (zone.to_string(), id.to_string()))
            .collect();
        observed.subnets = Observed::Complete {
            items: zones
                .iter()
                .map(|(zone, id)| ObservedSubnet {
                    id: id.clone(),
                    zone: zone.clone(),
                    vpc_id: "vpc-0bench".into(),
                })
                .collect(),
        };
        observed.security_groups = Observed::Complete {
            items: request
                .security_group_ids
                .get(region)
                .into_iter()
                .flatten()
                .map(|id| ObservedSecurityGroup {
                    id: id.clone(),
                    name: id.clone(),
                    vpc_id: "vpc-0bench".into(),
                })
                .collect(),
        };
        observed.offerings = Observed::Complete {
            items: request
                .instance_types
                .get(region)
                .into_iter()
                .flatten()
                .flat_map(|t| {
                    zones.iter().map(move |(zone, _)| Offering {
                        instance_type: t.clone(),
                        zone: zone.clone(),
                    })
                })
                .collect(),
        };
        regions.insert(region.clone(), observed);
    }
    let start = Observation {
        regions: regions.clone(),
        api_calls: 0,
    };
    let options = PlanOptions {
        now,
        max_launches: Some(u32::MAX),
        ..PlanOptions::default()
    };
    let (from_empty, _) = plan::build(config, &start, &options);
    let mut next_id = 0u64;
    let mut id = |prefix: &str| {
        next_id += 1;
        format!("{prefix}-{next_id:017x}")
    };
    let mut templates: BTreeMap<(String, String), (String, LaunchTemplateData)> = BTreeMap::new();
    for action in &from_empty.actions {
        let Some(region) = regions.get_mut(&action.region) else {
            continue;
        };
        match (action.action, action.resource) {
            (ActionKind::Create, Resource::KeyPair) => {
                if let Observed::Complete { items } = &mut region.key_pairs {
                    items.push(ObservedKeyPair {
                        name: action.name.clone().unwrap_or_default(),
                        id: id("key"),
                        fingerprint: String::new(),
                        tags: action.tags.clone().into(),
                    });
                }
            }
            (ActionKind::Create, Resource::LaunchTemplate) => {
                let lt = id("lt");
                let data = action.launch_template.clone().unwrap_or_default();
                templates.insert(
                    (action.address.clone(), action.region.clone()),
                    (lt.clone(), data.clone()),
                );
                if let Observed::Complete { items } = &mut region.launch_templates {
                    items.push(ObservedLaunchTemplate {
                        id: lt,
                        name: action.name.clone().unwrap_or_default(),
                        default_version: 1,
                        latest_version: 1,
                        default_data: Some(data),
                        tags: action.tags.clone().into(),
                    });
                }
            }
            _ => {}
        }
    }
    for action in &from_empty.actions {
        if action.action != ActionKind::Launch {
            continue;
        }
        let Some((lt, data)) = templates.get(&(action.address.clone(), action.region.clone()))
        else {
            continue;
        };
        let Some(Observed::Complete { items }) =
            regions.get_mut(&action.region).map(|r| &mut r.instances)
        else {
            continue;
        };
        // Where the launch goes: its split over zones, or one type anywhere.
        let parts: Vec<(Option<String>, Option<String>, String, u32)> = match &action.placement {
            Some(placement) => placement
                .split
                .iter()
                .map(|p| {
                    (
                        p.zone.clone(),
                        p.subnet_id.clone(),
                        p.instance_type.clone(),
                        p.count,
                    )
                })
                .collect(),
            None => vec![(
                None,
                None,
                action.instance_type.clone().unwrap_or_default(),
                action.count.unwrap_or(0),
            )],
        };
        for (zone, subnet_id, instance_type, count) in parts {
            for _ in 0..count {
                items.push(ObservedInstance {
                    id: id("i"),
                    state: "running".into(),
                    instance_type: instance_type.clone(),
                    launch_time: now - 3600,
                    image_id: data.image_id.clone().unwrap_or_default(),
                    key_name: data.key_name.clone(),
                    launch_template: Some((lt.clone(), "1".into())),
                    tags: data.instance_tags.clone(),
                    zone: zone.clone(),
                    subnet_id: subnet_id.clone(),
                });
            }
        }
    }
    Observation {
        regions,
        api_calls: 0,
    }
}
