//! Every WGSL file under `shaders/` parses and validates with naga, and is registered (embedded) in the
//! binary. Needs no adapter.

use cobrar_gpu::gpu::shaders::{ALL, validate_wgsl};

#[test]
fn every_shader_file_validates_and_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("shaders/ folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no shaders found in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        let path = format!("shaders/{f}");
        let source = std::fs::read_to_string(dir.join(f)).unwrap();
        if let Err(e) = validate_wgsl(&path, &source) {
            failures.push(format!("{e}"));
        }
        let embedded = ALL.iter().find(|s| s.path == path);
        let embedded = embedded.unwrap_or_else(|| panic!("{path} is not in gpu::shaders::ALL"));
        assert_eq!(embedded.source, source, "{path}: embedded copy is stale");
    }
    assert!(
        failures.is_empty(),
        "naga rejected shaders:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        ALL.len(),
        files.len(),
        "registry lists a shader that has no file"
    );
}

#[test]
fn broken_shader_reports_file_and_line() {
    let source = "@compute @workgroup_size(1)\nfn main() {\n    let x: u32 = 1.5;\n}\n";
    let err = validate_wgsl("shaders/broken.wgsl", source)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("shaders/broken.wgsl:3:"),
        "no file:line in naga's message: {err}"
    );

    let invalid = "@group(0) @binding(0) var<storage, read> a: array<f32>;\n\
                   @compute @workgroup_size(1)\nfn main() {\n    a[0] = 1.0;\n}\n";
    let err = validate_wgsl("shaders/readonly.wgsl", invalid)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("shaders/readonly.wgsl"),
        "no file in naga's message: {err}"
    );
}
