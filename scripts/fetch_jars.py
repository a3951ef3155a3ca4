#!/usr/bin/env python3
"""Fetch the Delta Lake jars from Maven Central into a cached folder (default: .jars/).

Uses only the standard library, so it runs before the virtualenv exists. Each jar is checked
against the SHA-1 that Maven Central publishes next to it, written to a temporary name and
renamed into place, so an interrupted download never leaves a truncated jar behind. Once the
jars are cached, nothing here touches the network again.

Why these two jars: delta-spark for Spark 4.2 is published as `delta-spark_4.2_2.13`. The
Python package delta-spark 4.4.1 has no jar of the same version on Maven Central, so the
newest jar for Spark 4.2 (4.4.0) is pinned here. Spark itself provides every other runtime
dependency; the delta-kernel artifacts the POM lists are not needed by the Spark connector
paths parity uses (reads, writes, MERGE, time travel, history).
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

MAVEN = "https://repo1.maven.org/maven2"
JARS = [
    ("io.delta", "delta-spark_4.2_2.13", "4.4.0"),
    ("io.delta", "delta-storage", "4.4.0"),
]


def _url(group: str, artifact: str, version: str, suffix: str) -> str:
    return f"{MAVEN}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar{suffix}"


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def main(argv: list[str]) -> int:
    target = Path(argv[1] if len(argv) > 1 else ".jars")
    target.mkdir(parents=True, exist_ok=True)
    for group, artifact, version in JARS:
        jar = target / f"{artifact}-{version}.jar"
        if jar.exists():
            continue
        try:
            expected = _fetch(_url(group, artifact, version, ".sha1")).decode().split()[0]
            data = _fetch(_url(group, artifact, version, ""))
        except OSError as exc:
            print(
                f"error: cannot download {artifact}-{version}.jar from Maven Central: {exc}", file=sys.stderr
            )
            return 1
        actual = hashlib.sha1(data).hexdigest()
        if actual != expected:
            print(f"error: checksum mismatch for {jar.name}: {actual} != {expected}", file=sys.stderr)
            return 1
        partial = jar.with_suffix(".jar.part")
        partial.write_bytes(data)
        os.replace(partial, jar)
        print(f"fetched {jar}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
