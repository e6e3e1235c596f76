//! lazymm-trace
