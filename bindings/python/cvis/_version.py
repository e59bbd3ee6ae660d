"""The package's version: the libcvis version it is written for.  Kept equal
to CVIS_VERSION_MAJOR.MINOR.PATCH of include/cvis.h (a test checks it);
pyproject.toml reads it from here."""
__version__ = "1.0.0"
