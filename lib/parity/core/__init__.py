"""The foundation: conf (`conf`), the Spark session (`session`), all Delta table I/O (`catalog`),
shared column names (`columns`), code and conf hashing (`hashing`), lazy re-exports (`exports`).

It imports nothing else of parity; every other room builds on it.
"""
