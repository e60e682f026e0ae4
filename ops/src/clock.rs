//! fleetform's clock: the one time every judgement and record of a run is
//! made at, so that they agree with each other.
//!
//! [`clock`] stamps versions and journal records, is the `now` of a plan
//! (`max_lifetime`, `fleet.consistency_grace`, the rollback window, a saved
//! plan's time) and judges image ages (`retain`, `fleetform images`). It
//! reads the system clock unless `FLEETFORM_NOW` moves it (to rehearse a
//! prune "31 days later", or in tests).
//!
//! The lease of the state lock stays on the system clock
//! ([`fleetform_state::now`]): its expiry is judged by every run sharing
//! the state, on other machines and without `FLEETFORM_NOW`, so a moved
//! clock would make a live lease look expired to one run, or its own look
//! live long after it lapsed.

/// Now in unix seconds, as fleetform judges and records it: `FLEETFORM_NOW`
/// when it holds unix seconds or an RFC 3339 time (UTC), else the system
/// clock. A `FLEETFORM_NOW` that is neither is ignored.
pub fn clock() -> i64 {
    std::env::var("FLEETFORM_NOW")
        .ok()
        .and_then(|text| parse(&text))
        .unwrap_or_else(fleetform_state::now)
}

/// A `FLEETFORM_NOW` value in unix seconds: unix seconds, or an RFC 3339
/// time (UTC; the `Z` may be left out).
fn parse(text: &str) -> Option<i64> {
    let text = text.trim();
    text.parse::<i64>().ok().or_else(|| {
        humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn fleetform_now_is_read_as_unix_seconds_or_an_rfc3339_time() {
        assert_eq!(parse(" 1700000000\n"), Some(1_700_000_000));
        assert_eq!(parse("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse("2023-11-14T22:13:20"), Some(1_700_000_000));
        assert_eq!(parse("next tuesday"), None);
    }
}
