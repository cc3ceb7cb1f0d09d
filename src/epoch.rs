//! The one `SOURCE_DATE_EPOCH` rule, for packages and images alike.
//!
//! Every timestamp forge writes (package `builddate` and file mtimes, image
//! `created`, layer mtimes, SBOM and provenance times) comes from one epoch
//! per artifact, chosen by [`source_date_epoch`]:
//!
//! 1. the newest time among the artifact's own inputs that have one: for a
//!    package, the commit time of the last commit touching its recipe folder;
//!    for an image, that of the last commit touching `images/NAME.toml` and
//!    the `builddate`s of its packages (which follow this same rule);
//! 2. with no such time (nothing in git), `SOURCE_DATE_EPOCH` from the
//!    environment, which must then be a non-negative number of seconds;
//! 3. else [`DEFAULT_EPOCH`], 1980-01-01.
//!
//! Inputs come first so that one edited recipe does not move the bytes of
//! every other package, and an environment variable cannot make two
//! checkouts of the same commit disagree; the variable only dates what git
//! cannot.

/// The fallback epoch: 1980-01-01T00:00:00Z (the earliest time zip stores).
pub const DEFAULT_EPOCH: i64 = 315_532_800;

/// The environment variable consulted when the inputs carry no time.
pub const ENV: &str = "SOURCE_DATE_EPOCH";

/// Where an epoch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochSource {
    /// The inputs' newest time (git commit times, package build dates).
    Inputs,
    /// `SOURCE_DATE_EPOCH` from the environment.
    Environment,
    /// [`DEFAULT_EPOCH`].
    Default,
}

/// `SOURCE_DATE_EPOCH` is set to something other than a number of seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SOURCE_DATE_EPOCH=`{value}` is not a non-negative number of seconds")]
pub struct InvalidEpoch {
    /// The value found.
    pub value: String,
}

/// Apply the rule (see the module docs) to the inputs' newest time and the
/// environment value `env`. The environment is only parsed when it is used.
pub fn source_date_epoch(
    inputs_newest: Option<i64>,
    env: Option<&str>,
) -> Result<(i64, EpochSource), InvalidEpoch> {
    if let Some(t) = inputs_newest {
        return Ok((t.max(0), EpochSource::Inputs));
    }
    match env.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok((n, EpochSource::Environment)),
            _ => Err(InvalidEpoch {
                value: v.to_string(),
            }),
        },
        None => Ok((DEFAULT_EPOCH, EpochSource::Default)),
    }
}

/// [`source_date_epoch`] with `SOURCE_DATE_EPOCH` read from this process's
/// environment.
pub fn from_env(inputs_newest: Option<i64>) -> Result<(i64, EpochSource), InvalidEpoch> {
    let env = std::env::var(ENV).ok();
    source_date_epoch(inputs_newest, env.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule() {
        use EpochSource::*;
        type Want = Result<(i64, EpochSource), &'static str>;
        let cases: [(Option<i64>, Option<&str>, Want); 8] = [
            (Some(1_700_000_000), Some("42"), Ok((1_700_000_000, Inputs))),
            (
                Some(1_700_000_000),
                Some("junk"),
                Ok((1_700_000_000, Inputs)),
            ),
            (Some(1_700_000_000), None, Ok((1_700_000_000, Inputs))),
            (Some(-5), None, Ok((0, Inputs))),
            (None, Some(" 42 "), Ok((42, Environment))),
            (None, Some(""), Ok((DEFAULT_EPOCH, Default))),
            (None, None, Ok((DEFAULT_EPOCH, Default))),
            (None, Some("-1"), Err("-1")),
        ];
        for (inputs, env, want) in cases {
            let got = source_date_epoch(inputs, env).map_err(|e| e.value);
            assert_eq!(got, want.map_err(String::from), "{inputs:?} {env:?}");
        }
    }
}
