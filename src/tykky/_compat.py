"""Python 3.8, the oldest supported: importlib.resources.files arrived in 3.9.

Our data packages are plain directories (in a source checkout and in tykky.pyz's extraction
alike), so a package's directory serves the same calls (joinpath, read_text, iterdir).
"""
import importlib
import importlib.resources
import sys
from pathlib import Path
from types import ModuleType
from typing import Union


def package_directory(package: Union[str, ModuleType]) -> Path:
    module = importlib.import_module(package) if isinstance(package, str) else package
    return Path(str(module.__file__)).parent


if sys.version_info < (3, 9) and not hasattr(importlib.resources, "files"):
    importlib.resources.files = package_directory  # type: ignore[attr-defined]
