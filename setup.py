"""Installs the shared library (lib/parity) and the `parity` console script."""

from setuptools import find_packages, setup

setup(
    name="parity",
    version="0.3.1",  # parity.__version__
    description="One definition of every feature, run the same way everywhere.",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    package_data={"parity": ["py.typed", "core/kept_texts.json.gz"]},  # kept_texts: parity.core.hashing
    python_requires=">=3.11",
    install_requires=[
        "pyspark==4.2.0",
        "delta-spark==4.4.1",
        "mlflow==3.17.2",
        "hyperopt==0.3.0",
        "scikit-learn",
        "skops",
        "pandas<3",
        "pyarrow",
        "polars",  # the Arrow engine of rolling aggregates (parity.features.rolling)
        "pydantic>=2",
        "PyYAML",
    ],
    entry_points={"console_scripts": ["parity=parity.app.cli:main"]},
)
