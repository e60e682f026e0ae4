//! How a time is written for people (the clock itself is
//! [`fleetform_ops::clock`]).

/// RFC 3339 (UTC) of a unix time.
pub(crate) fn rfc3339(unix: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}
