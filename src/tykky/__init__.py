"""tykky: containerized conda, pip and existing installations for HPC systems."""

from tykky import _compat  # noqa: F401  (Python 3.8: importlib.resources.files)

__version__ = "0.1.0"
