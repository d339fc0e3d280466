//! Unordered containers, implemented as hash-tables

pub mod map;
pub mod set;
