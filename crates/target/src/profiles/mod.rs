//! Built-in profiles, modelled on the seed reports. Each is a YAML config (the same format users
//! write, so the profiles double as examples) embedded in the binary; its header comment holds
//! the capacity arithmetic.

use crate::config::{parse_config, Config};

const PROFILES: &[(&str, &str)] = &[
    ("voice-gateway", include_str!("voice-gateway.yaml")),
    ("insurance-leads", include_str!("insurance-leads.yaml")),
    ("test", include_str!("test.yaml")),
];

/// Names of the built-in profiles.
pub fn profile_names() -> &'static [&'static str] {
    &["voice-gateway", "insurance-leads", "test"]
}

/// A built-in profile by name; `None` for an unknown name.
pub fn profile(name: &str) -> Option<Config> {
    let (file, src) = PROFILES.iter().find(|(n, _)| *n == name)?;
    // Profiles are tested to parse; a failure here would be a build defect, reported as None.
    parse_config(src, &format!("profile:{file}")).ok()
}

/// The YAML source of a built-in profile (to print it or start a custom config from it).
pub fn profile_source(name: &str) -> Option<&'static str> {
    PROFILES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_profiles_parse() {
        assert_eq!(profile_names().len(), PROFILES.len());
        for name in profile_names() {
            let src = profile_source(name).unwrap();
            if let Err(e) = parse_config(src, name) {
                panic!("{e}");
            }
        }
        assert!(profile("nope").is_none());
    }

    #[test]
    fn voice_gateway_capacity_arithmetic() {
        let c = profile("voice-gateway").unwrap();
        let pool = &c.services[0];
        let mean: f64 = c
            .endpoints
            .iter()
            .map(|e| (e.service_time.mean() + e.cpu).as_secs_f64())
            .sum::<f64>()
            / c.endpoints.len() as f64;
        let x_max = pool.workers as f64 / mean;
        let n_star = x_max * (mean + 0.6);
        assert!((75.0..85.0).contains(&x_max), "{x_max}");
        assert!((50.0..60.0).contains(&n_star), "{n_star}");
    }
}
