"""The worker's own checks, with records standing in for py-rattler's (no solver runs here)."""
from types import SimpleNamespace

import pytest

from tykky import conda_worker


def record(name: str, version: str, build: str = "0") -> SimpleNamespace:
    return SimpleNamespace(name=SimpleNamespace(normalized=name), version=version, build=build)


def test_a_transaction_that_only_adds_is_allowed_over_layers():
    conda_worker.check_keeps_installed([record("a", "1.0")], [record("a", "1.0"), record("b", "2.0")])


@pytest.mark.parametrize("solved", [[record("a", "2.0")], [record("a", "1.0", "1")], []])
def test_changing_or_removing_an_installed_package_is_refused(solved):
    with pytest.raises(conda_worker.WorkerError) as raised:
        conda_worker.check_keeps_installed([record("a", "1.0")], solved)
    assert raised.value.kind == "needs-removals" and "(a)" in str(raised.value)
