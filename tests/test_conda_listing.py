"""list-packages: conda records plus the Python packages pip put on top."""
import json
import subprocess

from tykky.conda_listing import listing, write_list_packages


def make_env(root):
    meta = root / "conda-meta"
    meta.mkdir(parents=True)
    site = root / "lib" / "python3.11" / "site-packages"
    (site / "pip-22.3.1.dist-info").mkdir(parents=True)
    (site / "six-1.16.0.dist-info").mkdir(parents=True)
    (meta / "pip-22.3.1-0.json").write_text(json.dumps({
        "name": "pip", "version": "22.3.1", "build": "pyhd8ed1ab_0",
        "channel": "https://conda.example.org/conda-forge/",
        "files": ["lib/python3.11/site-packages/pip-22.3.1.dist-info/METADATA", "bin/pip"]}))
    (meta / "zlib-1.3-0.json").write_text(json.dumps({
        "name": "zlib", "version": "1.3", "build": "h0", "channel": "file:///opt/channel/", "files": []}))
    (meta / "history").write_text("")
    return root


def test_listing_shows_conda_and_pip_packages(tmp_path):
    text = listing(make_env(tmp_path / "env"), "/TYKKY/env1")
    lines = text.splitlines()
    assert lines[0] == "# packages in environment at /TYKKY/env1:"
    rows = {line.split()[0]: line.split()[1:] for line in lines if not line.startswith("#")}
    assert rows["pip"] == ["22.3.1", "pyhd8ed1ab_0", "conda-forge"]
    assert rows["zlib"] == ["1.3", "h0", "file:///opt/channel/"]
    assert rows["six"] == ["1.16.0", "pypi_0", "pypi"]
    assert len(rows) == 3


def test_list_packages_script_prints_the_listing(tmp_path):
    env = make_env(tmp_path / "env")
    script = write_list_packages(env, "/TYKKY/env1")
    output = subprocess.run([str(script)], check=True, stdout=subprocess.PIPE).stdout.decode()
    assert output == listing(env, "/TYKKY/env1")
