"""eta_s: the seconds left that the worker writes with a job's progress."""

import pytest

from framequeue.worker.attempt import eta_s


def test_eta() -> None:
    assert eta_s(50, 150, fps=25.0) == pytest.approx(4.0)
    assert eta_s(50, None, fps=25.0) is None
    assert eta_s(50, 150, fps=0.0) is None
