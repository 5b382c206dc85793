//! `stampede k8s`: the manifests are valid Kubernetes objects (read into the official client's
//! models, Debian's python3-kubernetes, and back without loss), and the pods' commands, run
//! here as the pods would run them, make one merged run.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::*;

/// The official client lives in Debian's Python (`apt-get install python3-kubernetes`, which
/// scripts/test.sh does), not necessarily in the first `python3` on the PATH.
const PYTHON: &str = "/usr/bin/python3";

fn k8s_plan(url: &str) -> String {
    format!(
        "name: Scale Out\ntarget: {url}\ndata:\n  ids: {{ file: data/ids.csv }}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: \"GET /fixed?ms=2&id={{{{ ids.id }}}}\" }}\nphases:\n  - {{ name: p, scenario: s, vus: 3, duration: 1s, grace: 1s }}\nthresholds:\n  - p95 < 1s\n"
    )
}

/// Checks the YAML with the official models; returns the script's summary of the objects.
fn checked(yaml: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check_manifests.py");
    let mut child = Command::new(PYTHON)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (Debian's, with python3-kubernetes)");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the official models refuse the manifests: {}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_manifests_are_kubernetes_objects_whose_pods_make_one_merged_run() {
    let t = crate::target::start_target("test");
    let d = tmp();
    std::fs::create_dir(d.path().join("data")).unwrap();
    write(&d.path().join("data"), "ids.csv", "id\n007\n42\n");
    let plan = write(d.path(), "plan.yaml", &k8s_plan(&t.url));
    let print = |start: &str| {
        let out = stampede(&[
            "k8s",
            plan.to_str().unwrap(),
            "--parallelism",
            "3",
            "--image",
            "registry.example/stampede:test",
            "--namespace",
            "load",
            "--start-at",
            start,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let yaml = print("+2m");
    let objects = checked(&yaml);
    let kinds: Vec<&str> = objects
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "ConfigMap", "Job", "Job"]);
    for o in objects.as_array().unwrap() {
        assert_eq!(o["namespace"], "load");
    }
    let (config, generators, merge) = (&objects[1], &objects[2], &objects[3]);
    assert_eq!(objects[0]["access_modes"], serde_json::json!(["ReadWriteMany"]));
    assert_eq!(generators["completion_mode"], "Indexed");
    assert_eq!(
        (generators["completions"].as_u64(), generators["parallelism"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(generators["run_as_non_root"], true);
    let merge_args: Vec<&str> = merge["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(merge_args[..2], ["stampede", "merge"]);
    assert_eq!(merge_args.iter().filter(|a| a.contains("/share-")).count(), 3);
    assert!(merge_args.contains(&"--wait"), "{merge_args:?}");
    assert_eq!(generators["anti_affinity"], true);
    assert_eq!(generators["env"], serde_json::json!(["JOB_COMPLETION_INDEX"]));
    // 3 VUs over 3 pods: the base and one VU's worth.
    assert_eq!(generators["requests"]["memory"], "65Mi");
    assert_eq!(
        generators["config_items"],
        serde_json::json!(["plan.yaml", "data/ids.csv"])
    );
    assert_eq!(
        config["data"]["plan.yaml"].as_str().unwrap(),
        std::fs::read_to_string(&plan).unwrap()
    );
    assert!(
        config["data"]
            .as_object()
            .unwrap()
            .values()
            .any(|v| v == "id\n007\n42\n"),
        "the CSV, as text: {config}"
    );

    // Each pod's command as Kubernetes runs it: $(JOB_COMPLETION_INDEX) expanded to the pod's
    // index, the ConfigMap at /plan and the volume at /runs (here directories of the test's own),
    // from manifests printed now for a start 2 s away (the check above may take longer).
    let fresh: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&print("+2s")).unwrap();
    let (generators, merge) = (
        &fresh[2]["spec"]["template"]["spec"]["containers"][0],
        &fresh[3]["spec"]["template"]["spec"]["containers"][0],
    );
    let cmd = generators["command"].as_array().unwrap();
    assert_eq!(cmd[..2], [serde_json::json!("/bin/sh"), serde_json::json!("-c")]);
    let script = cmd[2].as_str().unwrap();
    assert!(
        script.contains("--segment $(JOB_COMPLETION_INDEX)/3 --start-at "),
        "{script}"
    );
    let root = d.path().join("cluster");
    let plan_dir = root.join("plan");
    std::fs::create_dir_all(plan_dir.join("data")).unwrap();
    std::fs::copy(&plan, plan_dir.join("plan.yaml")).unwrap();
    std::fs::copy(d.path().join("data/ids.csv"), plan_dir.join("data/ids.csv")).unwrap();
    let local = |s: &str| {
        s.replace("/plan/", &format!("{}/plan/", root.display()))
            .replace("/runs/", &format!("{}/runs/", root.display()))
    };
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_stampede"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let pods: Vec<_> = (0..3)
        .map(|i| {
            let pod = local(&script.replace("$(JOB_COMPLETION_INDEX)", &i.to_string()));
            assert!(pod.contains(&format!("--segment {i}/3 ")), "{pod}");
            Command::new("/bin/sh")
                .args(["-c", &pod])
                .env("PATH", &path)
                .env_remove("BASE_URL")
                .output()
        })
        .collect();
    for p in pods {
        let p = p.unwrap();
        assert_eq!(p.status.code(), Some(0), "{}", text(&p));
    }
    let merge_cmd: Vec<String> = merge["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| local(a.as_str().unwrap()))
        .collect();
    assert_eq!(merge_cmd[0], "stampede");
    let m = bin().args(&merge_cmd[1..]).output().unwrap();
    assert_eq!(m.status.code(), Some(0), "{}", text(&m));
    let merged = Path::new(&merge_cmd[merge_cmd.iter().position(|a| a == "--out").unwrap() + 1]).to_path_buf();
    assert!(merged.join("report.md").is_file());
    let s = summary_json(&merged);
    assert!(s["phases"][0]["requests"].as_u64().unwrap() > 100, "{s}");
}

#[test]
fn a_data_file_outside_the_plans_directory_is_refused() {
    let d = tmp();
    let inner = d.path().join("plans");
    std::fs::create_dir(&inner).unwrap();
    write(d.path(), "ids.csv", "id\n1\n");
    let plan = write(
        &inner,
        "plan.yaml",
        "name: x\ntarget: http://127.0.0.1:9\ndata:\n  ids: { file: ../ids.csv }\nscenarios:\n  s:\n    steps:\n      - { name: w, request: \"GET /{{ ids.id }}\" }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n",
    );
    let out = stampede(&["k8s", plan.to_str().unwrap(), "--parallelism", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("outside the plan's directory"),
        "{}",
        text(&out)
    );
    let out = stampede(&["k8s", plan.to_str().unwrap(), "--parallelism", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
