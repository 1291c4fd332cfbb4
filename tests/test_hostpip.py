"""The host's pip configuration carried into build containers."""
from pathlib import Path

from tykky import hostpip
from tykky.hostpip import host_pip_binds, uv_environment


def only_the_given_config(monkeypatch):  # type: ignore[no-untyped-def]
    """The machine's own /etc/pip.conf stays out of the uv tests."""
    monkeypatch.setattr(hostpip, "pip_config_files", lambda environ: [Path(environ["PIP_CONFIG_FILE"])])


def test_config_files_and_what_they_name_are_bound(tmp_path):
    cert = tmp_path / "ca.pem"
    cert.write_text("x")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\ncert = {cert}\nconstraint = {constraints}\n"
                      f"find-links = {wheels}\nextra-index-url = file://{wheels} https://mirror.invalid/simple\n")
    binds = host_pip_binds({"PIP_CONFIG_FILE": str(config), "HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path)})
    assert str(config) in binds and str(cert) in binds and str(constraints) in binds and str(wheels) in binds
    assert not any("mirror.invalid" in b for b in binds)


def test_ca_variables_are_bound_when_files_exist(tmp_path):
    bundle = tmp_path / "bundle.crt"
    bundle.write_text("x")
    binds = host_pip_binds({"SSL_CERT_FILE": str(bundle), "REQUESTS_CA_BUNDLE": "/does/not/exist",
                            "HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path)})
    assert str(bundle) in binds and "/does/not/exist" not in binds


def test_uv_gets_the_pip_index_settings(tmp_path, monkeypatch):
    only_the_given_config(monkeypatch)
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = https://mirror.invalid/simple\nfind-links = /w\n")
    env = uv_environment({"PIP_CONFIG_FILE": str(config), "HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path),
                          "PIP_CERT": "/etc/ca.pem"})
    assert env == {"UV_INDEX_URL": "https://mirror.invalid/simple", "UV_FIND_LINKS": "/w",
                   "SSL_CERT_FILE": "/etc/ca.pem"}


def test_uv_considers_every_index_like_pip(tmp_path, monkeypatch):
    only_the_given_config(monkeypatch)
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nextra-index-url = file:///local/simple\n")
    env = uv_environment({"PIP_CONFIG_FILE": str(config), "HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path)})
    assert env == {"UV_EXTRA_INDEX_URL": "file:///local/simple", "UV_INDEX_STRATEGY": "unsafe-best-match"}


def test_later_config_files_win_and_broken_ones_are_skipped(tmp_path):
    from tykky.hostpip import pip_options

    first, broken, last = tmp_path / "a.conf", tmp_path / "b.conf", tmp_path / "c.conf"
    first.write_text("[global]\nindex-url = https://a.invalid/simple\ntimeout = 5\n")
    broken.write_text("this is no ini file\n[global\n")
    last.write_text("[install]\nindex-url = https://c.invalid/simple\n[freeze]\nall = true\n")
    assert pip_options([first, broken, last]) == {"index-url": "https://c.invalid/simple", "timeout": "5"}
    first.write_text("[install]\nindex-url = https://install.invalid/simple\n[global]\nindex-url = https://g.invalid/\n")
    assert pip_options([first]) == {"index-url": "https://install.invalid/simple"}  # as pip: install wins


def test_uv_trusts_the_ca_bundle_of_the_pip_config(tmp_path, monkeypatch):
    only_the_given_config(monkeypatch)
    config = tmp_path / "pip.conf"
    config.write_text("[global]\ncert = /etc/site-ca.pem\n")
    env = uv_environment({"PIP_CONFIG_FILE": str(config), "HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path)})
    assert env == {"SSL_CERT_FILE": "/etc/site-ca.pem"}
