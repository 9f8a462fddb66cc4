//! Planning an upgrade: the Plan model, and (in submodules) the rules and simulators that fill it.

pub mod generations;
pub mod model;
pub mod schedule;
pub mod simulate;
pub mod table;
pub mod window;

pub use model::*;
