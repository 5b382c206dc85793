//! Kubernetes manifests for a distributed run (`stampede k8s`): the plan in a ConfigMap, one
//! Indexed Job whose pods run one segment each from a common `--start-at` into a shared volume,
//! and a Job that waits for them and merges the shares into one run with its report.
//!
//! The objects are built as data (JSON values in the Kubernetes API's own field names) and
//! printed as YAML, never written as YAML text; `tests/cli/k8s.rs` reads them back into the
//! official Kubernetes client's models.

use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};
use stampede_plan::{Load, Plan};

/// What the manifests are made of, beyond the plan.
#[derive(Debug, Clone)]
pub struct K8sOptions {
    /// Generator pods: the plan's segments.
    pub parallelism: u64,
    pub image: String,
    pub namespace: Option<String>,
    /// RFC 3339: every share's `--start-at`.
    pub start_at: String,
    /// The run's name: the objects' prefix and the runs volume's subdirectory.
    pub run_id: String,
    /// The PersistentVolumeClaim the shares and the merge share (ReadWriteMany).
    pub pvc: String,
    pub storage: String,
    pub storage_class: Option<String>,
    /// CPU per generator pod; also its load threads (`--workers`).
    pub cpu: u32,
    /// How long the merge waits for the shares, in seconds.
    pub merge_wait_s: u64,
}

/// A file the plan reads (a CSV data file), as the ConfigMap carries it.
#[derive(Debug, Clone)]
pub struct PlanFile {
    /// Relative to the plan's directory, e.g. `data/leads.csv`.
    pub path: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("data file `{0}` is outside the plan's directory: the ConfigMap holds the plan's directory only (move the file beside the plan)")]
    Outside(String),
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a plan file stampede can read as YAML")]
    Yaml(String),
}

/// Memory a generator needs beyond its VUs (runtime, program, recorder).
const BASE_MIB: u64 = 64;
/// Memory per VU: BENCHMARKS.md measured 92.9 MB peak RSS for 10,000 closed-model HTTP VUs
/// (9.3 KiB each) and 150.7 MB for 10,000 WebSocket connections (15.4 KiB each); 16 KiB covers
/// both.
const KIB_PER_VU: u64 = 16;

/// The most VUs any phase of the plan runs at once (closed: its VUs or stage peak; open: its
/// `max_vus`).
pub fn peak_vus(plan: &Plan) -> u64 {
    plan.phases
        .iter()
        .map(|p| match &p.load {
            Load::Closed { vus, .. } | Load::Iterations { vus, .. } => u64::from(*vus),
            Load::RampingVus { start_vus, stages } => stages
                .iter()
                .map(|s| s.target.ceil() as u64)
                .chain([u64::from(*start_vus)])
                .max()
                .unwrap_or(0),
            Load::Open { max_vus, .. } | Load::RampingRate { max_vus, .. } => u64::from(*max_vus),
        })
        .max()
        .unwrap_or(0)
}

/// Memory to request for one generator pod running `1/parallelism` of `vus`, in MiB.
pub fn memory_mib(vus: u64, parallelism: u64) -> u64 {
    let share = vus.div_ceil(parallelism.max(1));
    BASE_MIB + (share * KIB_PER_VU).div_ceil(1024)
}

/// The data files the plan names (`data: { NAME: { file: PATH } }`), read from beside it.
pub fn plan_files(plan_path: &Path, text: &str) -> Result<Vec<PlanFile>, K8sError> {
    let doc: Value = serde_saphyr::from_str(text).map_err(|_| K8sError::Yaml(plan_path.display().to_string()))?;
    let base = plan_path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for feeder in doc["data"].as_object().into_iter().flat_map(|m| m.values()) {
        let Some(file) = feeder["file"].as_str() else {
            continue;
        };
        let rel = PathBuf::from(file);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(K8sError::Outside(file.to_string()));
        }
        let path = base.join(&rel);
        let bytes = std::fs::read(&path).map_err(|source| K8sError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let path = rel.to_string_lossy().trim_start_matches("./").to_string();
        if !out.iter().any(|f: &PlanFile| f.path == path) {
            out.push(PlanFile { path, bytes });
        }
    }
    Ok(out)
}

/// A ConfigMap key for a file at `path` (keys allow letters, digits, `-`, `_` and `.`).
fn key(i: usize, path: &str) -> String {
    let k: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("f{i}-{k}")
}

fn meta(name: &str, o: &K8sOptions) -> Value {
    let mut m = json!({ "name": name, "labels": { "app.kubernetes.io/name": "stampede", "stampede/run": o.run_id } });
    if let Some(ns) = &o.namespace {
        m["namespace"] = json!(ns);
    }
    m
}

/// The pod security every stampede container runs with: not root, nothing to escalate to, a
/// read-only root file system (it writes only to the runs volume).
fn security() -> (Value, Value) {
    let pod = json!({ "runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001 });
    let container = json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"] }
    });
    (pod, container)
}

/// The objects, in the order to apply them: PVC, ConfigMap, the generators' Indexed Job, the
/// merge Job.
pub fn manifests(plan: &Plan, plan_text: &str, files: &[PlanFile], o: &K8sOptions) -> Vec<Value> {
    let n = o.parallelism;
    let id = &o.run_id;
    let (pod_security, container_security) = security();
    let mut data = serde_json::Map::new();
    let mut binary = serde_json::Map::new();
    data.insert("plan.yaml".into(), json!(plan_text));
    let mut items = vec![json!({ "key": "plan.yaml", "path": "plan.yaml" })];
    for (i, f) in files.iter().enumerate() {
        let k = key(i, &f.path);
        match std::str::from_utf8(&f.bytes) {
            Ok(t) => data.insert(k.clone(), json!(t)),
            Err(_) => {
                use base64::Engine as _;
                binary.insert(
                    k.clone(),
                    json!(base64::engine::general_purpose::STANDARD.encode(&f.bytes)),
                )
            }
        };
        items.push(json!({ "key": k, "path": f.path }));
    }
    let mut config_map =
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&format!("{id}-plan"), o), "data": data });
    if !binary.is_empty() {
        config_map["binaryData"] = Value::Object(binary);
    }

    let mut pvc_spec = json!({
        "accessModes": ["ReadWriteMany"],
        "resources": { "requests": { "storage": o.storage } }
    });
    if let Some(c) = &o.storage_class {
        pvc_spec["storageClassName"] = json!(c);
    }
    let mut pvc_meta = meta(&o.pvc, o);
    pvc_meta["labels"] = json!({ "app.kubernetes.io/name": "stampede" });
    let pvc = json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": pvc_meta, "spec": pvc_spec });

    let runs = format!("/runs/{id}");
    let mib = memory_mib(peak_vus(plan), n);
    let volumes = json!([
        { "name": "plan", "configMap": { "name": format!("{id}-plan"), "items": items } },
        { "name": "runs", "persistentVolumeClaim": { "claimName": o.pvc } }
    ]);
    let mounts = json!([
        { "name": "plan", "mountPath": "/plan", "readOnly": true },
        { "name": "runs", "mountPath": "/runs" }
    ]);
    // `--share-dir`: the share writes `{runs}/share-I` and judges `abort_on_fail` on every
    // share's numbers there. A share whose own thresholds fail (exit 1) is not a failed pod: only the merged run is
    // judged. Any other exit (2: it could not run; 130: stopped) fails the Job.
    let share = format!(
        "stampede run /plan/plan.yaml --segment $(JOB_COMPLETION_INDEX)/{n} --start-at {start} --workers {cpu} --share-dir {runs} --quiet; code=$?; if [ $code -eq 1 ]; then exit 0; fi; exit $code",
        start = o.start_at,
        cpu = o.cpu
    );
    let generators = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(id, o),
        "spec": {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": n,
            // A share retried would start late and be refused: one try each.
            "backoffLimit": 0,
            "template": {
                "metadata": { "labels": { "app.kubernetes.io/name": "stampede", "stampede/run": id, "stampede/role": "generator" } },
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": pod_security,
                    "affinity": { "podAntiAffinity": { "preferredDuringSchedulingIgnoredDuringExecution": [ {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": { "matchLabels": { "stampede/run": id, "stampede/role": "generator" } }
                        }
                    } ] } },
                    "containers": [ {
                        "name": "generator",
                        "image": o.image,
                        "command": ["/bin/sh", "-c", share],
                        "env": [ {
                            "name": "JOB_COMPLETION_INDEX",
                            "valueFrom": { "fieldRef": { "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']" } }
                        } ],
                        "resources": {
                            "requests": { "cpu": o.cpu.to_string(), "memory": format!("{mib}Mi") },
                            // No CPU limit: throttling would show up as the system's latency.
                            "limits": { "memory": format!("{}Mi", mib * 2) }
                        },
                        "securityContext": container_security,
                        "volumeMounts": mounts
                    } ],
                    "volumes": volumes
                }
            }
        }
    });
    let mut merge_cmd = vec!["stampede".to_string(), "merge".into()];
    merge_cmd.extend((0..n).map(|i| format!("{runs}/share-{i}")));
    merge_cmd.extend([
        "--out".into(),
        format!("{runs}/merged"),
        "--wait".into(),
        format!("{}s", o.merge_wait_s),
    ]);
    let merge = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(&format!("{id}-merge"), o),
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 0,
            "template": {
                "metadata": { "labels": { "app.kubernetes.io/name": "stampede", "stampede/run": id, "stampede/role": "merge" } },
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": pod_security,
                    "containers": [ {
                        "name": "merge",
                        "image": o.image,
                        "command": merge_cmd,
                        "resources": { "requests": { "cpu": "1", "memory": "256Mi" }, "limits": { "memory": "1Gi" } },
                        "securityContext": container_security,
                        "volumeMounts": [ { "name": "runs", "mountPath": "/runs" } ]
                    } ],
                    "volumes": [ { "name": "runs", "persistentVolumeClaim": { "claimName": o.pvc } } ]
                }
            }
        }
    });
    vec![pvc, config_map, generators, merge]
}

/// The objects as one YAML stream (`---` between documents).
pub fn to_yaml(objects: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(o).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_follows_the_share_of_vus() {
        assert_eq!(memory_mib(0, 3), BASE_MIB);
        // 10,000 VUs over 4 pods: 2,500 × 16 KiB = 39.1 MiB each, rounded up.
        assert_eq!(memory_mib(10_000, 4), BASE_MIB + 40);
        assert_eq!(key(2, "data/leads 1.csv"), "f2-data_leads_1.csv");
    }
}
