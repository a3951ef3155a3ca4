"""The generate_data job's flow: write the demo's seeded sample sources to the tables conf names
(see parity.demo.sample_data)."""

from __future__ import annotations

from parity.app.jobkit import JobContext
from parity.demo.sample_data import write_sample_sources


def generate_data(ctx: JobContext) -> None:
    """Write the sample sources and count the rows of each: the job's body."""
    ctx.counts.update(write_sample_sources(ctx.catalog, ctx.settings))
