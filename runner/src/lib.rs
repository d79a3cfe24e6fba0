//! The Tributary runner.
