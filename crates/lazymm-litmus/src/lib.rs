//! lazymm-litmus
