//! The binary end to end: every command on the embedded dataset and fixtures, its errors, the
//! reliability contract (SPEC §8) and `train --resume`.

mod bench;
mod cold_start;
mod commands;
mod common;
mod compare;
mod data;
mod hostile;
mod recommend;
mod reliability;
mod reproduce;
mod resume;
mod selftest;
mod side_info;
