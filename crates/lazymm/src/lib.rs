//! lazymm
