//! Verification harness for lazymm (see the tests).
