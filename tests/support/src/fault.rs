//! A fault-injecting HTTP proxy on 127.0.0.1, between fleetform and the local
//! EC2 endpoint. Each request's region (from the SigV4 credential scope) and
//! action (from the form body) go to a decision function, which lets it
//! through or picks an [`Injection`]: an EC2 error answer, a reset
//! connection, an answer held past the client's timeout, or a page whose
//! NextToken is dropped.
//!
//! [`FaultProxy::chaos`] makes the decisions from a seed ([`Chaos`]): the
//! same seed gives the same faults to the same sequence of requests, so a
//! failing chaos test can be replayed.
//!
//! [`FaultProxy::eventually_consistent`] plays EC2's eventual consistency
//! ([`FaultClass::Unlisted`], [`Lag`]): what was created through it in the
//! last N seconds is missing from Describe answers that look complete.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Decides whether a request (region, action) fails.
pub type Rule = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// A rule matching only the first mutating request (not a read, not STS's
/// GetCallerIdentity) the proxy sees: holding it keeps an apply holding its
/// lock while others try.
pub fn first_change() -> Rule {
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    Arc::new(move |_: &str, action: &str| {
        !action.starts_with("Describe")
            && action != "GetCallerIdentity"
            && first.swap(false, std::sync::atomic::Ordering::SeqCst)
    })
}

/// Decides what happens to a request (region, action): `None` forwards it as it is.
pub type Decide = Arc<dyn Fn(&str, &str) -> Option<Injection> + Send + Sync>;

/// Decides what happens to a request from its region, action and form
/// parameters (name, decoded value): for faults that depend on what the
/// request asks, such as the subnet of a launch.
pub type Sees = Arc<dyn Fn(&str, &str, &[(String, String)]) -> Option<Injection> + Send + Sync>;

/// A decision that fails every RunInstances into `subnet_id` (as
/// `SubnetId`, or on a network interface as `NetworkInterface.N.SubnetId`)
/// with EC2's `InsufficientInstanceCapacity` (a server error, HTTP 500), and
/// lets every other request through: one zone out of capacity, the others
/// not. Dry runs pass, as EC2 checks no capacity for them.
pub fn no_capacity_in(subnet_id: &str) -> Sees {
    let subnet_id = subnet_id.to_string();
    Arc::new(
        move |_region: &str, action: &str, params: &[(String, String)]| {
            let launch = action == "RunInstances"
                && !params
                    .iter()
                    .any(|(name, value)| name == "DryRun" && value == "true");
            let into_subnet = params.iter().any(|(name, value)| {
                (name == "SubnetId" || name.ends_with(".SubnetId")) && *value == subnet_id
            });
            (launch && into_subnet).then(|| {
                Injection::Error(Fault {
                    status: 500,
                    code: "InsufficientInstanceCapacity".into(),
                })
            })
        },
    )
}

/// The parameters of a form body (`a=1&b=x%2Fy`), decoded.
fn form_params(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decoded(name), percent_decoded(value))
        })
        .collect()
}

/// `text` with `+` as a space and `%XX` as its byte; a `%` not followed by
/// two hex digits is kept as it is.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |at: usize| -> Option<u8> {
        let digits = std::str::from_utf8(bytes.get(at..at + 2)?).ok()?;
        u8::from_str_radix(digits, 16).ok()
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match (byte, hex(at + 1)) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(decoded)) => {
                out.push(decoded);
                at += 2;
            }
            _ => out.push(byte),
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The error a picked request gets.
#[derive(Debug, Clone)]
pub struct Fault {
    /// HTTP status.
    pub status: u16,
    /// EC2 error code.
    pub code: String,
}

impl Default for Fault {
    fn default() -> Self {
        Fault {
            status: 500,
            code: "InternalError".into(),
        }
    }
}

/// What the proxy does to one picked request.
#[derive(Debug, Clone)]
pub enum Injection {
    /// Answers with this error at once; the request never reaches EC2.
    Error(Fault),
    /// Resets the connection (TCP RST) without an answer; the request never reaches EC2.
    Reset,
    /// Forwards the request (EC2 carries it out), then holds the answer this
    /// long before sending it: past the client's timeout, the client has
    /// given up on a call that did happen.
    Delay(Duration),
    /// Forwards the request and drops the NextToken from the answer: a page
    /// that looks like the last one when more remain.
    Truncate,
    /// Stops the request where a crash hurts: before EC2 sees it
    /// (`after_ec2: false`) or after EC2 carried it out but before the client
    /// hears back (`after_ec2: true`). The action is sent on `tripped`, then
    /// the connection is held until the client goes away (killed) and
    /// dropped: the request (or its answer) is never delivered.
    Stall {
        /// Whether EC2 carries the request out first.
        after_ec2: bool,
        /// Told the action once the request is stopped.
        tripped: std::sync::mpsc::Sender<String>,
    },
}

/// The kinds of fault [`Chaos`] injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultClass {
    /// HTTP 400 `RequestLimitExceeded`: EC2's throttling.
    Throttle,
    /// HTTP 500 `InternalError`.
    ServerError,
    /// HTTP 503 `Unavailable`.
    Unavailable,
    /// The connection is reset before any answer.
    Reset,
    /// The answer comes after the client's timeout (see [`Chaos::delay`]).
    Delay,
    /// A page of a paged read loses its NextToken.
    TruncatedPage,
    /// A Describe answer lacks what was created moments ago (eventual
    /// consistency). Not drawn by [`Chaos`] (not in [`FaultClass::ALL`]): a
    /// proxy of its own plays it, [`FaultProxy::eventually_consistent`].
    Unlisted,
}

impl FaultClass {
    /// Every class, in a fixed order.
    pub const ALL: [FaultClass; 6] = [
        FaultClass::Throttle,
        FaultClass::ServerError,
        FaultClass::Unavailable,
        FaultClass::Reset,
        FaultClass::Delay,
        FaultClass::TruncatedPage,
    ];

    /// What a request drawn for this class gets; `None` (forwarded as it
    /// is) for [`FaultClass::Unlisted`], which needs a [`Lag`].
    fn injection(self, delay: Duration) -> Option<Injection> {
        let error = |status: u16, code: &str| {
            Injection::Error(Fault {
                status,
                code: code.into(),
            })
        };
        Some(match self {
            FaultClass::Throttle => error(400, "RequestLimitExceeded"),
            FaultClass::ServerError => error(500, "InternalError"),
            FaultClass::Unavailable => error(503, "Unavailable"),
            FaultClass::Reset => Injection::Reset,
            FaultClass::Delay => Injection::Delay(delay),
            FaultClass::TruncatedPage => Injection::Truncate,
            FaultClass::Unlisted => return None,
        })
    }
}

/// Seeded faults: each request whose action `applies_to` picks gets a fault
/// with probability `rate`, its class drawn from `classes`. The draw for the
/// n-th request of a (region, action) pair depends only on (seed, region,
/// action, n), so a seed replays the same faults whatever the interleaving
/// of different actions.
#[derive(Clone)]
pub struct Chaos {
    /// The seed.
    pub seed: u64,
    /// Share of picked requests that get a fault, 0.0 to 1.0.
    pub rate: f64,
    /// The classes to draw from (all of them when empty).
    pub classes: Vec<FaultClass>,
    /// How long a [`FaultClass::Delay`] holds the answer.
    pub delay: Duration,
    /// Which actions may get faults (`None`: every action).
    pub applies_to: Option<Rule>,
}

impl Chaos {
    /// `rate` of every request gets a fault of one of `classes`, from `seed`.
    pub fn new(seed: u64, rate: f64, classes: &[FaultClass]) -> Chaos {
        Chaos {
            seed,
            rate,
            classes: classes.to_vec(),
            delay: Duration::from_secs(3),
            applies_to: None,
        }
    }

    /// The decision for the `n`-th request (from 0) of `action` in `region`.
    pub fn decide(&self, region: &str, action: &str, n: u64) -> Option<FaultClass> {
        if let Some(rule) = &self.applies_to {
            if !rule(region, action) {
                return None;
            }
        }
        let draw = mix(self.seed, &[region.as_bytes(), action.as_bytes()], n);
        // The top 53 bits as a uniform number in [0, 1).
        let uniform = (draw >> 11) as f64 / (1u64 << 53) as f64;
        if uniform >= self.rate {
            return None;
        }
        let classes: &[FaultClass] = if self.classes.is_empty() {
            &FaultClass::ALL
        } else {
            &self.classes
        };
        let pick = mix(draw, &[], n) % classes.len() as u64;
        classes.get(pick as usize).copied()
    }
}

/// A 64-bit hash of the seed, some byte strings and a counter: FNV-1a over the
/// bytes, then the SplitMix64 finaliser. Stable across runs and platforms.
fn mix(seed: u64, parts: &[&[u8]], n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for b in part.iter().chain([0xffu8].iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let mut z = h ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A proxy that holds the requests a rule picks until released: a test can
/// act (e.g. kill the client) at a known point instead of after a sleep.
pub struct HoldingProxy {
    /// URL to give fleetform as its endpoint.
    pub url: String,
    seen: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
    release: std::sync::mpsc::Sender<()>,
}

impl HoldingProxy {
    /// Starts a proxy to `upstream` that holds every request `rule` picks.
    pub fn start(upstream: &str, rule: Rule) -> std::io::Result<HoldingProxy> {
        let (seen_tx, seen) = std::sync::mpsc::channel::<String>();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        // Holding is a rule that waits for the release, then lets the request through.
        let hold = move |region: &str, action: &str| {
            if rule(region, action) {
                let _ = seen_tx.send(action.to_string());
                let waiting = release_rx.lock().unwrap_or_else(|p| p.into_inner());
                // Bounded: a test that never releases does not hang the proxy forever.
                let _ = waiting.recv_timeout(Duration::from_secs(120));
            }
            false
        };
        let proxy = FaultProxy::start(upstream, Arc::new(hold))?;
        Ok(HoldingProxy {
            url: proxy.url,
            seen: std::sync::Mutex::new(seen),
            release,
        })
    }

    /// Waits (bounded) until a picked request arrives; its action, or `None` on timeout.
    pub fn wait_for_held(&self, limit: Duration) -> Option<String> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(limit)
            .ok()
    }

    /// Lets one held request through to the upstream.
    pub fn release_one(&self) {
        let _ = self.release.send(());
    }
}

/// A proxy that stops one request with [`Injection::Stall`], so a test can
/// kill the client at that point: the `at`-th request (from 1), counting
/// from the first one `from` picks (e.g. the first change an apply makes).
pub struct Tripwire {
    /// URL to give fleetform as its endpoint.
    pub url: String,
    tripped: Mutex<std::sync::mpsc::Receiver<String>>,
    counted: Arc<AtomicUsize>,
}

impl Tripwire {
    /// Starts a proxy to `upstream` that stops the `at`-th request counted
    /// from the first that `from` picks, before or after EC2 sees it.
    pub fn start(
        upstream: &str,
        from: Rule,
        at: usize,
        after_ec2: bool,
    ) -> std::io::Result<Tripwire> {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let counting = std::sync::atomic::AtomicBool::new(false);
        let seen = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&seen);
        let tx = Mutex::new(tx);
        let decide: Decide = Arc::new(move |region: &str, action: &str| {
            if !counting.load(Ordering::SeqCst) && from(region, action) {
                counting.store(true, Ordering::SeqCst);
            }
            if !counting.load(Ordering::SeqCst) {
                return None;
            }
            (seen.fetch_add(1, Ordering::SeqCst) + 1 == at).then(|| Injection::Stall {
                after_ec2,
                tripped: tx.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            })
        });
        let proxy = FaultProxy::start_deciding(upstream, decide, None)?;
        Ok(Tripwire {
            url: proxy.url,
            tripped: Mutex::new(rx),
            counted,
        })
    }

    /// Waits (bounded) until the request is stopped; its action, or `None`
    /// when the client finished (or `limit` passed) first.
    pub fn wait_tripped(&self, limit: Duration) -> Option<String> {
        self.tripped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(limit)
            .ok()
    }

    /// Requests counted so far (from the first that `from` picked).
    pub fn counted(&self) -> usize {
        self.counted.load(Ordering::SeqCst)
    }
}

/// Whether a request is a mutating call that an apply journals an intent
/// for: a key pair import, a launch template creation or a launch (not a
/// dry run, which changes nothing and is not journaled).
pub fn journaled_call(action: &str, params: &[(String, String)]) -> bool {
    ["ImportKeyPair", "CreateLaunchTemplate", "RunInstances"].contains(&action)
        && !params
            .iter()
            .any(|(name, value)| name == "DryRun" && value == "true")
}

/// A proxy that stops the `at`-th journaled call ([`journaled_call`],
/// counted from one) with [`Injection::Stall`]: before EC2 sees it, or
/// after EC2 carried it out but before its answer; the test then kills the client there. It
/// counts every journaled call it saw, the stopped one included.
pub struct CallStop {
    /// URL to give fleetform as its EC2 endpoint.
    pub url: String,
    tripped: Mutex<std::sync::mpsc::Receiver<String>>,
    calls: Arc<AtomicUsize>,
}

impl CallStop {
    /// Starts a proxy to `upstream` that stops the `at`-th journaled call.
    pub fn start(upstream: &str, at: usize, after_ec2: bool) -> std::io::Result<CallStop> {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let tx = Mutex::new(tx);
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let sees: Sees = Arc::new(move |_: &str, action: &str, params: &[(String, String)]| {
            if !journaled_call(action, params) {
                return None;
            }
            (seen.fetch_add(1, Ordering::SeqCst) + 1 == at).then(|| Injection::Stall {
                after_ec2,
                tripped: tx.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            })
        });
        let proxy = FaultProxy::start_seeing(upstream, sees)?;
        Ok(CallStop {
            url: proxy.url,
            tripped: Mutex::new(rx),
            calls,
        })
    }

    /// Waits (bounded) until the call is stopped; its action, or `None`
    /// when the client finished (or `limit` passed) first.
    pub fn wait_tripped(&self, limit: Duration) -> Option<String> {
        self.tripped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(limit)
            .ok()
    }

    /// Journaled calls seen so far, the stopped one included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Faults injected so far, by class.
pub type Tally = BTreeMap<FaultClass, usize>;

/// A running proxy; it stops when the test binary exits.
pub struct FaultProxy {
    /// URL to give fleetform as its endpoint.
    pub url: String,
    injected: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    tally: Arc<Mutex<Tally>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an `http://127.0.0.1:PORT` URL) that fails what `rule` picks.
    pub fn start(upstream: &str, rule: Rule) -> std::io::Result<FaultProxy> {
        Self::start_with(upstream, rule, Fault::default())
    }

    /// Like [`FaultProxy::start`], answering picked requests with `fault`.
    pub fn start_with(upstream: &str, rule: Rule, fault: Fault) -> std::io::Result<FaultProxy> {
        let decide: Decide = Arc::new(move |region: &str, action: &str| {
            rule(region, action).then(|| Injection::Error(fault.clone()))
        });
        Self::start_deciding(upstream, decide, None)
    }

    /// A proxy whose faults come from `chaos` (deterministic for its seed).
    pub fn chaos(upstream: &str, chaos: Chaos) -> std::io::Result<FaultProxy> {
        let counters: Mutex<BTreeMap<(String, String), u64>> = Mutex::new(BTreeMap::new());
        let tally: Arc<Mutex<Tally>> = Arc::new(Mutex::new(Tally::new()));
        let recorded = Arc::clone(&tally);
        let delay = chaos.delay;
        let decide: Decide = Arc::new(move |region: &str, action: &str| {
            let n = {
                let mut counters = counters.lock().unwrap_or_else(|p| p.into_inner());
                let next = counters
                    .entry((region.to_string(), action.to_string()))
                    .or_insert(0);
                *next += 1;
                *next - 1
            };
            let class = chaos.decide(region, action, n)?;
            let injection = class.injection(delay)?;
            // A truncation only counts when a token was really dropped (see serve).
            if class != FaultClass::TruncatedPage {
                *recorded
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(class)
                    .or_insert(0) += 1;
            }
            Some(injection)
        });
        Self::start_deciding(upstream, decide, Some(tally))
    }

    /// A proxy that forwards everything but plays EC2's eventual
    /// consistency ([`Lag`]): what was created through it less than `hide`
    /// ago is left out of Describe answers. Each answer that lost something
    /// counts as an injected fault ([`FaultClass::Unlisted`] in the tally).
    pub fn eventually_consistent(upstream: &str, hide: Duration) -> std::io::Result<FaultProxy> {
        Self::start_proxy(
            upstream,
            Arc::new(|_: &str, _: &str| None),
            None,
            Some(Arc::new(Lag::new(hide))),
        )
    }

    /// A proxy that asks `decide` about every request.
    pub fn start_deciding(
        upstream: &str,
        decide: Decide,
        tally: Option<Arc<Mutex<Tally>>>,
    ) -> std::io::Result<FaultProxy> {
        Self::start_proxy(upstream, decide, tally, None)
    }

    /// A proxy that asks `sees` about every request, with its parameters
    /// (e.g. [`no_capacity_in`]).
    pub fn start_seeing(upstream: &str, sees: Sees) -> std::io::Result<FaultProxy> {
        Self::start_full(
            upstream,
            Arc::new(|_: &str, _: &str| None),
            Some(sees),
            None,
            None,
        )
    }

    /// A proxy where every RunInstances into `subnet_id` fails with
    /// InsufficientInstanceCapacity ([`no_capacity_in`]).
    pub fn out_of_capacity_in(upstream: &str, subnet_id: &str) -> std::io::Result<FaultProxy> {
        Self::start_seeing(upstream, no_capacity_in(subnet_id))
    }

    fn start_proxy(
        upstream: &str,
        decide: Decide,
        tally: Option<Arc<Mutex<Tally>>>,
        lag: Option<Arc<Lag>>,
    ) -> std::io::Result<FaultProxy> {
        Self::start_full(upstream, decide, None, tally, lag)
    }

    fn start_full(
        upstream: &str,
        decide: Decide,
        sees: Option<Sees>,
        tally: Option<Arc<Mutex<Tally>>>,
        lag: Option<Arc<Lag>>,
    ) -> std::io::Result<FaultProxy> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let injected = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let tally = tally.unwrap_or_default();
        let shared = Shared {
            upstream,
            decide,
            sees,
            injected: Arc::clone(&injected),
            requests: Arc::clone(&requests),
            tally: Arc::clone(&tally),
            lag,
        };
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &shared);
                });
            }
        });
        Ok(FaultProxy {
            url,
            injected,
            requests,
            tally,
        })
    }

    /// How many requests were failed, reset, delayed or cut short on purpose so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::Relaxed)
    }

    /// How many requests arrived so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Faults injected so far by class (chaos proxies only).
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    decide: Decide,
    sees: Option<Sees>,
    injected: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    tally: Arc<Mutex<Tally>>,
    lag: Option<Arc<Lag>>,
}

/// EC2's eventual consistency, played on answers: the ids of instances,
/// launch templates and key pairs that RunInstances, CreateLaunchTemplate,
/// ImportKeyPair and CreateKeyPair answers carry are remembered with the
/// time; Describe answers lose the items of those younger than `hide` (an
/// instance's reservation too, once it holds no instance), and look as
/// complete as ever.
pub struct Lag {
    hide: Duration,
    created: Mutex<Vec<(String, std::time::Instant)>>,
}

/// The elements whose text is the id of what an answer creates or lists.
const ID_ELEMENTS: [&str; 3] = ["instanceId", "launchTemplateId", "keyPairId"];

/// The actions whose answers carry the ids of what they created.
const CREATING: [&str; 4] = [
    "RunInstances",
    "CreateLaunchTemplate",
    "ImportKeyPair",
    "CreateKeyPair",
];

impl Lag {
    /// Hides what was created less than `hide` ago.
    pub fn new(hide: Duration) -> Lag {
        Lag {
            hide,
            created: Mutex::new(Vec::new()),
        }
    }

    /// Remembers what the answer to `action` created (at `now`), or returns
    /// the answer without the young objects for a Describe action; `None`
    /// when the answer is left as it is.
    fn answer(&self, action: &str, body: &[u8], now: std::time::Instant) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(body).ok()?;
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        if CREATING.contains(&action) {
            created.extend(ids_in(text).into_iter().map(|id| (id, now)));
            return None;
        }
        if !action.starts_with("Describe") {
            return None;
        }
        let young: std::collections::BTreeSet<&str> = created
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(*at) < self.hide)
            .map(|(id, _)| id.as_str())
            .collect();
        let hidden = without_items(text, &young)?;
        Some(hidden.into_bytes())
    }
}

/// Every id element's text in `text`.
fn ids_in(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for element in ID_ELEMENTS {
        let (open, close) = (format!("<{element}>"), format!("</{element}>"));
        let mut rest = text;
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            let Some(end) = after.find(&close) else {
                break;
            };
            ids.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    ids
}

/// A byte range of an answer's text.
type Span = (usize, usize);

/// An `<item>` element: its start, its end, and the items directly inside it.
type Item = (usize, usize, Vec<Span>);

/// The `<item>` elements of `text`, each with the items directly inside it.
fn items(text: &str) -> Vec<Item> {
    let mut found: Vec<Item> = Vec::new();
    let mut open: Vec<(usize, Vec<Span>)> = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        if rest.starts_with("<item>") {
            open.push((at, Vec::new()));
            at += "<item>".len();
        } else if rest.starts_with("</item>") {
            at += "</item>".len();
            if let Some((start, inner)) = open.pop() {
                if let Some(parent) = open.last_mut() {
                    parent.1.push((start, at));
                }
                found.push((start, at, inner));
            }
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    found
}

/// The text of an item without the items inside it: its own fields.
fn own_fields(text: &str, (start, end): Span, inner: &[Span]) -> String {
    let mut own = String::new();
    let mut at = start;
    for (s, e) in inner {
        own.push_str(&text[at..*s]);
        at = *e;
    }
    own.push_str(&text[at..end]);
    own
}

/// `text` without the items whose own id field is one of `hidden`, and
/// without the reservations left holding no instance; `None` when nothing
/// was hidden.
fn without_items(text: &str, hidden: &std::collections::BTreeSet<&str>) -> Option<String> {
    if hidden.is_empty() {
        return None;
    }
    // `doomed` sees an item's own fields and its whole text.
    let drop_where = |text: &str, doomed: &dyn Fn(&str, &str) -> bool| -> Option<String> {
        let mut cut: Vec<Span> = items(text)
            .into_iter()
            .filter(|(s, e, inner)| doomed(&own_fields(text, (*s, *e), inner), &text[*s..*e]))
            .map(|(s, e, _)| (s, e))
            .collect();
        if cut.is_empty() {
            return None;
        }
        cut.sort();
        let mut out = String::new();
        let mut at = 0;
        for (s, e) in cut {
            if s < at {
                continue; // inside an item already cut
            }
            out.push_str(&text[at..s]);
            at = e;
        }
        out.push_str(&text[at..]);
        Some(out)
    };
    let names_hidden = |own: &str, _: &str| {
        ID_ELEMENTS.iter().any(|element| {
            hidden
                .iter()
                .any(|id| own.contains(&format!("<{element}>{id}</{element}>")))
        })
    };
    let cut = drop_where(text, &names_hidden)?;
    let empty_reservation = |own: &str, whole: &str| {
        own.contains("<reservationId>")
            && (whole.contains("<instancesSet></instancesSet>")
                || whole.contains("<instancesSet/>"))
    };
    Some(drop_where(&cut, &empty_reservation).unwrap_or(cut))
}

/// One HTTP/1.1 message: head (start line + headers) and body.
struct Message {
    head: String,
    body: Vec<u8>,
}

fn read_message(reader: &mut impl BufRead) -> std::io::Result<Option<Message>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Message { head, body }))
}

/// Rewrites the head so the connection closes after this message and its
/// length is `length`.
fn closing(head: &str, length: usize) -> String {
    let mut out: String = head
        .lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            !l.is_empty()
                && !lower.starts_with("connection:")
                && !lower.starts_with("content-length:")
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str(&format!(
        "Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ));
    out
}

/// The body without its `<nextToken>` element (EC2's spelling) or
/// `<NextToken>` element (Auto Scaling's), if it had one.
fn drop_next_token(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let (open, close) = ["nextToken", "NextToken"]
        .into_iter()
        .map(|name| (format!("<{name}>"), format!("</{name}>")))
        .find(|(open, _)| text.contains(open.as_str()))?;
    let start = text.find(open.as_str())?;
    let end = text[start..].find(close.as_str())? + start + close.len();
    if text[start..end]
        .trim_start_matches(open.as_str())
        .starts_with("</")
    {
        return None; // an empty token ends the listing already
    }
    Some([&text[..start], &text[end..]].concat().into_bytes())
}

fn serve(client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(request) = read_message(&mut reader)? else {
        return Ok(());
    };
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let body = String::from_utf8_lossy(&request.body);
    let action = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or_default()
        .to_string();
    // "Credential=KEY/DATE/REGION/SERVICE/aws4_request"
    let region = request
        .head
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or_default()
        .to_string();
    let mut client = client;
    let injection = match &shared.sees {
        Some(sees) => sees(&region, &action, &form_params(&body)),
        None => (shared.decide)(&region, &action),
    };
    match &injection {
        Some(Injection::Error(fault)) => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            let body = format!(
                "<Response><Errors><Error><Code>{}</Code><Message>injected fault: {action} in {region}</Message></Error></Errors><RequestID>fault</RequestID></Response>",
                fault.code
            );
            write!(
                client,
                "HTTP/1.1 {} Injected\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                fault.status,
                body.len()
            )?;
            return client.flush();
        }
        Some(Injection::Reset) => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            // Linger 0: close() sends RST instead of FIN.
            socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO))?;
            return Ok(());
        }
        Some(Injection::Stall {
            after_ec2: false,
            tripped,
        }) => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            let _ = tripped.send(action);
            return wait_for_hangup(&client);
        }
        _ => {}
    }
    let mut server = TcpStream::connect(&shared.upstream)?;
    server.set_read_timeout(Some(Duration::from_secs(120)))?;
    server.write_all(closing(&request.head, request.body.len()).as_bytes())?;
    server.write_all(&request.body)?;
    let mut response_reader = BufReader::new(server);
    let Some(mut response) = read_message(&mut response_reader)? else {
        return Ok(());
    };
    match injection {
        Some(Injection::Stall {
            after_ec2: true,
            tripped,
        }) => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            let _ = tripped.send(action);
            return wait_for_hangup(&client);
        }
        Some(Injection::Delay(delay)) => {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            // The fault is the wait itself: the client gives up before the answer.
            std::thread::sleep(delay);
        }
        Some(Injection::Truncate) => {
            if let Some(cut) = drop_next_token(&response.body) {
                shared.injected.fetch_add(1, Ordering::Relaxed);
                *shared
                    .tally
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(FaultClass::TruncatedPage)
                    .or_insert(0) += 1;
                response.body = cut;
            }
        }
        _ => {}
    }
    if let Some(lag) = &shared.lag {
        if let Some(hidden) = lag.answer(&action, &response.body, std::time::Instant::now()) {
            shared.injected.fetch_add(1, Ordering::Relaxed);
            *shared
                .tally
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(FaultClass::Unlisted)
                .or_insert(0) += 1;
            response.body = hidden;
        }
    }
    client.write_all(closing(&response.head, response.body.len()).as_bytes())?;
    client.write_all(&response.body)?;
    client.flush()
}

/// Blocks until the client closes its end (it was killed), at most a minute.
fn wait_for_hangup(client: &TcpStream) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut buf = [0u8; 512];
    let mut client = client;
    while let Ok(n) = std::io::Read::read(&mut client, &mut buf) {
        if n == 0 {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
        let draws = |seed| {
            let chaos = Chaos::new(seed, 0.3, &[]);
            (0..200)
                .map(|n| chaos.decide("us-east-1", "DescribeInstances", n))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let faults = draws(7).iter().filter(|d| d.is_some()).count();
        assert!((30..=90).contains(&faults), "about 30% of 200: {faults}");
        let classes: std::collections::BTreeSet<_> = draws(7).into_iter().flatten().collect();
        assert_eq!(classes.len(), FaultClass::ALL.len(), "every class drawn");
    }

    #[test]
    fn applies_to_limits_the_faults_to_the_picked_actions() {
        let mut chaos = Chaos::new(1, 1.0, &[FaultClass::Throttle]);
        chaos.applies_to = Some(Arc::new(|_: &str, action: &str| action == "RunInstances"));
        assert_eq!(chaos.decide("r", "DescribeInstances", 0), None);
        assert_eq!(
            chaos.decide("r", "RunInstances", 0),
            Some(FaultClass::Throttle)
        );
    }

    #[test]
    fn a_truncated_page_loses_only_its_token() {
        let body = b"<R><items/><nextToken>abc</nextToken><requestId>1</requestId></R>";
        let cut = drop_next_token(body).expect("had a token");
        assert_eq!(cut, b"<R><items/><requestId>1</requestId></R>");
        assert_eq!(drop_next_token(b"<R><items/></R>"), None);
        assert_eq!(drop_next_token(b"<R><nextToken></nextToken></R>"), None);
        let auto_scaling = b"<R><Groups/><NextToken>g</NextToken></R>";
        assert_eq!(
            drop_next_token(auto_scaling).expect("had a token"),
            b"<R><Groups/></R>"
        );
    }

    const RESERVATIONS: &str = "<DescribeInstancesResponse><reservationSet>\
<item><reservationId>r-1</reservationId><instancesSet>\
<item><instanceId>i-old</instanceId><tagSet><item><key>k</key><value>v</value></item></tagSet></item>\
</instancesSet></item>\
<item><reservationId>r-2</reservationId><instancesSet>\
<item><instanceId>i-new1</instanceId><networkInterfaceSet><item><attachment><instanceId>i-new1</instanceId></attachment></item></networkInterfaceSet></item>\
<item><instanceId>i-new2</instanceId></item>\
</instancesSet></item>\
</reservationSet><requestId>1</requestId></DescribeInstancesResponse>";

    #[test]
    fn lag_hides_what_was_created_moments_ago_from_describe_answers() {
        let lag = Lag::new(Duration::from_secs(60));
        let start = std::time::Instant::now();
        let run = b"<RunInstancesResponse><instancesSet><item><instanceId>i-new1</instanceId></item><item><instanceId>i-new2</instanceId></item></instancesSet></RunInstancesResponse>";
        assert_eq!(
            lag.answer("RunInstances", run, start),
            None,
            "a creation is answered as it is"
        );
        let hidden = lag
            .answer(
                "DescribeInstances",
                RESERVATIONS.as_bytes(),
                start + Duration::from_secs(59),
            )
            .expect("the new reservation is hidden");
        let text = String::from_utf8(hidden).expect("utf-8");
        assert_eq!(
            text,
            "<DescribeInstancesResponse><reservationSet><item><reservationId>r-1</reservationId><instancesSet><item><instanceId>i-old</instanceId><tagSet><item><key>k</key><value>v</value></item></tagSet></item></instancesSet></item></reservationSet><requestId>1</requestId></DescribeInstancesResponse>"
        );
        // Once `hide` has passed, EC2 lists them.
        assert_eq!(
            lag.answer(
                "DescribeInstances",
                RESERVATIONS.as_bytes(),
                start + Duration::from_secs(60)
            ),
            None
        );
    }

    #[test]
    fn lag_hides_one_instance_of_a_reservation_and_keeps_the_rest() {
        let lag = Lag::new(Duration::from_secs(60));
        let now = std::time::Instant::now();
        lag.answer(
            "RunInstances",
            b"<R><instancesSet><item><instanceId>i-new2</instanceId></item></instancesSet></R>",
            now,
        );
        let text = String::from_utf8(
            lag.answer("DescribeInstances", RESERVATIONS.as_bytes(), now)
                .expect("hidden"),
        )
        .expect("utf-8");
        assert!(text.contains("<reservationId>r-2</reservationId>"));
        assert!(text.contains("<instanceId>i-new1</instanceId>"));
        assert!(!text.contains("i-new2"));
    }

    #[test]
    fn lag_hides_new_launch_templates_and_key_pairs() {
        let lag = Lag::new(Duration::from_secs(60));
        let now = std::time::Instant::now();
        lag.answer(
            "CreateLaunchTemplate",
            b"<CreateLaunchTemplateResponse><launchTemplate><launchTemplateId>lt-new</launchTemplateId><tagSet><item><key>a</key><value>b</value></item></tagSet></launchTemplate></CreateLaunchTemplateResponse>",
            now,
        );
        lag.answer(
            "ImportKeyPair",
            b"<ImportKeyPairResponse><keyName>k</keyName><keyPairId>key-new</keyPairId></ImportKeyPairResponse>",
            now,
        );
        let templates = "<DescribeLaunchTemplatesResponse><launchTemplates><item><launchTemplateId>lt-old</launchTemplateId></item><item><launchTemplateId>lt-new</launchTemplateId><tagSet><item><key>a</key><value>b</value></item></tagSet></item></launchTemplates></DescribeLaunchTemplatesResponse>";
        assert_eq!(
            lag.answer("DescribeLaunchTemplates", templates.as_bytes(), now),
            Some(b"<DescribeLaunchTemplatesResponse><launchTemplates><item><launchTemplateId>lt-old</launchTemplateId></item></launchTemplates></DescribeLaunchTemplatesResponse>".to_vec())
        );
        let versions = "<R><launchTemplateVersionSet><item><launchTemplateId>lt-new</launchTemplateId><versionNumber>1</versionNumber></item></launchTemplateVersionSet></R>";
        assert_eq!(
            lag.answer("DescribeLaunchTemplateVersions", versions.as_bytes(), now),
            Some(b"<R><launchTemplateVersionSet></launchTemplateVersionSet></R>".to_vec())
        );
        let keys = "<R><keySet><item><keyPairId>key-new</keyPairId><keyName>k</keyName></item></keySet></R>";
        assert_eq!(
            lag.answer("DescribeKeyPairs", keys.as_bytes(), now),
            Some(b"<R><keySet></keySet></R>".to_vec())
        );
        // Other answers, and Describe answers without young objects, pass as they are.
        assert_eq!(
            lag.answer("TerminateInstances", templates.as_bytes(), now),
            None
        );
        assert_eq!(
            lag.answer(
                "DescribeImages",
                b"<R><imagesSet><item><imageId>ami-1</imageId></item></imagesSet></R>",
                now
            ),
            None
        );
    }

    #[test]
    fn no_capacity_fails_only_launches_into_its_subnet() {
        let sees = no_capacity_in("subnet-a");
        let decide = |action: &str, body: &str| sees("us-east-1", action, &form_params(body));
        let fails = |action: &str, body: &str| {
            matches!(
                decide(action, body),
                Some(Injection::Error(Fault { status: 500, ref code })) if code == "InsufficientInstanceCapacity"
            )
        };
        assert!(fails(
            "RunInstances",
            "Action=RunInstances&SubnetId=subnet-a&MinCount=1"
        ));
        assert!(
            fails(
                "RunInstances",
                "Action=RunInstances&NetworkInterface.1.DeviceIndex=0&NetworkInterface.1.SubnetId=subnet-a"
            ),
            "a subnet on network interface 0"
        );
        assert!(decide("RunInstances", "Action=RunInstances&SubnetId=subnet-b").is_none());
        assert!(
            decide("RunInstances", "Action=RunInstances&SubnetId=subnet-ab").is_none(),
            "the whole id, not a prefix"
        );
        assert!(decide("RunInstances", "Action=RunInstances").is_none());
        assert!(
            decide(
                "RunInstances",
                "Action=RunInstances&SubnetId=subnet-a&DryRun=true"
            )
            .is_none(),
            "a dry run checks no capacity"
        );
        assert!(decide(
            "DescribeSubnets",
            "Action=DescribeSubnets&Filter.1.Value.1=subnet-a"
        )
        .is_none());
    }

    #[test]
    fn form_parameters_are_decoded() {
        assert_eq!(
            form_params("a=1&b=x%2Fy+z&c&d=%zz&e=%4"),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x/y z".to_string()),
                ("c".to_string(), String::new()),
                ("d".to_string(), "%zz".to_string()),
                ("e".to_string(), "%4".to_string()),
            ]
        );
        assert!(form_params("").is_empty());
    }

    #[test]
    fn the_head_carries_the_new_length() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nConnection: keep-alive\r\n\r\n";
        let out = closing(head, 12);
        assert!(out.contains("Content-Length: 12\r\n"));
        assert!(!out.contains("99"));
        assert!(out.ends_with("Connection: close\r\n\r\n"));
    }
}
