//! Goldens: the MLIR (aie-opt syntax) and the backend's `--dry-run` plan of every spec in
//! kernel-specs/ (found by walking the directory, so new specs are covered), compared with
//! the reviewed files in golden/. Any difference fails; with `CI=true` insta never writes.
//! To accept a reviewed change: `INSTA_UPDATE=always cargo test --release -p aiec --test mlir_golden`.

use std::path::Path;

use aiec::backend::{build_steps, BuildRequest};
use aiec::spec::Spec;

#[allow(dead_code)]
mod common;
use common::specs::{kernel_specs, spec_files_in};

/// `kernel-specs/whisper-base/enc_fc1.toml` -> `whisper-base__enc_fc1`.
fn snapshot_name(root: &Path, spec: &Path) -> String {
    let rel = spec.strip_prefix(root).unwrap().with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("__")
}

#[test]
fn every_spec_matches_its_golden_mlir_and_plan() {
    let root = kernel_specs();
    let all = spec_files_in(&root);
    assert!(!all.is_empty(), "no specs found under {}", root.display());

    let mut failures = Vec::new();
    for path in &all {
        let name = snapshot_name(&root, path);
        let built = Spec::load(path)
            .map_err(|e| e.to_string())
            .and_then(|s| s.build().map_err(|e| e.to_string()));
        let design = match built {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let mlir = match aiec::mlir::emit(&design) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        // Relative paths, as `aiec build` uses by default, keep the plan machine-independent.
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let out_dir = Path::new("build").join(&stem);
        let request = BuildRequest::for_design(&design, out_dir.join("design.mlir"), &out_dir)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let dry_run = build_steps(&request)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .render();
        insta::with_settings!({
            snapshot_path => "../golden",
            prepend_module_to_snapshot => false,
            description => path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string(),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("{name}.mlir"), mlir);
            insta::assert_snapshot!(format!("{name}.plan"), dry_run);
        });
    }
    assert!(
        failures.is_empty(),
        "{} of {} specs do not compile to MLIR aie-opt accepts:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
