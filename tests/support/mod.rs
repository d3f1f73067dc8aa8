//! Helpers shared by the integration tests.
pub mod daemon;
pub mod skip;
pub mod smtp;
