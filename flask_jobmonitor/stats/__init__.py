"""The statistics page's figures and queue health, computed in SQL, the cache of closed hours
and days, and the SVG charts. The pages themselves are in ``web/admin/statistics.py``.

Imports from ``records``, ``state.py`` and the base modules only (tests/test_architecture.py
checks it).
"""
