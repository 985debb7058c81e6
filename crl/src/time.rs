use der::asn1::{GeneralizedTime, UtcTime};
use x509_cert::time::Time;

/// 2050-01-01T00:00:00Z: the first instant UTCTime cannot express.
const Y2050: u64 = 2_524_608_000;

/// An X.509 time for unix seconds: UTCTime through 2049, GeneralizedTime after (RFC 5280
/// §4.1.2.5 and §5.1.2.4). Negative times are refused.
pub fn x509_time(unix: i64) -> der::Result<Time> {
    let secs = u64::try_from(unix).map_err(|_| der::ErrorKind::DateTime)?;
    let d = std::time::Duration::from_secs(secs);
    if secs < Y2050 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(d)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_time_through_2049_generalized_after() {
        assert!(matches!(
            x509_time(2_524_607_999).unwrap(),
            Time::UtcTime(_)
        ));
        assert!(matches!(
            x509_time(2_524_608_000).unwrap(),
            Time::GeneralTime(_)
        ));
        assert!(x509_time(-1).is_err());
    }
}
