"""Chunks sent side by side (export.push.in_flight): the push's bulk jobs overlap, but no more
of them than asked, their answers come back in order, and a failure starts nothing new."""

import threading

import pytest

from crm_pipelines.export.push import in_flight


def test_parts_go_side_by_side_up_to_the_limit_and_answer_in_order() -> None:
    running, most, lock = 0, 0, threading.Lock()
    both_started = threading.Barrier(2, timeout=10)

    def send(part: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        if part < 2:
            both_started.wait()  # the first two are under way together, or this times out
        with lock:
            running -= 1
        return part * 10

    assert list(in_flight(range(7), send, 2, "test")) == [0, 10, 20, 30, 40, 50, 60]
    assert most == 2


def test_a_failed_part_starts_no_new_one_and_lets_the_one_under_way_finish() -> None:
    started, finished = [], []
    second_started, second_may_end = threading.Event(), threading.Event()

    def send(part: int) -> int:
        started.append(part)
        if part == 0:
            second_started.wait(10)
            raise RuntimeError("the CRM refused the job")
        second_started.set()
        second_may_end.wait(10)
        finished.append(part)
        return part

    answers = in_flight(range(5), send, 2, "test")
    second_may_end.set()
    with pytest.raises(RuntimeError):
        next(answers)
    assert sorted(started) == [0, 1] and finished == [1], "part 1 was under way and ended; 2-4 never started"


def test_one_at_a_time_sends_in_the_callers_thread() -> None:
    threads = set()
    assert list(in_flight([1, 2], lambda p: threads.add(threading.get_ident()) or p, 1, "test")) == [1, 2]
    assert threads == {threading.get_ident()}
