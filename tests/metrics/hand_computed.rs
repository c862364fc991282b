//! The SPEC §4 metrics on hand-computed cases (arithmetic in the comments), their edge cases, and a
//! comparison with a deliberately naive reference implementation on random inputs.

use std::collections::HashSet;
use std::time::Instant;

use cobrar_gpu::data::Csr;
use cobrar_gpu::eval::metrics::{
    CutoffMetrics, DEFAULT_CUTOFFS, EvalResult, PAD, RankedLists, SplitMetrics, USER_METRICS,
    evaluate, short_head,
};
use cobrar_gpu::util::splitmix64;

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

/// 1 / log2(3): the DCG discount of rank 2.
const D2: f64 = 0.6309297535714575;

/// Three listed users over 10 items with popularity 10 − i:
/// * user 0: relevant {1, 4, 7}, list [4, 2, 1, 9, 0] — hits at ranks 1 and 3;
/// * user 1: relevant {3}, list [5, 3] (a short list: 2 candidates, padded) — hit at rank 2, and
///   fewer relevant items than k;
/// * user 2: no relevant item — skipped; its list [8, 6, 7, 5, 4] must not count anywhere (items 6
///   and 8 appear only there).
fn hand_case(cutoffs: &[usize]) -> EvalResult {
    let users = [0u32, 1, 2];
    #[rustfmt::skip]
    let items = [
        4, 2, 1, 9, 0,
        5, 3, PAD, PAD, PAD,
        8, 6, 7, 5, 4,
    ];
    let truth = Csr::from_rows(&[vec![1u32, 4, 7], vec![3], vec![]]);
    let train = Csr::empty(3);
    let popularity: Vec<u32> = (0..10).map(|i| 10 - i).collect();
    let lists = RankedLists {
        users: &users,
        items: &items,
        k_max: 5,
    };
    evaluate(&lists, &truth, &train, &popularity, cutoffs)
}

#[test]
fn accuracy_and_arp_by_hand() {
    let r = hand_case(&[1, 3, 5]);
    assert_eq!((r.users, r.skipped), (2, 1));
    assert_eq!(r.per_user.users, vec![0, 1]);
    let ks: Vec<usize> = r.cutoffs.iter().map(|c| c.k).collect();
    assert_eq!(ks, vec![1, 3, 5]);

    // IDCG of user 0 (3 relevant, k >= 3) = 1 + 1/log2(3) + 1/log2(4) = 2.1309297535714578.
    // User 0's DCG@3 = DCG@5 = 1/log2(2) + 1/log2(4) = 1.5 → NDCG 1.5 / 2.13093 = 0.7039180890341347.
    let ndcg_u0 = 0.7039180890341347;
    // User 1: one relevant item, so IDCG@k = 1 for every k ≥ 1; hit at rank 2 → NDCG = 1/log2(3).

    // k = 1: user 0's item 4 is a hit, user 1's item 5 is not.
    //   NDCG (1 + 0)/2; Recall (1/3 + 0)/2; Precision (1 + 0)/2; HitRate (1 + 0)/2; MRR (1 + 0)/2;
    //   ARP: pop(4) = 6, pop(5) = 5 → (6 + 5)/2 = 5.5.
    let c1 = &r.cutoffs[0];
    close(c1.ndcg, 0.5, "ndcg@1");
    close(c1.recall, 1.0 / 6.0, "recall@1");
    close(c1.precision, 0.5, "precision@1");
    close(c1.hit_rate, 0.5, "hit_rate@1");
    close(c1.mrr, 0.5, "mrr@1");
    close(c1.arp, 5.5, "arp@1");

    // k = 3: user 0 [4, 2, 1]: hits 2; user 1 [5, 3] (only 2 items): hit 1 at rank 2.
    //   NDCG (0.70392 + 0.63093)/2; Recall (2/3 + 1/1)/2 = 5/6;
    //   Precision (2/3 + 1/3)/2 = 0.5 — user 1 divided by k = 3, not by its list length 2;
    //   HitRate 1; MRR (1 + 1/2)/2 = 0.75;
    //   ARP user 0 (6 + 8 + 9)/3 = 23/3, user 1 over its 2 items (5 + 7)/2 = 6 → (23/3 + 6)/2 = 41/6.
    let c3 = &r.cutoffs[1];
    close(c3.ndcg, (ndcg_u0 + D2) / 2.0, "ndcg@3");
    close(c3.recall, 5.0 / 6.0, "recall@3");
    close(c3.precision, 0.5, "precision@3");
    close(c3.hit_rate, 1.0, "hit_rate@3");
    close(c3.mrr, 0.75, "mrr@3");
    close(c3.arp, 41.0 / 6.0, "arp@3");

    // k = 5: user 0 [4, 2, 1, 9, 0] still 2 hits; user 1 unchanged.
    //   Precision (2/5 + 1/5)/2 = 0.3; ARP user 0 (6+8+9+1+10)/5 = 6.8 → (6.8 + 6)/2 = 6.4.
    let c5 = &r.cutoffs[2];
    close(c5.ndcg, (ndcg_u0 + D2) / 2.0, "ndcg@5");
    close(c5.recall, 5.0 / 6.0, "recall@5");
    close(c5.precision, 0.3, "precision@5");
    close(c5.hit_rate, 1.0, "hit_rate@5");
    close(c5.mrr, 0.75, "mrr@5");
    close(c5.arp, 6.4, "arp@5");

    // Per-user values line up with `per_user.users`.
    let pu = &r.per_user;
    assert_eq!(pu.values.len(), 3 * USER_METRICS.len());
    assert_eq!(pu.get("ndcg", 5).unwrap(), &[ndcg_u0, D2]);
    assert_eq!(pu.get("precision", 3).unwrap(), &[2.0 / 3.0, 1.0 / 3.0]);
    assert_eq!(pu.get("mrr", 3).unwrap(), &[1.0, 0.5]);
    assert_eq!(pu.get("hit_rate", 1).unwrap(), &[1.0, 0.0]);
    assert_eq!(pu.get("arp", 3).unwrap(), &[23.0 / 3.0, 6.0]);
    assert_eq!(pu.get("recall", 1).unwrap(), &[1.0 / 3.0, 0.0]);
    assert!(pu.get("ndcg", 7).is_none());
}

#[test]
fn coverage_count_and_percent() {
    let r = hand_case(&[1, 3, 5]);
    // 10 items. k = 1: {4, 5} → 2 (20%). k = 3: {4, 2, 1} ∪ {5, 3} → 5 (50%).
    // k = 5: {4, 2, 1, 9, 0} ∪ {5, 3} → 7 (70%). The skipped user's 6 and 8 never count.
    let cov: Vec<(usize, f64)> = r
        .cutoffs
        .iter()
        .map(|c| (c.coverage, c.coverage_pct))
        .collect();
    assert_eq!(cov, vec![(2, 20.0), (5, 50.0), (7, 70.0)]);
}

#[test]
fn cutoff_beyond_the_lists_and_zero_cutoff() {
    // k = 10 > k_max = 5: the lists are as long as they get; precision still divides by 10:
    // (2/10 + 1/10)/2 = 0.15; recall as at k = 5.
    let r = hand_case(&[10, 0]);
    close(r.cutoffs[0].precision, 0.15, "precision@10");
    close(r.cutoffs[0].recall, 5.0 / 6.0, "recall@10");
    // k = 0: everything 0, nothing NaN.
    let z = &r.cutoffs[1];
    assert_eq!(
        (z.ndcg, z.recall, z.precision, z.hit_rate, z.mrr, z.arp),
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    );
    assert_eq!((z.coverage, z.poprsp), (0, 0.0));
}

#[test]
fn no_users_gives_zeros_not_nan() {
    let truth = Csr::empty(2);
    let lists = RankedLists {
        users: &[0, 1],
        items: &[0, 1, 1, 0],
        k_max: 2,
    };
    let r = evaluate(&lists, &truth, &Csr::empty(2), &[1, 1], &DEFAULT_CUTOFFS);
    assert_eq!((r.users, r.skipped), (0, 2));
    for c in &r.cutoffs {
        for v in [
            c.ndcg,
            c.recall,
            c.precision,
            c.hit_rate,
            c.mrr,
            c.arp,
            c.coverage_pct,
            c.poprsp,
        ] {
            assert_eq!(v, 0.0);
        }
    }
}

#[test]
fn head_tail_boundary_with_ties() {
    // Popularity [2, 4, 2, 2, 0], total 10, 80% = 8. Sorted (desc, ties by lower index):
    // item 1 (4), item 0 (2), item 2 (2), item 3 (2), item 4 (0); running sums 4, 6, 8 → the head
    // is {1, 0, 2}; item 3 has the same popularity as item 2 but comes later: tail.
    let (head, n) = short_head(&[2, 4, 2, 2, 0]);
    assert_eq!(head, vec![true, true, true, false, false]);
    assert_eq!(n, 3);
    // Reaching 80% exactly stops; one short does not: [5, 2, 2, 1] total 10, sums 5, 7, 9 → 3 items.
    assert_eq!(short_head(&[5, 2, 2, 1]).1, 3);
    // [8, 1, 1]: 8 ≥ 8 after one item.
    assert_eq!(short_head(&[8, 1, 1]).0, vec![true, false, false]);
    // Nothing to split: every item is tail.
    assert_eq!(short_head(&[]).1, 0);
}

#[test]
fn poprsp_by_hand() {
    // Head {0, 1, 2}, tail {3, 4} (see head_tail_boundary_with_ties).
    // User 0 trained on item 1, user 1 on nothing; both have relevant item 4 (accuracy irrelevant).
    // Available: head \ train: user 0 → 2, user 1 → 3, Σ 5; tail \ train: 2 + 2, Σ 4.
    // k = 2: user 0 [0, 3] → 1 head, 1 tail; user 1 [1, 2] → 2 head. P(head) = 3/5, P(tail) = 1/4.
    //   mean 0.425, population std |0.6 − 0.25|/2 = 0.175 → PopRSP = 0.175/0.425 = 7/17.
    // k = 1: user 0 [0], user 1 [1]: both head. P(head) = 2/5, P(tail) = 0 → PopRSP = 0.2/0.2 = 1.
    // ARP@2 = ((2 + 2)/2 + (4 + 2)/2)/2 = 2.5; Coverage@2 = {0, 3, 1, 2} = 4 of 5 = 80%.
    let truth = Csr::from_rows(&[vec![4u32], vec![4]]);
    let train = Csr::from_rows(&[vec![1u32], vec![]]);
    let lists = RankedLists {
        users: &[0, 1],
        items: &[0, 3, 1, 2],
        k_max: 2,
    };
    let r = evaluate(&lists, &truth, &train, &[2, 4, 2, 2, 0], &[1, 2]);
    close(r.cutoffs[0].poprsp, 1.0, "poprsp@1");
    close(r.cutoffs[1].poprsp, 7.0 / 17.0, "poprsp@2");
    close(r.cutoffs[1].arp, 2.5, "arp@2");
    assert_eq!(
        (r.cutoffs[1].coverage, r.cutoffs[1].coverage_pct),
        (4, 80.0)
    );
    // Recommending head and tail in proportion to availability is parity: user 1 (no training) with
    // all 5 items at k = 5: P(head) = 3/3, P(tail) = 2/2 → PopRSP 0.
    let lists = RankedLists {
        users: &[1],
        items: &[0, 1, 2, 3, 4],
        k_max: 5,
    };
    let r = evaluate(&lists, &truth, &train, &[2, 4, 2, 2, 0], &[5]);
    close(r.cutoffs[0].poprsp, 0.0, "parity");
    assert_eq!(r.cutoffs[0].coverage_pct, 100.0);
}

#[test]
fn split_metrics_round_trip() {
    let r = hand_case(&DEFAULT_CUTOFFS);
    let s = SplitMetrics::from(&r);
    assert_eq!(s.users, 2);
    assert_eq!(s.cutoffs, r.cutoffs);
    let json = serde_json::to_string(&s).unwrap();
    let back: SplitMetrics = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.at(10), r.at(10));
    // Tolerant of extra fields.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["extra"] = serde_json::json!(1);
    v["cutoffs"][0]["extra"] = serde_json::json!("x");
    let back: SplitMetrics = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

/// A small deterministic generator for the random cases.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = splitmix64(self.0);
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The metrics computed the slow, obvious way, straight from SPEC §4.
fn naive(
    users: &[u32],
    lists: &[Vec<u32>],
    truth: &[Vec<u32>],
    train: &[Vec<u32>],
    pop: &[u32],
    k: usize,
) -> CutoffMetrics {
    let n_items = pop.len();
    // Head: sort (popularity desc, index asc), take items until the sum reaches 80%.
    let mut order: Vec<usize> = (0..n_items).collect();
    order.sort_by(|&a, &b| pop[b].cmp(&pop[a]).then(a.cmp(&b)));
    let total: u64 = pop.iter().map(|&p| p as u64).sum();
    let mut head = HashSet::new();
    let mut sum = 0u64;
    for &i in &order {
        // sum / total >= 80%, exactly.
        if 10 * sum >= 8 * total {
            break;
        }
        sum += pop[i] as u64;
        head.insert(i as u32);
    }
    let (mut n, mut acc) = (0.0, [0.0f64; 6]);
    let mut covered = HashSet::new();
    let (mut hr, mut tr, mut ha, mut ta) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (i, &u) in users.iter().enumerate() {
        let rel: HashSet<u32> = truth[u as usize].iter().copied().collect();
        if rel.is_empty() {
            continue;
        }
        n += 1.0;
        let top: Vec<u32> = lists[i].iter().take(k).copied().collect();
        let mut dcg = 0.0;
        let mut hits = 0.0;
        let mut rr = 0.0;
        for (r, it) in top.iter().enumerate() {
            if rel.contains(it) {
                dcg += 1.0 / ((r + 2) as f64).log2();
                hits += 1.0;
                if rr == 0.0 {
                    rr = 1.0 / (r + 1) as f64;
                }
            }
            covered.insert(*it);
            if head.contains(it) {
                hr += 1.0;
            } else {
                tr += 1.0;
            }
        }
        let idcg: f64 = (0..k.min(rel.len()))
            .map(|r| 1.0 / ((r + 2) as f64).log2())
            .sum();
        acc[0] += dcg / idcg;
        acc[1] += hits / rel.len() as f64;
        acc[2] += hits / k as f64;
        acc[3] += if hits > 0.0 { 1.0 } else { 0.0 };
        acc[4] += rr;
        acc[5] += if top.is_empty() {
            0.0
        } else {
            top.iter().map(|&it| pop[it as usize] as f64).sum::<f64>() / top.len() as f64
        };
        let trained: HashSet<u32> = train[u as usize].iter().copied().collect();
        for it in 0..n_items as u32 {
            if !trained.contains(&it) {
                if head.contains(&it) {
                    ha += 1.0;
                } else {
                    ta += 1.0;
                }
            }
        }
    }
    let ph = if ha > 0.0 { hr / ha } else { 0.0 };
    let pt = if ta > 0.0 { tr / ta } else { 0.0 };
    let mean = (ph + pt) / 2.0;
    let std = (((ph - mean).powi(2) + (pt - mean).powi(2)) / 2.0).sqrt();
    CutoffMetrics {
        k,
        ndcg: acc[0] / n,
        recall: acc[1] / n,
        precision: acc[2] / n,
        hit_rate: acc[3] / n,
        mrr: acc[4] / n,
        arp: acc[5] / n,
        coverage: covered.len(),
        coverage_pct: 100.0 * covered.len() as f64 / n_items as f64,
        poprsp: if mean == 0.0 { 0.0 } else { std / mean },
    }
}

#[test]
fn matches_naive_reference_on_random_inputs() {
    let mut g = Gen(7);
    for case in 0..200 {
        let n_items = 1 + g.below(60);
        let n_users = 1 + g.below(30);
        let k_max = 1 + g.below(25);
        let pop: Vec<u32> = (0..n_items)
            .map(|_| {
                if g.below(4) == 0 {
                    0
                } else {
                    g.below(50) as u32
                }
            })
            .collect();
        let mut train = Vec::new();
        let mut truth = Vec::new();
        let mut lists = Vec::new();
        for _ in 0..n_users {
            // Each item is trained on, relevant, or neither.
            let (mut tr, mut rel, mut cand) = (Vec::new(), Vec::new(), Vec::new());
            for it in 0..n_items as u32 {
                match g.below(6) {
                    0 => tr.push(it),
                    1 => {
                        rel.push(it);
                        cand.push(it);
                    }
                    _ => cand.push(it),
                }
            }
            // A random ranking of the candidates, cut at k_max.
            for i in (1..cand.len()).rev() {
                cand.swap(i, g.below(i + 1));
            }
            cand.truncate(k_max);
            train.push(tr);
            truth.push(rel);
            lists.push(cand);
        }
        let users: Vec<u32> = (0..n_users as u32).collect();
        let mut flat = Vec::with_capacity(n_users * k_max);
        for l in &lists {
            flat.extend_from_slice(l);
            flat.extend(std::iter::repeat_n(PAD, k_max - l.len()));
        }
        let cutoffs = [1, 3, 5, 10, 20, 30];
        let r = evaluate(
            &RankedLists {
                users: &users,
                items: &flat,
                k_max,
            },
            &Csr::from_rows(&truth),
            &Csr::from_rows(&train),
            &pop,
            &cutoffs,
        );
        let evaluated = truth.iter().filter(|t| !t.is_empty()).count();
        assert_eq!(r.users, evaluated);
        assert_eq!(r.skipped, n_users - evaluated);
        if evaluated == 0 {
            continue;
        }
        for (got, &k) in r.cutoffs.iter().zip(&cutoffs) {
            let want = naive(&users, &lists, &truth, &train, &pop, k);
            let what = |m: &str| format!("case {case} k {k} {m}");
            close(got.ndcg, want.ndcg, &what("ndcg"));
            close(got.recall, want.recall, &what("recall"));
            close(got.precision, want.precision, &what("precision"));
            close(got.hit_rate, want.hit_rate, &what("hit_rate"));
            close(got.mrr, want.mrr, &what("mrr"));
            close(got.arp, want.arp, &what("arp"));
            close(got.poprsp, want.poprsp, &what("poprsp"));
            close(got.coverage_pct, want.coverage_pct, &what("coverage_pct"));
            assert_eq!(got.coverage, want.coverage, "{}", what("coverage"));
            // The per-user values average to the reported means.
            for (m, mean) in USER_METRICS.iter().zip([
                got.ndcg,
                got.recall,
                got.precision,
                got.hit_rate,
                got.mrr,
                got.arp,
            ]) {
                let v = r.per_user.get(m, k).unwrap();
                assert_eq!(v.len(), evaluated);
                close(v.iter().sum::<f64>() / v.len() as f64, mean, &what(m));
            }
        }
    }
}

#[test]
fn ml1m_sized_evaluation_is_fast() {
    // 6,040 users × k = 20 over 3,706 items, like ML-1M. Generous bound (shared CI cores); the
    // expected time is about a millisecond.
    let (n_users, n_items, k) = (6040usize, 3706usize, 20usize);
    let mut g = Gen(11);
    let pop: Vec<u32> = (0..n_items).map(|_| g.below(3000) as u32).collect();
    let rows = |g: &mut Gen, n: usize| -> Vec<Vec<u32>> {
        (0..n_users)
            .map(|_| {
                let mut r: Vec<u32> = (0..n).map(|_| g.below(n_items) as u32).collect();
                r.sort_unstable();
                r.dedup();
                r
            })
            .collect()
    };
    let truth = Csr::from_rows(&rows(&mut g, 30));
    let train = Csr::from_rows(&rows(&mut g, 120));
    let items: Vec<u32> = (0..n_users * k).map(|_| g.below(n_items) as u32).collect();
    let users: Vec<u32> = (0..n_users as u32).collect();
    let lists = RankedLists {
        users: &users,
        items: &items,
        k_max: k,
    };
    let t = Instant::now();
    let r = evaluate(&lists, &truth, &train, &pop, &DEFAULT_CUTOFFS);
    let dt = t.elapsed();
    eprintln!("ML-1M-sized evaluation: {dt:?}");
    assert_eq!(r.users, n_users);
    assert!(dt.as_millis() < 500, "took {dt:?}");
}
