//! Contract tests: Rust types vs `.avsc`, wire-format round trips, decimals, schema evolution and
//! every dead-letter reason class. One test binary (with modules) to keep link time low.

mod dead_letters;
mod decimals;
mod evolution;
mod matches_avsc;
mod roundtrip;
mod samples;
