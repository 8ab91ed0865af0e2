"""The version of cnncalc, at the bottom of the package: the package, the exporter's header and
`cnncalc --version` read it from here."""

__version__ = "0.1.0"  # as pyproject.toml says
