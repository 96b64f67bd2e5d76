//! Conformance suites and test doubles shared by every backend's tests.
