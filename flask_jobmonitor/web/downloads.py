"""Downloads of job files: served by file id, after checking that the file's own job is visible;
nothing in the request names a path."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, send_file

from ..i18n import gettext
from ..records.models import file_table
from ..state import get_state
from .requests import abort_json, require_access, visible_ids

MAX_FILE_ID = 2**31 - 1  # INTEGER


def download(file_id: str) -> Response:
    """Send a job file by id, as an attachment, if the user may see its job. Any other id (not a
    whole number, out of range) answers the same JSON 404 as an unknown one."""
    require_access()
    if not (file_id.isascii() and file_id.isdigit()) or int(file_id) > MAX_FILE_ID:
        abort_json(404, gettext("no file with id %(id)s", id=file_id[:40]))
    state = get_state()
    with state.engine.connect() as connection:
        row = connection.execute(sa.select(file_table).where(file_table.c.id == int(file_id))).first()
    if row is None or not visible_ids(state, [row.job_id]):
        # a file of a job the user may not see answers as a file that does not exist, naming no job
        abort_json(404, gettext("no file with id %(id)s", id=file_id))
    try:
        handle = state.storage.open(row.storage_key)
    except FileNotFoundError:
        abort_json(410, gettext("the file “%(name)s” is no longer stored", name=row.filename))

    # send_file writes an ASCII filename= and a UTF-8 filename*= for names like "März €.csv"
    response = send_file(
        handle,
        mimetype=row.content_type,
        as_attachment=True,
        download_name=row.original_name or row.filename,  # the name it was uploaded under
        conditional=False,
    )
    response.content_length = row.size  # a stream has no size of its own; the record has it
    # always, also with JOBMONITOR_SECURITY_HEADERS off (headers.py): the type is the uploader's
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
