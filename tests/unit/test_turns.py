"""Turnstile: one section at a time, in ticket order, whatever order threads arrive in."""

from __future__ import annotations

import threading
import time

from freight.turns import Turnstile


def test_sections_run_in_ticket_order_and_released_tickets_are_skipped() -> None:
    turns = Turnstile()
    tickets = [turns.ticket() for _ in range(6)]
    ran: list[int] = []
    inside = threading.Semaphore(1)  # never more than one section at once

    def work(n: int) -> None:
        if n == 3:
            tickets[n].release()  # needed no section (a cached layer)
            tickets[n].release()  # releasing twice is harmless
            return
        with tickets[n].turn():
            assert inside.acquire(blocking=False)
            ran.append(n)
            time.sleep(0.01)
            inside.release()

    threads = [threading.Thread(target=work, args=(n,)) for n in reversed(range(6))]
    for thread in threads:  # the last ticket's thread arrives first
        thread.start()
        time.sleep(0.005)
    for thread in threads:
        thread.join(10)
    assert ran == [0, 1, 2, 4, 5]


def test_a_failing_section_passes_the_turn_on() -> None:
    turns = Turnstile()
    first, second = turns.ticket(), turns.ticket()
    try:
        with first.turn():
            raise RuntimeError("bad layer")
    except RuntimeError:
        pass
    done = threading.Event()

    def later() -> None:
        with second.turn():
            done.set()

    threading.Thread(target=later).start()
    assert done.wait(5)
