//! Build-time WGSL composition (std only): WGSL has no includes, so a stage file under `shaders/`
//! names the shared pieces it needs with lines `//!include lib/NAME.wgsl`, and `build.rs` expands
//! them into one source per stage before the crate is compiled (the include line stays, a comment,
//! with the library's text after it). Each library file is expanded once per stage however often it
//! is named (directly or through another library); an include cycle is an error. Include paths are
//! relative to `shaders/`.
//!
//! Every composed line keeps its origin: the line map (segments of consecutive lines from one file)
//! turns a position in the composed source back into the file and line it was written at, so that
//! naga's messages name `shaders/lib/hash.wgsl:12` rather than a line of a file nobody wrote.
//!
//! This file is compiled twice: by `build.rs` (through `#[path]`) and as `gpu::shaders::compose`,
//! where the runtime maps error messages and the tests check it.

use std::path::Path;

/// The marker of an include line (a WGSL line comment, so the composed source keeps it).
pub const INCLUDE: &str = "//!include ";

/// A run of composed lines from one file: composed line `first` (1-based) is line `line` of `file`,
/// and each following line of the run is the next line of that file. Sorted by `first`.
pub type Segment<'a> = (u32, &'a str, u32);

/// One stage file with its includes expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Composed {
    pub source: String,
    /// Owned segments (see [`Segment`]); the paths are relative to the repository (`shaders/…`).
    pub segments: Vec<(u32, String, u32)>,
    /// Every file read, the stage first (for the build script's rerun triggers).
    pub files: Vec<String>,
}

/// Expands the includes of `stage` (a path relative to `shaders/`, like `spmm.wgsl`); `read` returns
/// a file's text from its path relative to `shaders/`.
pub fn compose(
    stage: &str,
    read: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Composed, String> {
    let mut out = Composed {
        source: String::new(),
        segments: Vec::new(),
        files: Vec::new(),
    };
    let mut stack = Vec::new();
    let mut line = 0u32;
    expand(stage, read, &mut stack, &mut out, &mut line)?;
    Ok(out)
}

fn expand(
    file: &str,
    read: &mut dyn FnMut(&str) -> Result<String, String>,
    stack: &mut Vec<String>,
    out: &mut Composed,
    composed_line: &mut u32,
) -> Result<(), String> {
    if let Some(at) = stack.iter().position(|f| f == file) {
        let mut cycle: Vec<&str> = stack[at..].iter().map(String::as_str).collect();
        cycle.push(file);
        return Err(format!(
            "shaders/{}: include cycle: {}",
            stack[0],
            cycle.join(" -> ")
        ));
    }
    if out.files.iter().any(|f| f == file) {
        return Ok(()); // already expanded in this stage
    }
    let text = read(file).map_err(|e| {
        let by = stack
            .last()
            .map(|s| format!(" (included by shaders/{s})"))
            .unwrap_or_default();
        format!("shaders/{file}{by}: {e}")
    })?;
    out.files.push(file.to_string());
    stack.push(file.to_string());
    let path = format!("shaders/{file}");
    let mut new_segment = true;
    for (i, text_line) in text.lines().enumerate() {
        *composed_line += 1;
        if new_segment {
            out.segments
                .push((*composed_line, path.clone(), i as u32 + 1));
            new_segment = false;
        }
        out.source.push_str(text_line);
        out.source.push('\n');
        if let Some(rest) = text_line.strip_prefix(INCLUDE) {
            let target = rest.trim();
            if !target.starts_with("lib/") || !target.ends_with(".wgsl") || target.contains("..") {
                return Err(format!(
                    "{path}:{}: an include names lib/NAME.wgsl, not `{target}`",
                    i + 1
                ));
            }
            let before = *composed_line;
            expand(target, read, stack, out, composed_line)?;
            new_segment = *composed_line != before;
        }
    }
    stack.pop();
    Ok(())
}

/// The file and line that composed line `line` (1-based) was written at.
pub fn origin<'a>(segments: &[Segment<'a>], line: u32) -> Option<(&'a str, u32)> {
    let at = segments.partition_point(|s| s.0 <= line).checked_sub(1)?;
    let (first, file, orig) = segments[at];
    Some((file, orig + (line - first)))
}

/// Rewrites a message naga emitted against the composed source of `path`: each `path:LINE:COL` and
/// each line number in the margin of a quoted snippet becomes the original file's (the snippet's
/// text is the original's already: composition copies lines verbatim).
pub fn remap_message(text: &str, path: &str, segments: &[Segment<'_>]) -> String {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&remap_line(line, path, segments));
    }
    out
}

fn remap_line(line: &str, path: &str, segments: &[Segment<'_>]) -> String {
    // The margin of a snippet: `NN │ text` (right-aligned number, then the bar).
    let trimmed = line.trim_start();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && trimmed[digits..].starts_with(" │") {
        if let Some((_, orig)) = trimmed[..digits]
            .parse()
            .ok()
            .and_then(|l| origin(segments, l))
        {
            let width = line.len() - trimmed.len() + digits;
            return format!("{orig:>width$}{}", &trimmed[digits..]);
        }
        return line.to_string();
    }
    let mut out = String::new();
    let mut rest = line;
    let needle = format!("{path}:");
    while let Some(at) = rest.find(&needle) {
        out.push_str(&rest[..at]);
        let after = &rest[at + needle.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits]
            .parse()
            .ok()
            .and_then(|l| origin(segments, l))
        {
            Some((file, orig)) => {
                out.push_str(&format!("{file}:{orig}"));
                rest = &after[digits..];
            }
            None => {
                out.push_str(&needle);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The stage files of a shaders folder: every `*.wgsl` directly in it (not `lib/`), sorted.
pub fn stages(dir: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for e in entries {
        let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wgsl") && e.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Composes every stage of the shaders folder `dir`: (stage file name, its composition).
pub fn compose_dir(dir: &Path) -> Result<Vec<(String, Composed)>, String> {
    let mut read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| e.to_string());
    stages(dir)?
        .into_iter()
        .map(|s| compose(&s, &mut read).map(|c| (s, c)))
        .collect()
}

/// The Rust source of the shader table (`include!`d by `gpu/shaders.rs`): one constant per stage,
/// named after the file stem in capitals, and `ALL`, sorted by file name. `source_dir` is where the
/// composed sources were written (`NAME.wgsl` each, read with `include_str!`).
pub fn table(stages: &[(String, Composed)], source_dir: &Path) -> String {
    let mut out =
        String::from("// Generated by build.rs from shaders/ (gpu/shaders/compose.rs).\n\n");
    let mut all = String::new();
    for (file, c) in stages {
        let stem = file.trim_end_matches(".wgsl");
        let konst = stem.to_ascii_uppercase();
        let segments: Vec<String> = c
            .segments
            .iter()
            .map(|(first, f, line)| format!("({first}, {f:?}, {line})"))
            .collect();
        out.push_str(&format!(
            "pub const {konst}: ShaderSource = ShaderSource {{\n    name: {stem:?},\n    \
             path: {path:?},\n    source: include_str!({src:?}),\n    lines: &[{segs}],\n}};\n",
            path = format!("shaders/{file}"),
            src = source_dir.join(file).display().to_string(),
            segs = segments.join(", "),
        ));
        all.push_str(&format!("    {konst},\n"));
    }
    out.push_str(&format!(
        "\n/// Every stage under `shaders/`, sorted by file name.\npub const ALL: &[ShaderSource] = &[\n{all}];\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn files(list: &[(&str, &str)]) -> impl FnMut(&str) -> Result<String, String> {
        let map: BTreeMap<String, String> = list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |f: &str| {
            map.get(f)
                .cloned()
                .ok_or_else(|| "no such file".to_string())
        }
    }

    fn borrowed(c: &Composed) -> Vec<Segment<'_>> {
        c.segments
            .iter()
            .map(|(a, f, l)| (*a, f.as_str(), *l))
            .collect()
    }

    #[test]
    fn includes_expand_once_and_keep_their_origin() {
        let mut read = files(&[
            (
                "s.wgsl",
                "// s\n//!include lib/a.wgsl\n//!include lib/b.wgsl\nfn s() {}\n",
            ),
            ("lib/a.wgsl", "fn a() {}\n"),
            ("lib/b.wgsl", "//!include lib/a.wgsl\nfn b() {}\n"),
        ]);
        let c = compose("s.wgsl", &mut read).unwrap();
        assert_eq!(
            c.source,
            "// s\n//!include lib/a.wgsl\nfn a() {}\n//!include lib/b.wgsl\n\
             //!include lib/a.wgsl\nfn b() {}\nfn s() {}\n"
        );
        assert_eq!(c.files, ["s.wgsl", "lib/a.wgsl", "lib/b.wgsl"]);
        let segs = borrowed(&c);
        let want = [
            ("shaders/s.wgsl", 1),
            ("shaders/s.wgsl", 2),
            ("shaders/lib/a.wgsl", 1),
            ("shaders/s.wgsl", 3),
            ("shaders/lib/b.wgsl", 1),
            ("shaders/lib/b.wgsl", 2),
            ("shaders/s.wgsl", 4),
        ];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(
                origin(&segs, i as u32 + 1),
                Some(*w),
                "composed line {}",
                i + 1
            );
        }
        assert_eq!(origin(&segs, 0), None);
    }

    #[test]
    fn cycles_missing_files_and_bad_paths_are_errors() {
        let mut read = files(&[
            ("s.wgsl", "//!include lib/a.wgsl\n"),
            ("lib/a.wgsl", "//!include lib/b.wgsl\n"),
            ("lib/b.wgsl", "//!include lib/a.wgsl\n"),
        ]);
        let e = compose("s.wgsl", &mut read).unwrap_err();
        assert!(
            e.contains("include cycle: lib/a.wgsl -> lib/b.wgsl -> lib/a.wgsl"),
            "{e}"
        );
        let mut read = files(&[("s.wgsl", "x\n//!include lib/none.wgsl\n")]);
        let e = compose("s.wgsl", &mut read).unwrap_err();
        assert!(
            e.contains("shaders/lib/none.wgsl (included by shaders/s.wgsl)"),
            "{e}"
        );
        let mut read = files(&[("s.wgsl", "//!include ../x.wgsl\n")]);
        let e = compose("s.wgsl", &mut read).unwrap_err();
        assert!(e.starts_with("shaders/s.wgsl:1:"), "{e}");
    }

    #[test]
    fn messages_name_the_original_file_and_line() {
        let segs: &[Segment] = &[
            (1, "shaders/s.wgsl", 1),
            (3, "shaders/lib/h.wgsl", 1),
            (13, "shaders/s.wgsl", 3),
        ];
        let msg = "error: bad\n   ┌─ shaders/s.wgsl:12:5\n   │\n12 │     x = 1;\n   │     ^ here\n\
                   see shaders/s.wgsl:14:1 and shaders/s.wgsl";
        let got = remap_message(msg, "shaders/s.wgsl", segs);
        assert_eq!(
            got,
            "error: bad\n   ┌─ shaders/lib/h.wgsl:10:5\n   │\n10 │     x = 1;\n   │     ^ here\n\
             see shaders/s.wgsl:4:1 and shaders/s.wgsl"
        );
    }

    /// Function names (not entry points) defined in a WGSL text.
    fn functions(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut entry = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("@compute") {
                entry = true;
            }
            if let Some(rest) = line.strip_prefix("fn ") {
                if !entry {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.push(name);
                }
                entry = false;
            }
        }
        names
    }

    /// Shared code lives once: no function is defined in two files of `shaders/` (stages and
    /// libraries alike; entry points, which each stage names for itself, aside), so a stage never
    /// carries its own copy of a library function.
    #[test]
    fn no_function_is_defined_in_two_shader_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let mut files: Vec<String> = stages(&dir).unwrap();
        let libs = stages(&dir.join("lib")).unwrap();
        assert!(!libs.is_empty(), "no shaders/lib/*.wgsl");
        files.extend(libs.iter().map(|l| format!("lib/{l}")));
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut clashes = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            for name in functions(&text) {
                if let Some(first) = seen.insert(name.clone(), f.clone()) {
                    clashes.push(format!("fn {name}: shaders/{first} and shaders/{f}"));
                }
            }
        }
        assert!(clashes.is_empty(), "defined twice:\n{}", clashes.join("\n"));
        // The check itself sees what it should.
        assert_eq!(
            functions("@compute @workgroup_size(1)\nfn main() {}\nfn a_1(x: u32) {}\n"),
            ["a_1"]
        );
    }

    #[test]
    fn every_stage_composes_and_every_library_is_used() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let composed = compose_dir(&dir).unwrap();
        let used: Vec<&String> = composed.iter().flat_map(|(_, c)| &c.files).collect();
        for l in stages(&dir.join("lib")).unwrap() {
            assert!(
                used.contains(&&format!("lib/{l}")),
                "shaders/lib/{l} is included by no stage"
            );
        }
        let table = table(&composed, Path::new("/out"));
        assert!(table.contains("pub const SPMM: ShaderSource"), "{table}");
    }
}
