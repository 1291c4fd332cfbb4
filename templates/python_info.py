"""Runs with an installation's Python inside the container; prints what the prefix needs
to read as a venv of it. Must run on any Python 3 the installation might have."""
import json
import os
import sys
import sysconfig

stdlib = sysconfig.get_path("stdlib")
include = sysconfig.get_path("include")
print(json.dumps({
    "executable": sys.executable,
    "version": "%d.%d" % sys.version_info[:2],
    "full_version": sys.version.split()[0],
    "site_packages": sysconfig.get_path("purelib"),
    "stdlib_parent": os.path.dirname(stdlib),
    "include_parent": os.path.dirname(include) if include else "",
}))
