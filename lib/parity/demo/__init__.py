"""The demo: seeded sample sources for the demo, the tests and the benchmarks (`sample_data`), and
their column names and contracts (`columns`)."""
