use std::path::PathBuf;

use clap::Args;

use super::{load_plan, parse_var, EXIT_OK};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The plan file (YAML).
    plan: PathBuf,
    /// Set a plan variable (overrides `vars:` and `${K}` from the environment).
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    vars: Vec<(String, String)>,
}

pub fn validate(a: ValidateArgs) -> u8 {
    let plan = match load_plan(&a.plan, &a.vars) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let steps: usize = plan.scenarios.iter().map(|s| s.steps.len()).sum();
    outln!(
        "{}: plan `{}` is valid: {} scenario(s), {} step(s), {} phase(s), {} threshold(s)",
        a.plan.display(),
        plan.name,
        plan.scenarios.len(),
        steps,
        plan.phases.len(),
        plan.thresholds.len()
    );
    for (i, _) in plan.phases.iter().enumerate() {
        let m = crate::describe::phase_meta(&plan, i);
        outln!("  phase {}: {} [{}]", m.name, m.description, m.scenarios.join(", "));
    }
    for m in &plan.monitors {
        outln!(
            "  monitor {}: {} every {:?}",
            m.name,
            crate::monitor::describe(&m.kind),
            m.interval
        );
    }
    EXIT_OK
}
