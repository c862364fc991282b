//! Every stage file `shaders/*.wgsl`, its includes expanded, parses and validates with naga and is
//! registered (embedded) in the binary; errors in a composed stage name the original file and line; every kernel's Rust parameter block matches naga's reflection of its WGSL struct (field
//! names, offsets, size) and every binding its entry point uses is reflected. Needs no adapter.

use cobrar_gpu::gpu::shaders::{ALL, ShaderSource, compose, validate_wgsl};

#[test]
fn every_shader_file_validates_and_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let composed = compose::compose_dir(&dir).expect("shaders/ composes");
    assert!(
        !composed.is_empty(),
        "no shaders found in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for (f, c) in &composed {
        let path = format!("shaders/{f}");
        if let Err(e) = validate_wgsl(&path, &c.source) {
            failures.push(format!("{e}"));
        }
        let embedded = ALL.iter().find(|s| s.path == path);
        let embedded = embedded.unwrap_or_else(|| panic!("{path} is not in gpu::shaders::ALL"));
        assert_eq!(embedded.source, c.source, "{path}: embedded copy is stale");
        if let Err(e) = embedded.validate() {
            failures.push(format!("{e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "naga rejected shaders:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        ALL.len(),
        composed.len(),
        "registry lists a shader that has no file"
    );
}

/// A stage of in-memory files, composed as build.rs composes `shaders/` (leaked: a `ShaderSource` is
/// static).
fn composed_stage(files: &[(&str, &str)]) -> ShaderSource {
    let mut read = |f: &str| {
        files
            .iter()
            .find(|(n, _)| *n == f)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| "missing".to_string())
    };
    let c = compose::compose(files[0].0, &mut read).unwrap();
    let lines: Vec<compose::Segment<'static>> = c
        .segments
        .into_iter()
        .map(|(first, f, line)| (first, &*Box::leak(f.into_boxed_str()), line))
        .collect();
    ShaderSource {
        name: "stage",
        path: "shaders/stage.wgsl",
        source: Box::leak(c.source.into_boxed_str()),
        lines: Box::leak(lines.into_boxed_slice()),
    }
}

#[test]
fn errors_in_a_composed_stage_name_the_file_and_line_they_were_written_at() {
    let stage = "// a stage\n//!include lib/util.wgsl\n@compute @workgroup_size(1)\nfn main() {\n    \
                 let y: u32 = twice(1u);\n    let z: u32 = 1.5;\n}\n";
    let lib = "// util\nfn twice(x: u32) -> u32 {\n    return x * 2u;\n}\n";
    // A parse error in the stage, after the library's lines.
    let err = composed_stage(&[("stage.wgsl", stage), ("lib/util.wgsl", lib)])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("shaders/stage.wgsl:6:"), "{err}");
    assert!(err.contains("6 │     let z: u32 = 1.5;"), "{err}");
    // One in the library.
    let broken = "// util\nfn twice(x: u32) -> u32 {\n    return x * 2.0;\n}\n";
    let fixed = stage.replace("1.5", "1u");
    let err = composed_stage(&[("stage.wgsl", &fixed), ("lib/util.wgsl", broken)])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("shaders/lib/util.wgsl:3:"), "{err}");
    assert!(!err.contains("shaders/stage.wgsl:"), "{err}");
    // A validation error (past the parser) in the library.
    let invalid = "// util\n@group(0) @binding(0) var<storage, read> a: array<u32>;\n\
                   fn twice(x: u32) -> u32 {\n    a[0] = x;\n    return x * 2u;\n}\n";
    let err = composed_stage(&[("stage.wgsl", &fixed), ("lib/util.wgsl", invalid)])
        .validate()
        .unwrap_err()
        .to_string();
    // naga points at the function (line 3) and marks the store in its snippet.
    assert!(err.contains("shaders/lib/util.wgsl:3:"), "{err}");
    assert!(err.contains("4 │ │     a[0] = x;"), "{err}");
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
