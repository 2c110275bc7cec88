"""Deadline: the time budget a datastore call and its retries share, on a simulated clock."""

from __future__ import annotations

import pytest

from ingestion_project.datastores.deadline import MIN_ATTEMPT_SECONDS, Deadline
from ingestion_project_tests.datastores.timing import FakeClock


def test_the_budget_shrinks_as_time_passes_and_never_goes_negative() -> None:
    clock = FakeClock()
    deadline = Deadline(5, clock)

    assert deadline.remaining() == 5
    clock.advance(2)
    assert deadline.remaining() == 3
    clock.advance(10)
    assert deadline.remaining() == 0


@pytest.mark.parametrize(
    ("elapsed", "pause", "allowed"),
    [
        pytest.param(0, 4.5, True, id="a pause that leaves time for an answer"),
        pytest.param(4.5, 0, True, id="half a second left"),
        pytest.param(3, 2, False, id="a pause that uses up the budget"),
        pytest.param(5 - MIN_ATTEMPT_SECONDS / 2, 0, False, id="too little left"),
        pytest.param(5, 0, False, id="nothing left"),
    ],
)
def test_an_attempt_is_allowed_only_if_time_is_left_for_its_answer(
    elapsed: float, pause: float, allowed: bool
) -> None:
    clock = FakeClock()
    deadline = Deadline(5, clock)
    clock.advance(elapsed)

    assert deadline.allows_attempt_after(pause) is allowed


def test_pauses_are_taken_on_the_deadlines_clock() -> None:
    clock = FakeClock()
    deadline = Deadline(5, clock)

    deadline.pause(1.5)
    deadline.pause(0)

    assert clock.sleeps == [1.5]
    assert deadline.remaining() == 3.5
