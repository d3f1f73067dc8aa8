//! Helpers shared by the integration tests.
pub mod daemon;
pub mod pg;
pub mod skip;
pub mod smtp;
