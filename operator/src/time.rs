//! Conversions between the API's timestamps (jiff, inside k8s-openapi) and the core's chrono times.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// A Kubernetes `Time` as a chrono UTC time.
pub fn to_chrono(time: &Time) -> DateTime<Utc> {
    let ts = time.0;
    DateTime::from_timestamp(ts.as_second(), ts.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

/// A chrono UTC time as a Kubernetes `Time`.
pub fn to_k8s(time: DateTime<Utc>) -> Time {
    Time(
        Timestamp::new(time.timestamp(), time.timestamp_subsec_nanos() as i32)
            .unwrap_or(Timestamp::UNIX_EPOCH),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_survive_a_round_trip_between_the_two_libraries() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T02:00:01.5Z")
            .unwrap()
            .to_utc();
        assert_eq!(to_chrono(&to_k8s(t)), t);
    }
}
