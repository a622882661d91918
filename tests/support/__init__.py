"""Helpers of the test suite: one place for each, imported by test modules and fixtures alike.

The rule: a helper (a function, a class, a constant a test reads) lives here, once, with a
docstring; a ``conftest.py`` holds fixtures only, built from these helpers, and no module
imports from a ``conftest.py``. A test module imports what it needs from ``tests.support``.

* ``services``: the Redis and PostgreSQL servers of the run, read from the environment once
* ``databases``: PostgreSQL databases of a run, empty tables, recorded SQL, closing engines
* ``rows``: job rows written and read with SQLAlchemy Core (no session cache involved)
* ``queues``: RQ queues emptied and counted; ``storage``: stored files on disk
* ``waiting``: polling until a condition holds (``wait_for``, ``wait_row``, ``wait_status``)
* ``workers``: real RQ workers in the test process (burst, or in a thread)
* ``processes``: processes seen through /proc (alive, children)
* ``extensions``: the shared ``db`` and ``jobmonitor`` objects the test tasks register on
* ``apps``: the one builder of test host apps, with options for each kind of host
* ``users``: the users of the test hosts, their log-in and CSRF tokens
* ``web``: jobs launched for a user, fixed times, the rows of a rendered list
* ``examples``: the example catalogue (``example_app``) built for a test, and its log-in
* ``reliability``: real worker subprocesses that can be killed, for the reliability tests
* ``browser``: the live example catalogue of the browser tests

The task modules stay where they are (``tests/tasks.py``, ``tests/control_tasks.py``,
``tests/reliability_tasks.py``), as does ``tests/worker_app.py`` (the app factory the worker
subprocesses load) and ``tests/sigterm_hooks.py`` (a worker class): RQ jobs, job rows and
subprocess command lines name them by dotted path.
"""
