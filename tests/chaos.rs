//! Chaos: fleetform against the local EC2 endpoint through a seeded fault
//! proxy (throttling, 500, 503, reset connections, answers past the client
//! timeout, pages cut short), killed with SIGKILL at chosen requests, and
//! raced against itself on one state. Every test is bounded in count and
//! time, runs on loopback only, and prints its figures (`-- --nocapture`);
//! RELIABILITY.md quotes them.

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::inventory::{Object as Entry, ObjectKind};
use fleetform_engine::provider::{ObserveRequest, Provider};
use fleetform_state::{Backend, JournalRecord, LocalBackend};
use fleetform_test_support::fault::{
    first_change, Chaos, FaultClass, FaultProxy, HoldingProxy, Rule, Tripwire,
};
use fleetform_test_support::process::{stderr_of, wait_bounded};
use fleetform_test_support::{endpoint, unique_fleet};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy one";

const REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

/// Pages of 5 items, so that a handful of worker types spans several pages
/// and a dropped NextToken can hide something.
const PAGE_SIZE: &str = "5";

/// Seconds per call attempt: short, so that an answer held past it (the
/// Delay fault, 3 s) times out quickly.
const CALL_TIMEOUT: &str = "2";

/// One worker type: name, capacity min and max, user data.
#[derive(Clone)]
struct Worker {
    name: String,
    min: u32,
    max: u32,
    user_data: String,
}

fn workers(count: usize, min: u32, max: u32) -> Vec<Worker> {
    (0..count)
        .map(|n| Worker {
            name: format!("w{n}"),
            min,
            max,
            user_data: "v1".into(),
        })
        .collect()
}

fn write_fleet(dir: &Path, fleet: &str, workers: &[Worker]) {
    let regions: Vec<String> = REGIONS.iter().map(|r| format!("\"{r}\"")).collect();
    let images: String = REGIONS
        .iter()
        .map(|r| format!("    \"{r}\" = \"ami-785db401\"\n"))
        .collect();
    let mut hcl = format!(
        "fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [{}]\n  limits {{\n    max_launches     = 1000\n    max_terminations = 1000\n  }}\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n{images}  }}\n}}\n",
        regions.join(", ")
    );
    for w in workers {
        hcl.push_str(&format!(
            "\nworker_type \"{}\" {{\n  ami_set   = ami_set.linux\n  key_pair  = key_pair.workers\n  user_data = \"{}\"\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = {}\n    max = {}\n  }}\n}}\n",
            w.name, w.user_data, w.min, w.max
        ));
    }
    std::fs::write(dir.join("fleet.hcl"), hcl).expect("write config");
    std::fs::write(dir.join("workers.pub"), KEY).expect("write key");
}

fn new_fleet(prefix: &str, workers: &[Worker]) -> (TempDir, String) {
    let fleet = unique_fleet(prefix);
    let dir = tempfile::tempdir().expect("tempdir");
    write_fleet(dir.path(), &fleet, workers);
    (dir, fleet)
}

fn command(args: &[&str], dir: &Path, via: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetform"));
    command
        .args(args)
        .arg("--no-color")
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", via)
        .env("FLEETFORM_EC2_PAGE_SIZE", PAGE_SIZE)
        .env("FLEETFORM_CALL_TIMEOUT", CALL_TIMEOUT)
        .stdin(Stdio::null());
    command
}

fn fleetform(args: &[&str], dir: &Path, via: &str) -> Output {
    command(args, dir, via).output().expect("runs")
}

fn spawn(args: &[&str], dir: &Path, via: &str, env: &[(&str, &str)]) -> Child {
    let mut command = command(args, dir, via);
    for (k, v) in env {
        command.env(k, v);
    }
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Exit 0 or 1 with a message, never a crash.
fn assert_clean(out: &Output, what: &str) {
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "{what}: exit {code:?}\n{}",
        text(out)
    );
    assert!(!text(out).contains("panicked"), "{what}: {}", text(out));
}

fn apply_directly(dir: &Path) {
    let out = fleetform(&["apply", "--auto-approve"], dir, endpoint());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn assert_no_op(dir: &Path) {
    let out = fleetform(&["plan", "--detailed-exitcode"], dir, endpoint());
    assert_eq!(out.status.code(), Some(0), "converged: {}", text(&out));
}

/// What EC2 holds for the fleet of `dir`, as inventory entries (every read complete).
fn live_objects(dir: &Path) -> Vec<Entry> {
    let loaded = fleetform_engine::load_dir(dir, &fleetform_engine::Inputs::default());
    let config = loaded.config.expect("valid config");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let observation = runtime.block_on(async {
        let provider = AwsProvider::connect(&ConnectOptions {
            endpoint_url: Some(endpoint().to_string()),
            ..ConnectOptions::default()
        })
        .await
        .expect("connects");
        provider.observe(&ObserveRequest::for_config(&config)).await
    });
    let (entries, incomplete) = fleetform_engine::inventory::entries(&config, &observation);
    assert!(incomplete.is_empty(), "{incomplete:?}");
    entries
        .into_iter()
        .filter(|e| e.kind != ObjectKind::Image)
        .collect()
}

/// Instances per (worker type, region).
type Counts = BTreeMap<(String, String), usize>;

/// The fleet in EC2 is exactly the config: one key pair and one launch
/// template per region, and per worker type and region the count it had
/// before (`before`) brought within its bounds: nothing launched twice,
/// nothing terminated that should stay. Every object is recorded in the
/// latest state version. Returns the instance counts.
fn assert_exactly(dir: &Path, workers: &[Worker], before: &Counts) -> Counts {
    let live = live_objects(dir);
    let mut counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for e in &live {
        assert!(e.managed, "only fleetform's objects: {e:?}");
        // Addresses carry the region for per-region objects: worker_type.w0["us-east-1"].
        let base = e
            .address
            .split('[')
            .next()
            .unwrap_or(&e.address)
            .to_string();
        *counts
            .entry((e.kind.as_str().to_string(), base, e.region.clone()))
            .or_default() += 1;
    }
    let mut now = Counts::new();
    for region in REGIONS {
        let key = ("key_pair".into(), "key_pair.workers".into(), region.into());
        assert_eq!(counts.remove(&key), Some(1), "key pair in {region}");
        for w in workers {
            let address = format!("worker_type.{}", w.name);
            let template = ("launch_template".into(), address.clone(), region.into());
            assert_eq!(
                counts.remove(&template),
                Some(1),
                "{address} template in {region}"
            );
            let instances = ("instance".into(), address.clone(), region.into());
            let found = counts.remove(&instances).unwrap_or(0);
            let had = before
                .get(&(w.name.clone(), region.to_string()))
                .copied()
                .unwrap_or(0);
            let want = had.clamp(w.min as usize, w.max as usize);
            assert_eq!(
                found, want,
                "{address} instances in {region}: had {had}, bounds {}..={}: none launched twice, none lost",
                w.min, w.max
            );
            now.insert((w.name.clone(), region.to_string()), found);
        }
    }
    assert!(counts.is_empty(), "nothing else exists: {counts:?}");
    let store = LocalBackend::new(dir.join(".fleetform"));
    let latest = store.latest().expect("state").expect("a version");
    let recorded: Vec<Entry> =
        serde_json::from_value(store.read(latest).expect("version").observed).expect("entries");
    let recorded: BTreeSet<&str> = recorded.iter().map(|e| e.id.as_str()).collect();
    for e in &live {
        assert!(
            recorded.contains(e.id.as_str()),
            "{} {} is in state",
            e.kind,
            e.id
        );
    }
    now
}

/// An action of a plan as compared across plans.
type ActionKey = (String, String, String, String, u64);

fn action_keys(json: &serde_json::Value) -> BTreeSet<ActionKey> {
    json["actions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                a["region"].as_str().unwrap_or_default().to_string(),
                a["address"].as_str().unwrap_or_default().to_string(),
                a["action"].as_str().unwrap_or_default().to_string(),
                a["reason"].as_str().unwrap_or_default().to_string(),
                a["count"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn plan_under_every_fault_class_is_right_or_blind_where_it_could_not_see() {
    let mut fleet_workers = workers(7, 2, 3);
    let (dir, fleet) = new_fleet("chaos-plan", &fleet_workers);
    apply_directly(dir.path());
    // Something of every kind to plan: a launch, a termination, a template update.
    fleet_workers[0].min = 3;
    fleet_workers[1].min = 1;
    fleet_workers[1].max = 1;
    fleet_workers[2].user_data = "v2".into();
    write_fleet(dir.path(), &fleet, &fleet_workers);
    let baseline_out = fleetform(&["plan", "--json"], dir.path(), endpoint());
    let baseline: serde_json::Value =
        serde_json::from_slice(&baseline_out.stdout).expect("baseline json");
    let baseline = action_keys(&baseline);
    for region in REGIONS {
        for (address, action) in [
            ("worker_type.w0", "launch"),
            ("worker_type.w1", "terminate"),
            ("worker_type.w2", "update"),
        ] {
            assert!(
                baseline
                    .iter()
                    .any(|k| k.0 == region && k.1 == address && k.2 == action),
                "baseline has {action} {address} in {region}: {baseline:?}"
            );
        }
    }

    let (mut plans, mut right, mut blind, mut failed) = (0, 0, 0, 0);
    let mut injected: BTreeMap<FaultClass, usize> = BTreeMap::new();
    for class in FaultClass::ALL {
        for seed in 0..3u64 {
            let proxy =
                FaultProxy::chaos(endpoint(), Chaos::new(seed, 0.3, &[class])).expect("proxy");
            let out = fleetform(&["plan", "--json"], dir.path(), &proxy.url);
            plans += 1;
            for (c, n) in proxy.tally() {
                *injected.entry(c).or_default() += n;
            }
            let what = format!("{class:?} seed {seed}");
            assert_clean(&out, &what);
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
                // No plan at all (e.g. the caller could not be identified): a clean failure.
                assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
                failed += 1;
                continue;
            };
            let keys = action_keys(&json);
            let blind_regions: BTreeSet<String> = json["incomplete"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i["region"].as_str().map(str::to_string))
                .collect();
            for key in &keys {
                assert!(
                    baseline.contains(key),
                    "{what}: an action the fault-free plan does not have: {key:?}\n{}",
                    text(&out)
                );
                if blind_regions.contains(&key.0) {
                    assert!(
                        key.2 != "launch" && key.2 != "terminate",
                        "{what}: FF005: no launches/terminations in a region not fully read: {key:?}"
                    );
                }
            }
            for key in &baseline {
                if !blind_regions.contains(&key.0) {
                    assert!(
                        keys.contains(key),
                        "{what}: fully read region {} lacks {key:?}\n{}",
                        key.0,
                        text(&out)
                    );
                }
            }
            if blind_regions.is_empty() {
                right += 1;
            } else {
                let codes = json["diagnostics"].to_string();
                assert!(codes.contains("FF005"), "{what}: says why: {codes}");
                blind += 1;
            }
        }
    }
    println!(
        "chaos plan: {plans} plans, faults injected {injected:?}; {right} exactly right, {blind} with blind regions, {failed} refused; 0 wrong"
    );
    for class in FaultClass::ALL {
        assert!(
            injected.get(&class).copied().unwrap_or(0) > 0,
            "{class:?} was injected at least once: {injected:?}"
        );
    }
}

#[test]
fn apply_with_a_tenth_of_calls_failing_ends_cleanly_and_the_next_apply_converges() {
    let mut total_faults = 0;
    // (at 60%?, exit code) -> applies
    let mut outcomes = BTreeMap::<(bool, i32), usize>::new();
    for seed in 0..3u64 {
        let mut fleet_workers = workers(4, 2, 3);
        let (dir, fleet) = new_fleet("chaos-apply", &fleet_workers);
        let mut counts = Counts::new();
        // Round 0 creates the fleet, round 1 scales one worker type up, one
        // down and changes a template, both at 10%; round 2 changes a
        // template again with 60% of calls failing at once (no delays, to keep
        // it quick), where retries run out and actions fail.
        for (round, rate) in [(0u64, 0.1), (1, 0.1), (2, 0.6)] {
            if round == 1 {
                fleet_workers[0].min = 3;
                fleet_workers[1].min = 1;
                fleet_workers[1].max = 1;
                fleet_workers[2].user_data = format!("v{seed}");
                write_fleet(dir.path(), &fleet, &fleet_workers);
            }
            if round == 2 {
                fleet_workers[3].user_data = format!("w{seed}");
                write_fleet(dir.path(), &fleet, &fleet_workers);
            }
            let classes: &[FaultClass] = if round == 2 {
                &[
                    FaultClass::Throttle,
                    FaultClass::ServerError,
                    FaultClass::Unavailable,
                    FaultClass::Reset,
                ]
            } else {
                &FaultClass::ALL
            };
            let proxy = FaultProxy::chaos(endpoint(), Chaos::new(seed * 10 + round, rate, classes))
                .expect("proxy");
            let out = fleetform(
                &["apply", "--auto-approve", "--parallelism", "4"],
                dir.path(),
                &proxy.url,
            );
            total_faults += proxy.injected();
            assert_clean(&out, &format!("seed {seed} round {round}"));
            *outcomes
                .entry((round == 2, out.status.code().unwrap_or(-1)))
                .or_default() += 1;
            // Whatever happened, an apply without faults converges, and nothing exists twice.
            apply_directly(dir.path());
            assert_no_op(dir.path());
            counts = assert_exactly(dir.path(), &fleet_workers, &counts);
        }
    }
    println!(
        "chaos apply: 6 applies at 10% and 3 at 60% faults ({total_faults} faults injected), (at 60%, exit code) -> applies {outcomes:?}; all converged on the next apply; duplicates: 0"
    );
    assert!(total_faults > 0, "faults were injected");
}

/// The records of the journal's last apply that never ended: (actions
/// planned, outcomes recorded), or `None`.
fn unfinished_apply(dir: &Path) -> Option<(usize, usize)> {
    let records = LocalBackend::new(dir.join(".fleetform"))
        .journal()
        .expect("journal readable");
    let mut open = None;
    for record in records {
        match record {
            JournalRecord::Begin { actions, .. } => open = Some((actions, 0)),
            JournalRecord::Outcome { .. } => {
                if let Some((_, done)) = open.as_mut() {
                    *done += 1;
                }
            }
            JournalRecord::End { .. } => open = None,
            JournalRecord::Intent { .. } => {}
        }
    }
    open
}

/// A tiny deterministic generator for the kill points (xorshift64*).
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

#[test]
fn fifty_kills_of_apply_at_seeded_requests_each_followed_by_apply_converge_without_duplicates() {
    const KILLS: usize = 50;
    let mut rng = Seeded(0x5eed_f1ee_7f0e_0008);
    let mut fleet_workers = workers(3, 1, 3);
    let (dir, fleet) = new_fleet("chaos-kill", &fleet_workers);
    // Requests of an uninterrupted apply bound where the kill can fall.
    let mut span = 30;
    let mut counts = Counts::new();
    let (mut tripped, mut before_ec2, mut after_ec2, mut explained) = (0, 0, 0, 0);
    let started = Instant::now();
    for kill in 0..KILLS {
        // Every round has work: a template change, and in half the rounds a new min.
        let w = rng.below(fleet_workers.len());
        fleet_workers[w].user_data = format!("k{kill}");
        if rng.below(2) == 1 {
            fleet_workers[w].min = 1 + (fleet_workers[w].min % 3);
        }
        write_fleet(dir.path(), &fleet, &fleet_workers);
        let at = 1 + rng.below(span);
        let ec2_first = rng.below(2) == 1;
        // One round in five counts from the first request (kills during the
        // plan's reads); the rest from the first change the apply makes, so
        // that most kills fall inside the journaled part.
        let from: Rule = if kill % 5 == 0 {
            Arc::new(|_: &str, _: &str| true)
        } else {
            Arc::new(|_: &str, action: &str| {
                !action.starts_with("Describe") && action != "GetCallerIdentity"
            })
        };
        let wire = Tripwire::start(endpoint(), from, at, ec2_first).expect("proxy");
        let mut child = spawn(
            &["apply", "--auto-approve", "--parallelism", "4"],
            dir.path(),
            &wire.url,
            &[],
        );
        let pid = child.id();
        // Until the wire trips or the apply ends by itself (it made fewer requests).
        let deadline = Instant::now() + Duration::from_secs(120);
        let stopped = loop {
            if let Some(action) = wire.wait_tripped(Duration::from_millis(50)) {
                break Some(action);
            }
            if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                break None;
            }
        };
        // SIGKILL: no destructor, no lock release, no journal end.
        let _ = child.kill();
        let status = child.wait().expect("reaped");
        if stopped.is_some() {
            tripped += 1;
            if ec2_first {
                after_ec2 += 1;
            } else {
                before_ec2 += 1;
            }
        } else {
            // The apply finished before its at-th request: it made fewer; aim lower next time.
            span = span.min(wire.counted().max(2));
            assert!(
                status.success(),
                "kill {kill}: an uninterrupted apply succeeds"
            );
        }
        let unfinished = unfinished_apply(dir.path());
        // The killed holder's lease is live: an operator who knows it is dead breaks it.
        let unlock = fleetform(&["unlock", "--force"], dir.path(), endpoint());
        assert!(
            matches!(unlock.status.code(), Some(0)),
            "kill {kill}: {}",
            text(&unlock)
        );
        match stopped.as_deref() {
            // The caller is identified before the lock is taken: an apply
            // killed there holds nothing.
            Some("GetCallerIdentity") => assert!(
                text(&unlock).contains("not locked"),
                "kill {kill}: an apply killed before it took the lock leaves none: {}",
                text(&unlock)
            ),
            Some(action) => assert!(
                text(&unlock).contains(&format!(":{pid}")),
                "kill {kill} (stopped at {action}): unlock names the killed holder {pid}: {}",
                text(&unlock)
            ),
            None => {}
        }
        let next = fleetform(
            &["apply", "--auto-approve", "--parallelism", "4"],
            dir.path(),
            endpoint(),
        );
        assert_eq!(
            next.status.code(),
            Some(0),
            "kill {kill} (request {at}, after EC2: {ec2_first}): {}",
            text(&next)
        );
        if let Some((actions, done)) = unfinished {
            assert!(
                text(&next).contains(&format!("interrupted after {done} of {actions} actions")),
                "kill {kill}: the journal explains the interruption: {}",
                text(&next)
            );
            explained += 1;
        }
        counts = assert_exactly(dir.path(), &fleet_workers, &counts);
    }
    assert_no_op(dir.path());
    println!(
        "kill -9: {KILLS} applies killed ({tripped} mid-request: {before_ec2} before EC2 saw the call, {after_ec2} after it acted but before the answer; {explained} explained by the journal) in {:.0}s; all converged; duplicates: 0; objects missing from state: 0",
        started.elapsed().as_secs_f64()
    );
    assert!(
        tripped >= KILLS * 3 / 4,
        "most kills landed mid-request: {tripped}"
    );
    assert!(explained > 0, "some kills fell inside the journaled apply");
}

/// An apply killed at its very first request (identifying the caller,
/// before it takes the lock) leaves no lock and no journal; the next apply
/// does the work. (The fifty-kill test can land there in its rounds that
/// count every request.)
#[test]
fn an_apply_killed_before_it_takes_the_lock_leaves_none_and_the_next_converges() {
    let fleet_workers = workers(2, 1, 2);
    let (dir, _fleet) = new_fleet("chaos-prelock", &fleet_workers);
    let every: Rule = Arc::new(|_: &str, _: &str| true);
    let wire = Tripwire::start(endpoint(), every, 1, false).expect("proxy");
    let mut child = spawn(
        &["apply", "--auto-approve", "--parallelism", "4"],
        dir.path(),
        &wire.url,
        &[],
    );
    let stopped = wire.wait_tripped(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(stopped.as_deref(), Some("GetCallerIdentity"));
    assert!(
        unfinished_apply(dir.path()).is_none(),
        "nothing was journaled"
    );
    let unlock = fleetform(&["unlock", "--force"], dir.path(), endpoint());
    assert_eq!(unlock.status.code(), Some(0), "{}", text(&unlock));
    assert!(text(&unlock).contains("not locked"), "{}", text(&unlock));
    let next = fleetform(&["apply", "--auto-approve"], dir.path(), endpoint());
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    assert_exactly(dir.path(), &fleet_workers, &Counts::new());
}

/// A proxy that holds an apply's first change (its first ImportKeyPair) until released.
fn hold_first_change() -> HoldingProxy {
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    HoldingProxy::start(
        endpoint(),
        Arc::new(move |_: &str, action: &str| {
            action == "ImportKeyPair" && first.swap(false, std::sync::atomic::Ordering::SeqCst)
        }),
    )
    .expect("proxy")
}

#[test]
fn two_to_eight_racing_applies_one_holds_the_lock_the_rest_exit_3_promptly() {
    let mut fleet_workers = workers(2, 1, 2);
    let (dir, fleet) = new_fleet("chaos-race", &fleet_workers);
    let mut slowest_refusal = Duration::ZERO;
    let mut counts = Counts::new();
    for racers in 2..=8usize {
        fleet_workers[0].user_data = format!("race{racers}");
        write_fleet(dir.path(), &fleet, &fleet_workers);
        // The lock holder's first change is held at the proxy, so it holds the
        // lock while every other racer tries.
        let proxy = HoldingProxy::start(endpoint(), first_change()).expect("proxy");
        let start = Instant::now();
        let mut children: Vec<Child> = (0..racers)
            .map(|_| spawn(&["apply", "--auto-approve"], dir.path(), &proxy.url, &[]))
            .collect();
        let held = proxy.wait_for_held(Duration::from_secs(60));
        assert!(held.is_some(), "{racers} racers: one reached EC2");
        let lease = LocalBackend::new(dir.path().join(".fleetform"))
            .lease()
            .expect("lock readable")
            .expect("held");
        let mut refused = 0;
        let mut holder = None;
        for child in &mut children {
            let pid = child.id();
            if lease.holder.ends_with(&format!(":{pid}")) {
                holder = Some(pid);
                continue;
            }
            let status = wait_bounded(child, Duration::from_secs(30))
                .unwrap_or_else(|| panic!("{racers} racers: a loser exits promptly"));
            slowest_refusal = slowest_refusal.max(start.elapsed());
            let err = stderr_of(child);
            assert_eq!(status.code(), Some(3), "{racers} racers: {err}");
            assert!(
                err.contains(&format!("locked by {}", lease.holder)),
                "names the holder: {err}"
            );
            refused += 1;
        }
        assert_eq!(refused, racers - 1, "exactly one holds the lock");
        let holder = holder.expect("the holder is one of the racers");
        proxy.release_one();
        for child in &mut children {
            if child.id() == holder {
                let status = wait_bounded(child, Duration::from_secs(120)).expect("finishes");
                assert!(status.success(), "the holder applies: {}", stderr_of(child));
            }
        }
        counts = assert_exactly(dir.path(), &fleet_workers, &counts);
    }
    let versions = LocalBackend::new(dir.path().join(".fleetform"))
        .list()
        .expect("versions");
    assert_eq!(versions.len(), 7, "one version per round of racers");
    println!(
        "racing applies: 2..=8 racers x 7 rounds; one holder each, 28 refusals, all exit 3; slowest refusal {:.2}s after start",
        slowest_refusal.as_secs_f64()
    );
}

#[test]
fn a_holder_killed_mid_apply_leaves_a_lease_that_expires_is_reported_and_is_broken() {
    let fleet_workers = workers(2, 1, 2);
    let (dir, _fleet) = new_fleet("chaos-lease", &fleet_workers);
    // The holder's first change is held at the proxy: it dies holding the lock.
    let holding = hold_first_change();
    let mut child = spawn(
        &["apply", "--auto-approve"],
        dir.path(),
        &holding.url,
        &[("FLEETFORM_LOCK_LEASE_SECS", "3")],
    );
    let pid = child.id();
    assert!(holding.wait_for_held(Duration::from_secs(60)).is_some());
    let _ = child.kill();
    let _ = child.wait();
    holding.release_one();
    // Live: reported with its holder, never stolen.
    let blocked = fleetform(&["apply", "--auto-approve"], dir.path(), endpoint());
    assert_eq!(blocked.status.code(), Some(3), "{}", text(&blocked));
    assert!(
        text(&blocked).contains(&format!(":{pid}")),
        "{}",
        text(&blocked)
    );
    // Expiry is a time, not an event: poll (bounded) until apply reports the lease expired.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let blocked = fleetform(&["apply", "--auto-approve"], dir.path(), endpoint());
        assert_eq!(blocked.status.code(), Some(3), "{}", text(&blocked));
        if text(&blocked).contains("expired") {
            assert!(
                text(&blocked).contains(&format!(":{pid}")),
                "{}",
                text(&blocked)
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lease expires within its 3 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let broken = fleetform(&["unlock"], dir.path(), endpoint());
    assert_eq!(broken.status.code(), Some(0), "{}", text(&broken));
    assert!(
        text(&broken).contains(&format!(":{pid}")),
        "unlock names whose lease it broke: {}",
        text(&broken)
    );
    let resumed = fleetform(&["apply", "--auto-approve"], dir.path(), endpoint());
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    assert!(
        text(&resumed).contains("was interrupted after 0 of"),
        "the journal explains: {}",
        text(&resumed)
    );
    assert_exactly(dir.path(), &fleet_workers, &Counts::new());
}

/// Runs `fleetform` and waits for it at most `limit`: `None` means it hung.
fn run_bounded(args: &[&str], dir: &Path, via: &str, limit: Duration) -> Option<Output> {
    let mut child = spawn(args, dir, via, &[("FLEETFORM_CALL_TIMEOUT", "1")]);
    let status = wait_bounded(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    child.wait_with_output().ok()
}

#[test]
fn an_endpoint_that_never_answers_ends_every_command_with_an_error_not_a_hang() {
    // A black hole: accepts connections, reads, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hole = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream); // kept open, never answered
        }
    });
    let fleet_workers = workers(1, 1, 2);
    let (dir, _) = new_fleet("chaos-hole", &fleet_workers);
    // Bounds: 4 attempts of 1 s plus backoff, well under a minute each.
    let limit = Duration::from_secs(60);
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"][..],
        &["state", "list"][..],
    ] {
        let started = Instant::now();
        let out = run_bounded(args, dir.path(), &hole, limit)
            .unwrap_or_else(|| panic!("`fleetform {args:?}` hung on a silent endpoint"));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("timed out") || text(&out).contains("cannot"),
            "{args:?} says why: {}",
            text(&out)
        );
        println!(
            "silent endpoint: `fleetform {}` gave up after {:.1}s",
            args.join(" "),
            started.elapsed().as_secs_f64()
        );
    }
    // Reads that never answer (past the timeout on every attempt) after the
    // caller is known: the plan ends, every region blind, nothing launched.
    let mut chaos = Chaos::new(1, 1.0, &[FaultClass::Delay]);
    chaos.applies_to = Some(Arc::new(|_: &str, action: &str| {
        action.starts_with("Describe")
    }));
    let proxy = FaultProxy::chaos(endpoint(), chaos).expect("proxy");
    let out = run_bounded(&["plan", "--json"], dir.path(), &proxy.url, limit)
        .expect("plan ends despite reads that never answer in time");
    assert_clean(&out, "plan with every read delayed");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a plan");
    let launches = action_keys(&json)
        .into_iter()
        .filter(|k| k.2 == "launch" || k.2 == "terminate")
        .count();
    assert_eq!(launches, 0, "blind regions get no launches: {json}");
    assert!(
        json["incomplete"].as_array().map(Vec::len).unwrap_or(0) > 0,
        "every region blind: {json}"
    );
}

#[test]
fn an_apply_whose_lock_was_broken_and_taken_starts_no_further_change() {
    let fleet_workers = workers(2, 1, 2);
    let (dir, _) = new_fleet("chaos-stolen", &fleet_workers);
    // Hold the apply's first change, break its lock and take it meanwhile (an
    // operator forcing `unlock` on a run they thought dead).
    let holding = hold_first_change();
    let mut child = spawn(
        &["apply", "--auto-approve", "--parallelism", "1"],
        dir.path(),
        &holding.url,
        &[],
    );
    assert!(holding.wait_for_held(Duration::from_secs(60)).is_some());
    let store = LocalBackend::new(dir.path().join(".fleetform"));
    let broken = fleetform(&["unlock", "--force"], dir.path(), endpoint());
    assert_eq!(broken.status.code(), Some(0), "{}", text(&broken));
    let thief = store
        .lock("operator@laptop:1", 600, fleetform_state::now())
        .expect("taken");
    holding.release_one();
    let status = wait_bounded(&mut child, Duration::from_secs(120)).expect("ends");
    let err = stderr_of(&mut child);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("not started: the state lock is now held by operator@laptop:1"),
        "{err}"
    );
    // Only the call already under way was made: one key pair, nothing else.
    let live = live_objects(dir.path());
    let made: Vec<&str> = live.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(made, vec!["key_pair"], "{live:?}");
    store.release(thief).expect("released");
}

#[test]
fn an_apply_with_nothing_to_do_still_records_what_a_crash_or_a_blind_read_left_out() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut fleet_workers = workers(1, 1, 2);
    let store_of = |dir: &Path| LocalBackend::new(dir.join(".fleetform"));

    // A crash after the last change of an apply that only launches: the
    // first read after the launches is held and the apply killed there.
    let (dir, fleet) = new_fleet("chaos-record", &fleet_workers);
    apply_directly(dir.path());
    let before = assert_exactly(dir.path(), &fleet_workers, &Counts::new());
    fleet_workers[0].min = 2;
    write_fleet(dir.path(), &fleet, &fleet_workers);
    let launched = Arc::new(AtomicBool::new(false));
    let first = Arc::new(AtomicBool::new(true));
    let holding = HoldingProxy::start(
        endpoint(),
        Arc::new(move |_: &str, action: &str| {
            if action == "RunInstances" {
                launched.store(true, Ordering::SeqCst);
                return false;
            }
            launched.load(Ordering::SeqCst)
                && action == "DescribeInstances"
                && first.swap(false, Ordering::SeqCst)
        }),
    )
    .expect("proxy");
    let mut child = spawn(&["apply", "--auto-approve"], dir.path(), &holding.url, &[]);
    assert!(holding.wait_for_held(Duration::from_secs(60)).is_some());
    let _ = child.kill();
    let _ = child.wait();
    holding.release_one();
    assert_eq!(store_of(dir.path()).list().expect("versions").len(), 1);
    assert!(
        unfinished_apply(dir.path()).is_some(),
        "the journal is open"
    );
    let unlock = fleetform(&["unlock", "--force"], dir.path(), endpoint());
    assert_eq!(unlock.status.code(), Some(0), "{}", text(&unlock));
    // Capacity is at min now: nothing to change, but the launches are unrecorded.
    let next = fleetform(&["apply", "--auto-approve"], dir.path(), endpoint());
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    assert!(
        text(&next).contains(
            "No changes to apply; recording a version because the journal holds an apply that never ended"
        ),
        "{}",
        text(&next)
    );
    assert_exactly(dir.path(), &fleet_workers, &before);
    assert_eq!(unfinished_apply(dir.path()), None, "the journal is closed");
    let again = fleetform(&["apply", "--auto-approve"], dir.path(), endpoint());
    assert!(
        text(&again).contains("No changes to apply.\n"),
        "{}",
        text(&again)
    );
    assert_eq!(store_of(dir.path()).list().expect("versions").len(), 2);

    // A read that failed after the apply: the version carries over what it
    // could not see (no instances), and instances are never adopted one by
    // one, so only a recorded refresh puts them in state.
    let fleet_workers = workers(1, 1, 2);
    let (dir, _) = new_fleet("chaos-record", &fleet_workers);
    let launched = Arc::new(AtomicBool::new(false));
    let blind = FaultProxy::start(
        endpoint(),
        Arc::new(move |_: &str, action: &str| {
            if action == "RunInstances" {
                launched.store(true, Ordering::SeqCst);
            }
            launched.load(Ordering::SeqCst) && action == "DescribeInstances"
        }),
    )
    .expect("proxy");
    let first_apply = fleetform(&["apply", "--auto-approve"], dir.path(), &blind.url);
    assert_eq!(first_apply.status.code(), Some(0), "{}", text(&first_apply));
    let next = fleetform(&["apply", "--auto-approve"], dir.path(), endpoint());
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    assert!(
        text(&next).contains(
            "No changes to apply; recording a version because EC2 holds 2 objects of this fleet that the last version does not record"
        ),
        "{}",
        text(&next)
    );
    assert_exactly(dir.path(), &fleet_workers, &Counts::new());
    assert_eq!(store_of(dir.path()).list().expect("versions").len(), 2);
}
