"""A stand-in for tykky.runner.run: records what would run and answers as told."""
from typing import Callable, Dict, List, Optional, Sequence

from tykky import runner

# Called with each argv before the answer: makes the files the real tool would have made.
Effect = Callable[[Sequence[str]], None]


class FakeRunner:
    """Every call's argv, env and cwd, in order; each call exits with `returncode`."""

    def __init__(self, returncode: int = 0, output: str = "", effect: Optional[Effect] = None) -> None:
        self.returncode = returncode
        self.output = output
        self.effect = effect
        self.calls: List[Dict[str, object]] = []

    def __call__(self, argv: Sequence[str], *, what: str, env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None, echo: Optional[bool] = None, check: bool = True,
                 stdin_text: Optional[str] = None) -> runner.Completed:
        self.calls.append({"argv": list(argv), "env": env, "cwd": cwd, "what": what, "check": check})
        if self.effect:
            self.effect(argv)
        return runner.Completed(list(argv), self.returncode, self.output)

    @property
    def argvs(self) -> List[List[str]]:
        return [call["argv"] for call in self.calls]  # type: ignore[misc]


def fake_runner(monkeypatch, **answer) -> FakeRunner:  # type: ignore[no-untyped-def]
    """Put a FakeRunner behind the runner seam for one test."""
    fake = FakeRunner(**answer)
    monkeypatch.setattr(runner, "run", fake)
    return fake
