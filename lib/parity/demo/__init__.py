"""Seeded sample sources for the demo, the tests and the benchmarks (`sample_data`)."""
