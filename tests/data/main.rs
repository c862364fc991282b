//! The data pipeline: readers, bad input, preprocessing and the split, on fixtures and generated data.
//! Needs no adapter.

mod errors;
mod pipeline;
mod readers;
mod synthetic;
mod workloads;
