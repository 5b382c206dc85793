//! `stampede k8s PLAN --parallelism N`: prints the Kubernetes manifests of a distributed run
//! (`crate::k8s`), to pipe into `kubectl apply -f -`.

use std::path::PathBuf;

use clap::Args;

use super::{host, load_plan, EXIT_INVALID, EXIT_OK};
use crate::k8s::{manifests, plan_files, to_yaml, K8sOptions};

#[derive(Debug, Args)]
pub struct K8sArgs {
    /// The plan file (YAML); it and the data files it names go into a ConfigMap.
    plan: PathBuf,
    /// Generator pods, one segment each.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
    parallelism: u64,
    /// The stampede image the pods run (built from the repository's Dockerfile).
    #[arg(long, default_value = concat!("stampede:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// The namespace of every object (default: kubectl's current one).
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// When the generators start (RFC 3339, or +DURATION from now): apply the manifests well
    /// before, so every pod is up in time.
    #[arg(long, value_name = "TIME|+DURATION", default_value = "+2m")]
    start_at: String,
    /// The ReadWriteMany PersistentVolumeClaim for the run directories (made if missing).
    #[arg(long, default_value = "stampede-runs")]
    pvc: String,
    /// Its size.
    #[arg(long, default_value = "5Gi")]
    storage: String,
    /// Its storage class (default: the cluster's).
    #[arg(long)]
    storage_class: Option<String>,
    /// CPUs requested per generator pod, and its load threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    cpu: u32,
}

pub fn k8s(a: K8sArgs) -> u8 {
    let plan = match load_plan(&a.plan, &[]) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if plan.phases.is_empty() {
        eprintln!(
            "error: {}: the plan has no `phases`, so there is nothing to run",
            a.plan.display()
        );
        return EXIT_INVALID;
    }
    let text = match std::fs::read_to_string(&a.plan) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", a.plan.display());
            return EXIT_INVALID;
        }
    };
    let files = match plan_files(&a.plan, &text) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let now = std::time::SystemTime::now();
    let start = match super::start_at::parse_start_at(&a.start_at, now) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --start-at {e}");
            return EXIT_INVALID;
        }
    };
    let ahead = start.duration_since(now).unwrap_or_default().as_secs();
    let planned: f64 = plan
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| crate::describe::phase_meta(&plan, i).planned_s + p.grace.as_secs_f64())
        .sum();
    let o = K8sOptions {
        parallelism: a.parallelism,
        image: a.image,
        namespace: a.namespace,
        start_at: crate::runner::rfc3339(start),
        run_id: run_id(&plan.name),
        pvc: a.pvc,
        storage: a.storage,
        storage_class: a.storage_class,
        cpu: a.cpu,
        // The start, the run with its grace periods, and ten minutes for slow pods and disks.
        merge_wait_s: ahead + planned.ceil() as u64 + 600,
    };
    match to_yaml(&manifests(&plan, &text, &files, &o)) {
        Ok(y) => {
            out!("{y}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: the manifests cannot be written as YAML: {e}");
            EXIT_INVALID
        }
    }
}

/// `stampede-<plan>-<UTC time>`, a DNS label (lower case, at most 63 characters) for the objects'
/// names and the run's directory on the volume.
fn run_id(plan_name: &str) -> String {
    let slug: String = plan_name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug: String = slug.trim_matches('-').chars().take(30).collect();
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "run" } else { slug };
    format!("stampede-{slug}-{}", host::now_compact())
}
