//! lazymm-sim
