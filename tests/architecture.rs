//! Architecture invariants that the compiler cannot check, tested against the real dependency graph.
//!
//! `theta-mesh` and `theta-crdt` must never depend, directly or transitively, on networking, async
//! runtimes, the GPU, windowing, XR or the ECS: they are the deterministic core that every peer runs
//! identically and that a simulator drives without I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Crate-name prefixes the deterministic core must never pull in.
const FORBIDDEN: &[&str] = &[
    "iroh", "tokio", "wgpu", "winit", "openxr", "bevy", "egui", "ash",
];

/// Names of every package `root` depends on through normal and build dependencies.
fn closure(meta: &Value, root: &str) -> BTreeSet<String> {
    let packages = meta["packages"].as_array().expect("packages");
    let name_of: BTreeMap<&str, &str> = packages
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root_id = name_of
        .iter()
        .find(|(_, n)| **n == root)
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("{root} is not in the workspace"));
    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    let mut names = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let runtime = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if runtime {
                let pkg = dep["pkg"].as_str().unwrap();
                names.insert(name_of[pkg].to_string());
                stack.push(pkg);
            }
        }
    }
    names
}

fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

#[test]
fn mesh_and_crdt_stay_free_of_io_gpu_xr_and_ecs() {
    let meta = metadata();
    for core in ["theta-mesh", "theta-crdt"] {
        let deps = closure(&meta, core);
        let bad: Vec<&String> = deps
            .iter()
            .filter(|d| FORBIDDEN.iter().any(|f| d.starts_with(f)))
            .collect();
        assert!(bad.is_empty(), "{core} depends on {bad:?}");
    }
}

#[test]
fn the_dependency_walk_sees_real_edges() {
    // Guards the guard: if the walk found nothing, the test above would pass vacuously.
    let meta = metadata();
    assert!(closure(&meta, "theta").contains("theta-crdt"));
    assert!(closure(&meta, "theta-crdt").contains("theta-mesh"));
    assert!(closure(&meta, "theta-mesh").contains("libm"));
    assert!(
        !closure(&meta, "theta-mesh").contains("theta-crdt"),
        "mesh must not depend on crdt"
    );
}
