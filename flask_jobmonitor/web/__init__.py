"""What runs in a web request: the blueprint and its URLs, the JSON endpoints, the actions a
request takes (``actions.py``, shared by the job pages' forms and the JSON), downloads, the
job list's queries, the detail page, how a job looks, template helpers, and the Flask-Admin
views (``admin/``), with the templates and static files they render.

Never imported by ``records``, ``jobs``, ``worker`` or ``stats`` (tests/test_architecture.py
checks it): the code a worker runs never calls into the web side (the package's ``__init__``
still loads it, as the extension registers the blueprint).
"""
