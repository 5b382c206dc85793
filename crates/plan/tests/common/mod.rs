//! What the plan tests share.

use std::path::Path;

use stampede_plan::{load_str, LoadOptions, Plan, PlanError};

/// Loads `src` as `plan.yaml` with these `--var`s and this environment.
pub fn load_with(src: &str, vars: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Plan, PlanError> {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let opts = LoadOptions {
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        env: &lookup,
    };
    load_str(src, "plan.yaml", Path::new("."), &opts)
}
