//! Every kernel against its CPU twin on fresh random inputs (seed printed; replay with
//! COBRAR_TEST_SEED): the selftest's kernel checks (`src/selftest/kernels.rs`, where the cases and their
//! tolerances are stated), one test each, every case of the full set. A kernel that no check runs
//! fails the coverage test.

use crate::common::check;

#[test]
fn spmm_matches_cpu_twin_over_chunks_scales_and_activations() {
    check("kernel:spmm");
}

#[test]
fn column_sums_match_cpu_twin() {
    check("kernel:column_sums");
}

#[test]
fn dense_forward_matches_cpu_twin() {
    check("kernel:dense_forward");
}

#[test]
fn dense_forward_many_row_tiles() {
    check("kernel:dense_forward.many_tiles");
}

#[test]
fn dense_backward_data_matches_cpu_twin() {
    check("kernel:dense_backward_data");
}

#[test]
fn dense_backward_weight_matches_cpu_twin_fresh_and_accumulating() {
    check("kernel:dense_backward_weight");
}

#[test]
fn score_loss_matches_cpu_twin() {
    check("kernel:score_loss");
}

#[test]
fn bpr_loss_matches_cpu_twin() {
    check("kernel:bpr_loss");
}

#[test]
fn propagation_layers_and_the_regulariser_match_cpu_twins() {
    check("kernel:propagate");
}

#[test]
fn adam_dense_matches_cpu_twin() {
    check("kernel:adam_dense");
}

#[test]
fn adam_table_and_its_gather_match_cpu_twins_over_chunks() {
    check("kernel:adam_table");
}

#[test]
fn lazy_adam_steps_only_touched_rows_each_with_its_count_and_matches_dense_adam_when_all_are() {
    check("kernel:adam_table.lazy");
}

#[test]
fn the_gradient_index_built_on_the_gpu_is_the_hosts() {
    check("kernel:batch_index");
}

#[test]
fn spmm_transpose_matches_cpu_twin_over_chunks_scales_and_dropout() {
    check("kernel:spmm_transpose");
}

#[test]
fn vae_stages_match_cpu_twins() {
    check("kernel:vae");
}

#[test]
fn strided_copy_matches_cpu_twin() {
    check("kernel:strided_copy");
}

#[test]
fn nonfinite_count_and_copy_match_cpu_twins() {
    check("kernel:reduce+copy");
}

/// Every check of the selftest has a test here or in `steps`, `baselines`, `multvae`, `ranking`.
#[test]
fn every_selftest_check_is_a_test() {
    let files = [
        include_str!("kernels.rs"),
        include_str!("steps.rs"),
        include_str!("baselines.rs"),
        include_str!("multvae.rs"),
        include_str!("ranking.rs"),
    ]
    .concat();
    for c in cobrar_gpu::selftest::CHECKS {
        assert!(
            files.contains(&format!("check(\"{}\")", c.name)),
            "selftest check {} has no test",
            c.name
        );
    }
}
