//! The Tributary operator.
