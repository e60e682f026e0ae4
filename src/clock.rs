//! fleetform's clock, and how a time is written for people.

/// The clock fleetform judges ages by (image retain, rollback window,
/// max_lifetime) and stamps versions with: now, unless `FLEETFORM_NOW` gives
/// unix seconds or an RFC 3339 time (to rehearse a prune, or in tests).
pub(crate) fn clock() -> i64 {
    std::env::var("FLEETFORM_NOW")
        .ok()
        .and_then(|text| {
            text.trim().parse::<i64>().ok().or_else(|| {
                humantime::parse_rfc3339_weak(text.trim().trim_end_matches('Z'))
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64)
            })
        })
        .unwrap_or_else(fleetform_state::now)
}

/// RFC 3339 (UTC) of a unix time.
pub(crate) fn rfc3339(unix: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}
