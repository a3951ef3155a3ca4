"""parity: one definition of every feature, run the same way everywhere.

The library is laid out by lifecycle; each room imports only the rooms below it:

    parity.app         the job contract, each job's flow, the `parity` command
    parity.governance  MLflow tracking, the model registry, lineage (audit.runs)
    parity.scoring     batch scoring from a model's feature spec
    parity.model       the feature spec and the packaged MLflow pyfunc
    parity.training    model inputs, time splits, learners, search spaces, the trial engine
    parity.features    transforms, PII, quality, feature-set builds, as-of joins, training sets
    parity.demo        seeded sample sources
    parity.core        conf, the Spark session, the Delta catalog, column names, hashing

The flat module paths of earlier versions (`parity.conf`, `parity.transforms`, ...) stay
importable as aliases of their new homes (see `parity._moved`).
"""

from __future__ import annotations

from parity import _moved

__version__ = "0.3.1"

_moved.install()
