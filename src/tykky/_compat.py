"""Python 3.8, the oldest supported: importlib.resources.files arrived in 3.9.

Our data packages are plain directories (in a source checkout and in tykky.pyz's extraction
alike), so a package's directory serves the same calls (joinpath, read_text, iterdir).
"""
import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from pathlib import Path


def package_directory(package: Union[str, ModuleType]) -> "Path":
    from pathlib import Path

    module = importlib.import_module(package) if isinstance(package, str) else package
    return Path(str(module.__file__)).parent


if sys.version_info < (3, 9):  # importing importlib.resources costs ~20 ms: only where needed
    import importlib.resources

    if not hasattr(importlib.resources, "files"):
        importlib.resources.files = package_directory  # type: ignore[attr-defined]
