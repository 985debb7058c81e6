//! When an agent may trade: [`TradingHours`], [`TimeOfDay`], [`Weekday`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PolicyError;

const MINUTES_PER_DAY: u16 = 24 * 60;
const MAX_TIME_ZONE_LEN: usize = 64;

/// A wall-clock time with minute precision, `00:00` to `23:59`.
///
/// Text and JSON form is `"HH:MM"` with exactly two digits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// Builds a time from minutes since midnight; fails for 1440 and above.
    pub fn from_minutes(minutes: u16) -> Result<TimeOfDay, PolicyError> {
        if minutes < MINUTES_PER_DAY {
            Ok(TimeOfDay(minutes))
        } else {
            Err(PolicyError::invalid(
                "tradingHours",
                "a time of day must be before 24:00",
            ))
        }
    }

    /// Minutes since midnight, `0..1440`.
    pub fn minutes(&self) -> u16 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl FromStr for TimeOfDay {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PolicyError::invalid("tradingHours", "expected a time of day as \"HH:MM\"");
        let bytes = s.as_bytes();
        let digit = |i: usize| -> Result<u16, PolicyError> {
            match bytes.get(i) {
                Some(b) if b.is_ascii_digit() => Ok(u16::from(b - b'0')),
                _ => Err(err()),
            }
        };
        if bytes.len() != 5 || bytes[2] != b':' {
            return Err(err());
        }
        let hours = digit(0)? * 10 + digit(1)?;
        let minutes = digit(3)? * 10 + digit(4)?;
        if hours >= 24 || minutes >= 60 {
            return Err(err());
        }
        TimeOfDay::from_minutes(hours * 60 + minutes)
    }
}

/// The API document's `TimeOfDay`: `"HH:MM"`, 00:00 to 23:59.
impl utoipa::PartialSchema for TimeOfDay {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^([01][0-9]|2[0-3]):[0-5][0-9]$"))
            .description(Some("A wall-clock time, \"HH:MM\" (00:00 to 23:59)"))
            .examples(["08:00"])
            .into()
    }
}

impl utoipa::ToSchema for TimeOfDay {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("TimeOfDay")
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A day of the week; JSON and text form `"mon"` … `"sun"` (read in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

crate::case_insensitive_enum!(
    Weekday,
    [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun
    ]
);

impl Weekday {
    /// Every weekday, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// The JSON/text name, e.g. `"mon"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Weekday {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Weekday::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                PolicyError::invalid("tradingHours.weekdays", "expected one of mon … sun")
            })
    }
}

/// The window in which the agent may act.
///
/// `start` is inclusive and `end` exclusive, in local time of `time_zone`.
/// When `start > end` the window crosses midnight: `22:00`–`06:00` on `fri`
/// runs from Friday 22:00 to Saturday 06:00, i.e. `weekdays` names the day on
/// which a window *opens*. `start == end` is rejected as ambiguous (empty or
/// all day); leave `tradingHours` out for no restriction.
///
/// `time_zone` must look like an IANA tz database name (`UTC`,
/// `Europe/Berlin`, `America/Argentina/Buenos_Aires`, `Etc/GMT+5`): 1 to 64
/// characters of `[A-Za-z0-9_+/-]`, with no empty `/`-separated segment. Whether
/// the zone exists is not checked here, as that needs a tz database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawTradingHours")]
pub struct TradingHours {
    /// When the window opens (inclusive).
    pub start: TimeOfDay,
    /// When the window closes (exclusive); before `start` if it crosses midnight.
    pub end: TimeOfDay,
    /// IANA time zone name the times are expressed in.
    pub time_zone: String,
    /// Days on which the window opens; non-empty, no duplicates, order kept as given.
    pub weekdays: Vec<Weekday>,
}

impl TradingHours {
    /// Checks the rules documented on [`TradingHours`].
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.start == self.end {
            return Err(PolicyError::invalid(
                "tradingHours",
                "start and end must differ",
            ));
        }
        if !is_time_zone_name(&self.time_zone) {
            return Err(PolicyError::invalid(
                "tradingHours.timeZone",
                "expected an IANA time zone name such as \"Europe/Berlin\"",
            ));
        }
        if self.weekdays.is_empty() {
            return Err(PolicyError::invalid(
                "tradingHours.weekdays",
                "at least one weekday is required",
            ));
        }
        let mut seen = BTreeSet::new();
        if let Some(day) = self.weekdays.iter().find(|d| !seen.insert(**d)) {
            return Err(PolicyError::invalid(
                "tradingHours.weekdays",
                format!("duplicate weekday {day}"),
            ));
        }
        Ok(())
    }

    /// Checks that `time_zone` names a zone of the bundled tz database (not only that it looks
    /// like one): a mandate whose zone does not exist would deny every order. Run when a
    /// mandate is registered or changed; certificates already issued keep decoding whatever
    /// the database says.
    pub fn check_time_zone_exists(&self) -> Result<(), PolicyError> {
        match jiff::tz::TimeZone::get(&self.time_zone) {
            Ok(_) => Ok(()),
            Err(_) => Err(PolicyError::invalid(
                "tradingHours.timeZone",
                format!(
                    "{:?} is not a time zone of the IANA tz database (e.g. \"Europe/Berlin\", \"America/New_York\", \"UTC\")",
                    self.time_zone
                ),
            )),
        }
    }

    /// Whether the window runs past midnight into the next day.
    pub fn crosses_midnight(&self) -> bool {
        self.start > self.end
    }
}

fn is_time_zone_name(s: &str) -> bool {
    (1..=MAX_TIME_ZONE_LEN).contains(&s.len())
        && s.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
        })
}

/// When the agent may act: from `start` (inclusive) to `end` (exclusive) in local time of
/// `timeZone`, on `weekdays`. `start` after `end` crosses midnight, and `weekdays` then names
/// the days on which the window opens; `start` equal to `end` is refused.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"start": "08:00", "end": "17:00", "timeZone": "Europe/Berlin",
                         "weekdays": ["mon", "tue", "wed", "thu", "fri"]})))]
struct RawTradingHours {
    /// When the window opens (inclusive).
    start: TimeOfDay,
    /// When it closes (exclusive); before `start` if the window crosses midnight.
    end: TimeOfDay,
    /// IANA time zone name, e.g. `Europe/Berlin`: 1 to 64 of `A-Z a-z 0-9 _ + / -`, no empty
    /// `/`-separated segment. Registering or changing a mandate also needs the zone to exist
    /// in the daemon's tz database.
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")]
    time_zone: String,
    /// Days on which the window opens: at least one, no duplicates.
    #[schema(min_items = 1, max_items = 7)]
    weekdays: Vec<Weekday>,
}

crate::schema_of!(TradingHours, "TradingHours", RawTradingHours);

impl TryFrom<RawTradingHours> for TradingHours {
    type Error = PolicyError;

    fn try_from(raw: RawTradingHours) -> Result<Self, Self::Error> {
        let hours = TradingHours {
            start: raw.start,
            end: raw.end,
            time_zone: raw.time_zone,
            weekdays: raw.weekdays,
        };
        hours.validate()?;
        Ok(hours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_text() {
        for (text, minutes) in [("00:00", 0), ("08:30", 510), ("23:59", 1439)] {
            let t: TimeOfDay = text.parse().unwrap();
            assert_eq!(t.minutes(), minutes);
            assert_eq!(t.to_string(), text);
        }
        for bad in [
            "",
            "8:00",
            "08:0",
            "24:00",
            "12:60",
            "12-00",
            "12:000",
            "+1:00",
            "1a:00",
            "０８:00",
        ] {
            assert!(bad.parse::<TimeOfDay>().is_err(), "accepted {bad:?}");
        }
        assert!(TimeOfDay::from_minutes(1439).is_ok());
        assert!(TimeOfDay::from_minutes(1440).is_err());
    }

    #[test]
    fn weekday_names() {
        for day in Weekday::ALL {
            assert_eq!(day.to_string().parse::<Weekday>().unwrap(), day);
            let json = serde_json::to_string(&day).unwrap();
            assert_eq!(json, format!("\"{day}\""));
            assert_eq!(serde_json::from_str::<Weekday>(&json).unwrap(), day);
        }
        assert!("Mon".parse::<Weekday>().is_err());
        assert!(serde_json::from_str::<Weekday>("\"monday\"").is_err());
    }

    fn hours(json: &str) -> Result<TradingHours, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn trading_hours_json() {
        let json = r#"{"start":"08:00","end":"17:00","timeZone":"UTC","weekdays":["mon","tue","wed","thu","fri"]}"#;
        let h = hours(json).unwrap();
        assert_eq!(h.start.minutes(), 480);
        assert!(!h.crosses_midnight());
        assert_eq!(serde_json::to_string(&h).unwrap(), json);

        let night =
            hours(r#"{"start":"22:00","end":"06:00","timeZone":"Asia/Tokyo","weekdays":["fri"]}"#)
                .unwrap();
        assert!(night.crosses_midnight());
    }

    #[test]
    fn trading_hours_rejections() {
        for bad in [
            r#"{"start":"08:00","end":"08:00","timeZone":"UTC","weekdays":["mon"]}"#,
            r#"{"start":"08:00","end":"17:00","timeZone":"UTC","weekdays":[]}"#,
            r#"{"start":"08:00","end":"17:00","timeZone":"UTC","weekdays":["mon","mon"]}"#,
            r#"{"start":"08:00","end":"17:00","timeZone":"","weekdays":["mon"]}"#,
            r#"{"start":"08:00","end":"17:00","timeZone":"Europe//Berlin","weekdays":["mon"]}"#,
            r#"{"start":"08:00","end":"17:00","timeZone":"/UTC","weekdays":["mon"]}"#,
            r#"{"start":"08:00","end":"17:00","timeZone":"Europe/Berlin ","weekdays":["mon"]}"#,
            r#"{"start":"08:00","end":"17:00","timeZone":"../etc/passwd","weekdays":["mon"]}"#,
            r#"{"start":"08:00","end":"17:00","timeZone":"UTC","weekdays":["mon"],"x":1}"#,
            r#"{"start":"08:00","timeZone":"UTC","weekdays":["mon"]}"#,
            r#"{"start":"8:00","end":"17:00","timeZone":"UTC","weekdays":["mon"]}"#,
        ] {
            assert!(hours(bad).is_err(), "accepted {bad}");
        }
        let long_zone = format!(
            r#"{{"start":"08:00","end":"17:00","timeZone":"{}","weekdays":["mon"]}}"#,
            "A".repeat(65)
        );
        assert!(hours(&long_zone).is_err());
        let mars: TradingHours = serde_json::from_str(
            r#"{"start":"08:00","end":"17:00","timeZone":"Mars/Olympus","weekdays":["mon"]}"#,
        )
        .unwrap();
        let e = mars.check_time_zone_exists().unwrap_err().to_string();
        assert!(e.contains("tradingHours.timeZone"), "{e}");
        for good in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
            "Etc/GMT-14",
        ] {
            assert!(is_time_zone_name(good), "{good}");
            let h = TradingHours {
                start: TimeOfDay(0),
                end: TimeOfDay(60),
                time_zone: good.to_owned(),
                weekdays: vec![Weekday::Mon],
            };
            assert!(h.check_time_zone_exists().is_ok(), "{good}");
        }
    }
}
