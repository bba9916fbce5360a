"""Poll a condition with a deadline: the only way tests wait for another process."""

import time


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline (an assertion failure, not an error)."""


def wait_until(predicate, *, timeout=30, interval=0.05, message="condition"):
    """Call `predicate` until it returns something truthy; return that value.

    Raises WaitTimeout after `timeout` seconds, naming `message` (a string, or a callable
    returning one, evaluated only on failure, so it can describe the state at that moment).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"Timed out after {timeout} s waiting for: {text}")
        time.sleep(interval)
