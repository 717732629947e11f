"""pyproject.toml as the build backend reads it: `pip install -e .` must not print deprecations."""

import warnings
from pathlib import Path

import pytest

setuptools = pytest.importorskip("setuptools", minversion="77")
from setuptools.config.pyprojecttoml import apply_configuration  # noqa: E402
from setuptools.dist import Distribution  # noqa: E402

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_pyproject_metadata_reads_without_deprecation_warnings():
    # A `license = { text = ... }` table printed a SetuptoolsDeprecationWarning on every install
    # (scripts/setup.sh), with a date after which setuptools refuses it.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), PYPROJECT)
    assert dist.metadata.license_expression == "Apache-2.0"


def test_the_console_script_is_the_light_entry_point():
    # `benchmark.cli:app` imported everything before its Ctrl-C handling (benchmark.entry).
    dist = apply_configuration(Distribution(), PYPROJECT)
    assert dist.entry_points["console_scripts"] == ["insertbench = benchmark.entry:main"]
