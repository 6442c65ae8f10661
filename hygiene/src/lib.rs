//! Test-only harness for secret hygiene; see `tests/`.
