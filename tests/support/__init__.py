"""Test support shared by integration tests (registered in tests/conftest.py).

Fixtures (see each module):

* `smtp_server` (tests.support.smtp): a real aiosmtpd server on 127.0.0.1 that keeps every
  message it accepts and can be told to answer 451 to the next N messages, 550 to chosen
  recipients, or to take a while per message.
* `start_worker` / `worker_process` (tests.support.worker): a real `celery -A portal worker`
  subprocess against the pytest-django test database, the session's Redis broker and the
  `smtp_server`; it can be SIGKILLed and restarted. Using them implies `transactional_db`.
* `wait_until(predicate, *, timeout, interval, message)` (tests.support.waiting): poll with a
  deadline instead of sleeping.
"""
