"""tykky: containerized conda, pip and existing installations for HPC systems."""

__version__ = "0.1.0"
