//! The `finstream` application: configuration, the schema registry it uses, and (in `main.rs`) the
//! command line that wires them to the engine.

pub mod app;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod generate;
pub mod import;
pub mod registry;
pub mod reset;
pub mod serve;
