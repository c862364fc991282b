//! Every shader through every backend's compiler: each kernel's entry point with the override
//! constants the program sets, translated by naga to SPIR-V, GLSL ES 3.10, GLSL 4.30 core, MSL and
//! HLSL. The translations themselves run in every `cargo test`; the ignored test also validates
//! SPIR-V with `spirv-val` (Vulkan 1.1 environment) and both GLSL dialects with `glslangValidator`
//! (`.ci/run` installs Debian's spirv-tools and glslang-tools and runs it). No compiler for MSL or
//! HLSL exists on Linux: for those, naga's translation succeeding is what is checked.

use std::path::Path;
use std::process::Command;

use cobrar_gpu::gpu::kernel::KernelDef;
use naga::back;
use naga::valid::ModuleInfo;

/// One translation target.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    SpirV,
    GlslEs310,
    Glsl430,
    Msl,
    Hlsl,
}

const TARGETS: [Target; 5] = [
    Target::SpirV,
    Target::GlslEs310,
    Target::Glsl430,
    Target::Msl,
    Target::Hlsl,
];

/// What a kernel translates to on one target.
enum Output {
    SpirV(Vec<u32>),
    Text(String),
}

/// `shader entry [CONST=v, …]` for failure messages.
fn describe(def: &KernelDef) -> String {
    let constants: Vec<String> = def
        .constants
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{} (entry {}, overrides [{}], kernel {})",
        def.shader.path,
        def.entry,
        constants.join(", "),
        def.name
    )
}

/// The kernel's module with its override constants applied, and naga's analysis of it.
fn specialised(def: &KernelDef) -> Result<(naga::Module, ModuleInfo), String> {
    // Errors name the file and line a composed line was written at (a library's, where it is in one).
    let (module, info) = def
        .shader
        .validate_with_info()
        .map_err(|e| format!("{e:#}"))?;
    let mut constants = back::PipelineConstants::default();
    for (k, v) in def.constants {
        constants.insert(k.to_string(), *v);
    }
    let (m, i) = back::pipeline_constants::process_overrides(
        &module,
        &info,
        Some((naga::ShaderStage::Compute, def.entry)),
        &constants,
    )
    .map_err(|e| format!("override constants: {e}"))?;
    Ok((m.into_owned(), i.into_owned()))
}

fn translate(def: &KernelDef, target: Target) -> Result<Output, String> {
    let (module, info) = specialised(def)?;
    let entry = def.entry.to_string();
    match target {
        Target::SpirV => {
            let options = back::spv::Options {
                lang_version: (1, 3),
                ..Default::default()
            };
            let pipeline = back::spv::PipelineOptions {
                shader_stage: naga::ShaderStage::Compute,
                entry_point: entry,
            };
            back::spv::write_vec(&module, &info, &options, Some(&pipeline))
                .map(Output::SpirV)
                .map_err(|e| e.to_string())
        }
        Target::GlslEs310 | Target::Glsl430 => {
            let version = if target == Target::GlslEs310 {
                back::glsl::Version::new_gles(310)
            } else {
                back::glsl::Version::Desktop(430)
            };
            let mut binding_map = back::glsl::BindingMap::default();
            for (_, var) in module.global_variables.iter() {
                if let Some(rb) = &var.binding {
                    binding_map.insert(*rb, rb.binding as u8);
                }
            }
            let options = back::glsl::Options {
                version,
                writer_flags: back::glsl::WriterFlags::empty(),
                binding_map,
                zero_initialize_workgroup_memory: false,
            };
            let pipeline = back::glsl::PipelineOptions {
                shader_stage: naga::ShaderStage::Compute,
                entry_point: entry,
                multiview: None,
            };
            let mut out = String::new();
            let mut w = back::glsl::Writer::new(
                &mut out,
                &module,
                &info,
                &options,
                &pipeline,
                naga::proc::BoundsCheckPolicies::default(),
            )
            .map_err(|e| e.to_string())?;
            w.write().map_err(|e| e.to_string())?;
            Ok(Output::Text(out))
        }
        Target::Msl => {
            let options = back::msl::Options {
                lang_version: (2, 1),
                fake_missing_bindings: true,
                zero_initialize_workgroup_memory: false,
                ..Default::default()
            };
            let pipeline = back::msl::PipelineOptions {
                entry_point: Some((naga::ShaderStage::Compute, entry)),
                ..Default::default()
            };
            back::msl::write_string(&module, &info, &options, &pipeline)
                .map(|(s, _)| Output::Text(s))
                .map_err(|e| e.to_string())
        }
        Target::Hlsl => {
            let options = back::hlsl::Options {
                shader_model: back::hlsl::ShaderModel::V5_1,
                fake_missing_bindings: true,
                zero_initialize_workgroup_memory: false,
                ..Default::default()
            };
            let pipeline = back::hlsl::PipelineOptions {
                entry_point: Some((naga::ShaderStage::Compute, entry)),
            };
            let mut out = String::new();
            let mut w = back::hlsl::Writer::new(&mut out, &options, &pipeline);
            w.write(&module, &info, None).map_err(|e| e.to_string())?;
            Ok(Output::Text(out))
        }
    }
}

/// Every kernel on every target: the failures, one line each naming shader, entry point, override
/// set and target.
fn translate_all(
    mut each: impl FnMut(&KernelDef, Target, &Output) -> Result<(), String>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for def in cobrar_gpu::kernels::ALL {
        for target in TARGETS {
            let result = translate(def, target).and_then(|out| each(def, target, &out));
            if let Err(e) = result {
                failures.push(format!("{} → {target:?}: {e}", describe(def)));
            }
        }
    }
    failures
}

#[test]
fn every_kernel_translates_to_spirv_glsl_msl_and_hlsl() {
    let failures = translate_all(|_, _, _| Ok(()));
    assert!(
        failures.is_empty(),
        "naga could not translate:\n{}",
        failures.join("\n")
    );
}

/// Runs a validator on `file`; its output on failure.
fn validate(tool: &str, args: &[&str], file: &Path) -> Result<(), String> {
    let out = Command::new(tool)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {tool}: {e}; install Debian's spirv-tools (spirv-val) and glslang-tools \
                 (glslangValidator)"
            )
        });
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} rejected it: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
#[ignore = "needs spirv-val (spirv-tools) and glslangValidator (glslang-tools); .ci/run runs it"]
fn every_kernel_passes_the_spirv_and_glsl_validators() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let failures = translate_all(|def, target, out| {
        let stem = def.name.replace('.', "_");
        match (target, out) {
            (Target::SpirV, Output::SpirV(words)) => {
                let file = dir.path().join(format!("{stem}.spv"));
                std::fs::write(&file, bytemuck::cast_slice::<u32, u8>(words)).unwrap();
                checked += 1;
                validate("spirv-val", &["--target-env", "vulkan1.1"], &file)
            }
            (Target::GlslEs310 | Target::Glsl430, Output::Text(text)) => {
                let suffix = if target == Target::GlslEs310 {
                    "es"
                } else {
                    "430"
                };
                let file = dir.path().join(format!("{stem}.{suffix}.comp"));
                std::fs::write(&file, text).unwrap();
                checked += 1;
                validate("glslangValidator", &[], &file)
            }
            _ => Ok(()),
        }
    });
    assert!(failures.is_empty(), "rejected:\n{}", failures.join("\n"));
    assert_eq!(checked, 3 * cobrar_gpu::kernels::ALL.len());
}
