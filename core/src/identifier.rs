//! identifier
