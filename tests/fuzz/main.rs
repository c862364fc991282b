//! Fuzz targets for every input a user can hand the program, as property tests (libFuzzer needs a
//! nightly toolchain CI does not have): every reader (each format forced, and detected), the
//! pre-split loader, the grid's TOML, and the safetensors loader get random bytes and mutations of
//! valid inputs. Whatever the input, the result is a value or an error — never a panic. Cases found
//! once are kept in `tests/fuzz/main.proptest-regressions` and replayed first.
//!
//! `COBRAR_FUZZ_CASES` sets the cases per target (CI runs more than the default).

use std::path::Path;

use cobrar_gpu::data::{Format, LoadOptions, SplitConfig, load, load_bytes};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("COBRAR_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/data")
            .join(name),
    )
    .unwrap()
}

/// A valid input with some bytes overwritten, some inserted and a tail cut: mutations reach the
/// parsers' deeper paths that random bytes rarely do.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len();
    (
        proptest::collection::vec((0..len.max(1), any::<u8>()), 0..16),
        proptest::collection::vec((0..len.max(1), any::<u8>()), 0..8),
        0..=len,
    )
        .prop_map(move |(flips, inserts, cut)| {
            let mut b = seed.clone();
            for (i, v) in flips {
                if i < b.len() {
                    b[i] = v;
                }
            }
            for (i, v) in inserts {
                let i = i.min(b.len());
                b.insert(i, v);
            }
            b.truncate(cut.max(b.len() / 2));
            b
        })
}

/// Text-like bytes: digits, separators and newlines dominate.
fn texty() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => prop::sample::select(b"0123456789".to_vec()),
            2 => prop::sample::select(b":,\t; |\n\r.-eE\"{}[]".to_vec()),
            1 => prop::sample::select(b"userIdmovieratngasinRvw".to_vec()),
            1 => any::<u8>(),
        ],
        0..600,
    )
}

const FORMATS: &[Option<Format>] = &[
    None,
    Some(Format::MovielensDat),
    Some(Format::Movielens100k),
    Some(Format::MovielensCsv),
    Some(Format::AmazonJson),
    Some(Format::AmazonCsv),
    Some(Format::Delimited),
];

fn read_all_ways(bytes: &[u8]) {
    for (k, format) in FORMATS.iter().enumerate() {
        let opts = LoadOptions {
            format: *format,
            kcore: (k % 3) as u32,
            min_rating: (k == 2).then_some(3.0),
            split: SplitConfig::default(),
            ..LoadOptions::default()
        };
        // Either a dataset or an error; a panic fails the property.
        let _ = load_bytes("fuzz.input", bytes.to_vec(), &opts);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn readers_never_panic_on_random_text(bytes in texty()) {
        read_all_ways(&bytes);
    }

    #[test]
    fn readers_never_panic_on_mutated_movielens(bytes in mutated(fixture("ratings.dat"))) {
        read_all_ways(&bytes);
    }

    #[test]
    fn readers_never_panic_on_mutated_csv_and_json(
        csv in mutated(fixture("ratings.csv")),
        json in mutated(fixture("reviews.json")),
        amazon in mutated(fixture("amazon_ratings.csv")),
        generic in mutated(fixture("generic.txt")),
        udata in mutated(fixture("u.data")),
    ) {
        for b in [csv, json, amazon, generic, udata] {
            read_all_ways(&b);
        }
    }

    #[test]
    fn readers_never_panic_on_gzip(bytes in mutated({
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&fixture("ratings.dat")).unwrap();
        e.finish().unwrap()
    })) {
        read_all_ways(&bytes);
    }

    #[test]
    fn the_pre_split_loader_never_panics(
        train in mutated(fixture("presplit/train.tsv")),
        val in mutated(fixture("presplit/val.tsv")),
        test in texty(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (name, b) in [("train.tsv", &train), ("val.tsv", &val), ("test.tsv", &test)] {
            std::fs::write(dir.path().join(name), b).unwrap();
        }
        let opts = LoadOptions {
            dataset: Some(dir.path().display().to_string()),
            ..LoadOptions::default()
        };
        let _ = load(&opts);
    }

    #[test]
    fn the_grid_parser_never_panics(text in prop_oneof![
        mutated(include_bytes!("../../examples/grid_study.toml").to_vec()),
        texty(),
    ]) {
        let text = String::from_utf8_lossy(&text);
        let _ = cobrar_gpu::cli::grid::parse(&text, Path::new("fuzz.toml"), None, false);
    }

    #[test]
    fn the_safetensors_loader_never_panics(bytes in mutated(weights_file())) {
        let path = Path::new("fuzz.safetensors");
        if let Ok(file) = cobrar_gpu::checkpoint::st::File::parse(bytes, path) {
            for name in ["user_projection.weight", "branch.0.bias", "nope"] {
                let _ = file.tensor(name, path);
            }
        }
    }

    #[test]
    fn the_weights_loader_never_panics(bytes in mutated(weights_file())) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        let _ = cobrar_gpu::checkpoint::load_weights(&path, &small_layout());
    }
}

fn small_layout() -> std::sync::Arc<cobrar_gpu::models::ParamLayout> {
    use cobrar_gpu::models::ModelKind;
    std::sync::Arc::new(cobrar_gpu::models::cobrar::param_layout(
        ModelKind::Cobrar,
        &"8,4".parse().unwrap(),
        5,
        7,
    ))
}

/// A valid checkpoint of a small model.
fn weights_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let w = cobrar_gpu::models::Weights::init(&small_layout(), 1);
    cobrar_gpu::checkpoint::save_weights(&path, &w, &Default::default()).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn random_bytes_of_any_kind_are_an_error_not_a_panic() {
    // The fixed corner cases (kept from fuzzing and reports): empty, BOM only, a lone separator, NUL
    // bytes, an endless line, half a gzip header.
    for bytes in [
        &b""[..],
        b"\xEF\xBB\xBF",
        b"::",
        b"\0\0\0\n\0",
        b"\x1f\x8b",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
        b"1::2::3::4::5::6\n",
        b"user,item\n,\n",
        b"{\"reviewerID\": 1}\n",
    ] {
        read_all_ways(bytes);
    }
    let long = vec![b'7'; (1 << 20) + 10];
    let opts = LoadOptions {
        format: Some(Format::MovielensDat),
        ..LoadOptions::default()
    };
    let e = load_bytes("long.dat", long, &opts).unwrap_err();
    assert!(e.to_string().contains("line longer than 1 MiB"), "{e}");
}
