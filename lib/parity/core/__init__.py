"""The foundation: conf (`conf`), the Spark session (`session`), all Delta table I/O (`catalog`, the
facade over `table_store`, `table_history` and `transaction`; py4j into Delta's log only in
`delta_log`), the platform's column names (`columns`), code and conf hashing (`hashing`), lazy
re-exports (`exports`).

It imports nothing else of parity; every other room builds on it.
"""
