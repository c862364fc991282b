//! The binary end to end: every command on the embedded dataset and fixtures, and its errors.

mod commands;
mod compare;
mod data;
