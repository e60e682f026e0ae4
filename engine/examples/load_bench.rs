//! Times loading and checking a configuration directory in-process: parse,
//! evaluate, decode and static checks, no cloud. Prints median and p95.
//!
//! `cargo run --release -p fleetform-engine --example load_bench -- [DIR] [RUNS]`

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "examples/firefox-ci".to_string());
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(50);
    let inputs = fleetform_engine::Inputs::default();
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut worker_types = 0;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let loaded = fleetform_engine::load_dir(std::path::Path::new(&dir), &inputs);
        times.push(start.elapsed());
        if loaded.has_errors() {
            eprintln!("{dir} is not valid; run `fleetform validate {dir}`");
            std::process::exit(1);
        }
        worker_types = loaded.config.map_or(0, |c| c.worker_types.len());
    }
    times.sort();
    let median = times[times.len() / 2];
    let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
    println!(
        "load+check {dir}: {worker_types} worker types, {} runs, median {:.2} ms, p95 {:.2} ms",
        times.len(),
        median.as_secs_f64() * 1000.0,
        p95.as_secs_f64() * 1000.0
    );
}
