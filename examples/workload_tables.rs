//! Prints the compact degree summaries behind `bench --workload` (`src/data/workload_tables.rs`): for
//! each side, the largest degrees exactly and the rest of the descending degree sequence at evenly
//! spaced ranks. From a ratings file (first two columns of tab/comma/`::`-separated text, plain or
//! gzip; every distinct pair counts once, as the study's implicit conversion does):
//!
//! ```text
//! cargo run --release --example workload_tables -- file ml-1m  $COBRAR_DATA_DIR/ml-1m/interactions_all.tsv.gz
//! cargo run --release --example workload_tables -- file amazon-baby $COBRAR_DATA_DIR/amazon-baby/reviews.tsv
//! ```
//!
//! `check NAME [PATH]` generates a workload and compares its degrees with the real file's.
//!
//! Or, for ML-20M (no copy of which was at hand), from its published summaries:
//!
//! ```text
//! cargo run --release --example workload_tables -- ml-20m
//! ```
//!
//! ML-20M as distributed has 138,493 users (each with at least 20 ratings; the most active has 9,254),
//! 26,744 items (at least 1 rating; the most rated has 67,310) and 20,000,263 ratings (GroupLens'
//! README). LensKit's description of the data (codex.lenskit.org, ML20M) fits user activity with a
//! log-normal (s = 1.609, loc = 19.078, scale = 43.087) and gives an item-popularity Gini of 0.903.
//! Users: that log-normal's quantiles, clipped to [20, 9254]. Items: log-normal quantiles whose σ is
//! chosen so that the sequence, clipped to [1, 67310] and scaled to the mean 20,000,263 / 26,744, has
//! Gini 0.903. (The generator then matches the counts exactly.)

use std::io::{BufRead, BufReader, Read};

const TOP: usize = 256;
const POINTS: usize = 1025;

/// Top degrees exactly, then `POINTS` evenly spaced ranks of the rest (descending `sorted`).
fn summary(sorted: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let top = sorted[..TOP.min(sorted.len())].to_vec();
    let rest = &sorted[top.len()..];
    let points = if rest.len() <= 1 {
        rest.to_vec()
    } else {
        (0..POINTS)
            .map(|k| rest[k * (rest.len() - 1) / (POINTS - 1)])
            .collect()
    };
    (top, points)
}

fn print_side(name: &str, side: &str, degrees: &mut [u32]) {
    degrees.sort_unstable_by(|a, b| b.cmp(a));
    let (top, rest) = summary(degrees);
    let total: u64 = degrees.iter().map(|&d| d as u64).sum();
    println!(
        "// {name} {side}: {} of them, {total} interactions, degrees {}..={}, Gini {:.4}",
        degrees.len(),
        degrees.last().unwrap(),
        degrees[0],
        gini(degrees)
    );
    println!(
        "pub const {}_{}: DegreeTable = DegreeTable {{\n    top: &{top:?},\n    rest: &{rest:?},\n}};",
        name.to_uppercase().replace('-', "_"),
        side.to_uppercase()
    );
}

/// Gini coefficient of a sequence of non-negative values.
fn gini(v: &[u32]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len() as f64;
    let total: f64 = s.iter().sum();
    let weighted: f64 = s
        .iter()
        .enumerate()
        .map(|(i, x)| (i as f64 + 1.0) * x)
        .sum();
    (2.0 * weighted) / (n * total) - (n + 1.0) / n
}

/// Distinct (user, item) pairs of a ratings file, as dense codes, and the numbers of users and items.
fn read_pairs(path: &str) -> (Vec<(u32, u32)>, usize, usize) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let reader: Box<dyn Read> = if path.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut users = std::collections::HashMap::<String, u32>::new();
    let mut items = std::collections::HashMap::<String, u32>::new();
    let mut pairs = std::collections::HashSet::<(u32, u32)>::new();
    for line in BufReader::new(reader).lines() {
        let line = line.expect("readable text");
        let cols: Vec<&str> = if line.contains("::") {
            line.split("::").collect()
        } else {
            line.split(['\t', ',']).collect()
        };
        if cols.len() < 2 || cols[0].parse::<f64>().is_err() && cols[0].eq_ignore_ascii_case("user")
        {
            continue;
        }
        let n = users.len() as u32;
        let u = *users.entry(cols[0].to_string()).or_insert(n);
        let n = items.len() as u32;
        let i = *items.entry(cols[1].to_string()).or_insert(n);
        pairs.insert((u, i));
    }
    (pairs.into_iter().collect(), users.len(), items.len())
}

fn degrees(pairs: &[(u32, u32)], n_users: usize, n_items: usize) -> (Vec<u32>, Vec<u32>) {
    let mut du = vec![0u32; n_users];
    let mut di = vec![0u32; n_items];
    for &(u, i) in pairs {
        du[u as usize] += 1;
        di[i as usize] += 1;
    }
    (du, di)
}

fn from_file(name: &str, path: &str) {
    let (pairs, n_users, n_items) = read_pairs(path);
    let (mut du, mut di) = degrees(&pairs, n_users, n_items);
    println!(
        "// {name}: {} users, {} items, {} interactions",
        du.len(),
        di.len(),
        pairs.len()
    );
    print_side(name, "users", &mut du);
    print_side(name, "items", &mut di);
}

/// The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e2,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// `n` log-normal quantiles (descending), at the mid-points of n equal probability bins.
fn lognormal(n: usize, sigma: f64, loc: f64, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|k| {
            let p = 1.0 - (k as f64 + 0.5) / n as f64;
            loc + scale * (sigma * normal_quantile(p)).exp()
        })
        .collect()
}

fn ml20m() {
    let (users, items, ratings) = (138_493usize, 26_744usize, 20_000_263u64);
    // The fit's mean (≈ 176 before clipping) is above the data's (144.4): the excess over the minimum
    // of 20 is scaled so that the users' degrees sum to the ratings.
    let fit = lognormal(users, 1.609, 19.078, 43.087);
    let clipped = |k: f64| -> Vec<u32> {
        fit.iter()
            .map(|d| (20.0 + (d - 20.0).max(0.0) * k).round().clamp(20.0, 9254.0) as u32)
            .collect()
    };
    let (mut lo, mut hi) = (0.1, 2.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        let sum: u64 = clipped(mid).iter().map(|&d| d as u64).sum();
        if sum < ratings {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut du = clipped(0.5 * (lo + hi));
    du[0] = 9254;
    // Items: find σ whose clipped sequence, scaled to sum to the ratings, has Gini 0.903.
    let items_for = |sigma: f64| -> Vec<u32> {
        let raw = lognormal(items, sigma, 0.0, 1.0);
        let scaled = |k: f64| -> Vec<u32> {
            raw.iter()
                .map(|x| (x * k).round().clamp(1.0, 67_310.0) as u32)
                .collect()
        };
        let (mut lo, mut hi) = (1e-3f64, 1e6f64);
        for _ in 0..100 {
            let mid = (lo * hi).sqrt();
            let sum: u64 = scaled(mid).iter().map(|&d| d as u64).sum();
            if sum < ratings {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let mut d = scaled((lo * hi).sqrt());
        d[0] = 67_310;
        d
    };
    let (mut lo, mut hi) = (0.5, 4.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if gini(&items_for(mid)) < 0.903 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut di = items_for(0.5 * (lo + hi));
    println!(
        "// ml-20m: {users} users, {items} items, {ratings} interactions (constructed from published summaries; item σ {:.4})",
        0.5 * (lo + hi)
    );
    print_side("ml-20m", "users", &mut du);
    print_side("ml-20m", "items", &mut di);
}

/// Generates workload `name` and compares it with the real file at `path`, if given: counts, the
/// hash, the generation time, and per side the degree statistics and the Kolmogorov–Smirnov distance.
fn check(name: &str, path: Option<&str>) {
    use cobrar_gpu::data::workload::{self, DegreeStats, degrees_of, ks_distance};
    let w = workload::find(name).expect("a workload");
    let t = std::time::Instant::now();
    let keys = w.generate();
    let seconds = t.elapsed().as_secs_f64();
    let (gu, gi) = degrees_of(&keys, w.users, w.items);
    println!(
        "{name}: {} users, {} items, {} interactions generated in {seconds:.2} s; hash {}",
        gu.iter().filter(|&&d| d > 0).count(),
        gi.iter().filter(|&&d| d > 0).count(),
        keys.len(),
        w.hash(&keys)
    );
    let real = path.map(|p| {
        let (pairs, n_users, n_items) = read_pairs(p);
        degrees(&pairs, n_users, n_items)
    });
    for (side, generated, real) in [
        ("users", &gu, real.as_ref().map(|r| &r.0)),
        ("items", &gi, real.as_ref().map(|r| &r.1)),
    ] {
        let g = DegreeStats::of(generated);
        println!(
            "  {side} generated: min {} median {} mean {:.1} max {} Gini {:.4}",
            g.min, g.median, g.mean, g.max, g.gini
        );
        if let Some(r) = real {
            let s = DegreeStats::of(r);
            println!(
                "  {side} real:      min {} median {} mean {:.1} max {} Gini {:.4}; KS distance {:.4}",
                s.min,
                s.median,
                s.mean,
                s.max,
                s.gini,
                ks_distance(generated, r)
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["file", name, path] => from_file(name, path),
        ["ml-20m"] => ml20m(),
        ["check", name] => check(name, None),
        ["check", name, path] => check(name, Some(path)),
        _ => {
            eprintln!(
                "usage: workload_tables file NAME PATH | workload_tables ml-20m | \
                 workload_tables check NAME [PATH]"
            );
            std::process::exit(2);
        }
    }
}
