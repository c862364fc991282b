//! Every WGSL file under `shaders/` parses and validates with naga and is registered (embedded) in the
//! binary; every kernel's Rust parameter block matches naga's reflection of its WGSL struct (field
//! names, offsets, size) and every binding its entry point uses is reflected. Needs no adapter.

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

#[test]
fn every_parameter_block_matches_its_wgsl_struct() {
    use cobrar_gpu::gpu::kernel::Slot;
    use cobrar_gpu::gpu::params::check_against;
    let mut failures = Vec::new();
    for def in cobrar_gpu::kernels::ALL {
        let module = def.shader.validate().unwrap();
        if let Err(e) = check_against(&def.params, &module) {
            failures.push(format!("{}: {e}", def.name));
        }
        let bindings = def.bindings().unwrap();
        let uniforms: Vec<_> = bindings
            .iter()
            .filter_map(|b| match b.slot {
                Slot::Uniform { size } => Some(size),
                _ => None,
            })
            .collect();
        assert_eq!(
            uniforms,
            vec![def.params.size as u64],
            "{}: one uniform parameter block of the declared size",
            def.name
        );
        assert!(
            bindings.iter().any(|b| b.slot == Slot::ReadWrite),
            "{}: writes nothing",
            def.name
        );
        for (name, _) in def.constants {
            assert!(
                def.shader.source.contains(&format!("override {name}")),
                "{}: constant {name} is not an override of {}",
                def.name,
                def.shader.path
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_drifted_parameter_block_is_caught() {
    use cobrar_gpu::gpu::params::{ParamInfo, check_against};
    let module = cobrar_gpu::gpu::shaders::ADAM_DENSE.validate().unwrap();
    // The same fields with two swapped, and one missing.
    let swapped = ParamInfo {
        size: 32,
        fields: &[
            ("groups_x", 0),
            ("n4", 4),
            ("step_size", 8),
            ("bc2_sqrt", 12),
            ("beta1", 16),
            ("beta2", 20),
            ("eps", 24),
            ("weight_decay", 28),
        ],
    };
    assert!(
        check_against(&swapped, &module)
            .unwrap_err()
            .contains("fields differ")
    );
    let short = ParamInfo {
        size: 28,
        fields: &swapped.fields[..7],
    };
    assert!(check_against(&short, &module).is_err());
}
