//! The study's metrics on hand-computed cases and against a naive reference, and the paired t-test
//! against SciPy's values. Needs no adapter.

mod hand_computed;
mod significance;
