"""The catalogue's admin: a home page, products (with a mass edit), import and export profiles
whose pages show their "Last execution" with a Stop button.

Forms: the app protects every POST with Flask-WTF's ``CSRFProtect``, so the model views' forms
(edit, delete and the list's actions) must carry Flask-WTF's token: their base class is
:class:`CatalogueForm`, a ``FlaskForm``. Flask-Admin's ``SecureForm`` signs a token of its own
that ``CSRFProtect`` rejects ("The CSRF token is invalid").

A profile's "Last execution" is the newest run of that profile that the viewer may open: the
package's permissions object turns its rule into one SQL condition, so a clerk never sees the
name, status or id of a job someone else ran."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response
from wtforms import FloatField
from wtforms.validators import InputRequired, NumberRange

from flask_jobmonitor import EnqueueError, FileTooLarge, Job

from .extensions import db, jobmonitor
from .models import ExportProfile, ImportProfile
from .views import too_large_message


class _LoginRequired:
    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        return redirect(url_for("auth.login", next=request.full_path))


class CatalogueHome(_LoginRequired, AdminIndexView):
    @expose("/")
    def index(self) -> str:
        return self.render("catalogue_home.html")


class CatalogueForm(FlaskForm):
    """Flask-WTF's form (its CSRF token is the one ``CSRFProtect`` checks) that, like Flask-Admin's
    own forms, remembers the record it edits: Flask-Admin's ``Unique`` validator compares with
    it, and without it every saved product "Already exists"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._obj = kwargs.get("obj")
        super().__init__(*args, **kwargs)


#: Far past the last page of any catalogue (the page number goes into the OFFSET).
MAX_PRODUCT_PAGE = 1_000_000


def _row_id(value: Any) -> bool:
    """A key of the catalogue's tables as sent in a form or URL: ASCII digits below PostgreSQL's
    integer limit (``x``, ``²`` or a number past it answered 500)."""
    return isinstance(value, str) and value.isascii() and value.isdecimal() and int(value) < 2**31


def _profile_or_404(model: Any, profile_id: int) -> Any:
    """The profile of the URL, or 404 (an id past the database's integers too: it was a 500)."""
    if profile_id >= 2**31:
        abort(404)
    return db.get_or_404(model, profile_id)


class ProductView(_LoginRequired, ModelView):
    form_base_class = CatalogueForm
    # Flask-Admin 2.2 does not convert SQLAlchemy 2.1's Float (no longer a Numeric): add the field
    form_extra_fields = {"price": FloatField("Price", validators=[InputRequired(), NumberRange(min=0)])}
    column_searchable_list = ("sku", "name")
    column_default_sort = "sku"
    page_size = 50

    def _get_list_extra_args(self) -> Any:
        # Flask-Admin carries every unknown query parameter into url_for (?endpoint=x made the
        # list a 500; it reads none of them) and a page number of any size into the OFFSET
        # (past the database's integers: a 500): drop the first, keep pages to ones that exist
        view_args = super()._get_list_extra_args()
        view_args.extra_args = {}
        view_args.page = min(max(view_args.page or 0, 0), MAX_PRODUCT_PAGE)
        if view_args.search:
            view_args.search = view_args.search.replace("\x00", "")  # PostgreSQL refuses NUL in text
        return view_args

    def get_one(self, id: Any) -> Any:
        # ?id=x or a number past PostgreSQL's integer answered 500 on the edit and details pages;
        # no such product is what Flask-Admin then says ("Record does not exist")
        if not _row_id(id):
            return None
        return super().get_one(id)

    @action("raise_prices", "Raise prices by 5%", "Start a job that raises the selected products' prices by 5%?")
    def raise_prices(self, ids: list[str]) -> None:
        self._change_prices(ids, 5)

    @action("lower_prices", "Lower prices by 5%", "Start a job that lowers the selected products' prices by 5%?")
    def lower_prices(self, ids: list[str]) -> None:
        self._change_prices(ids, -5)

    def _change_prices(self, ids: list[str], percent: float) -> None:
        from .tasks import change_prices

        if not all(_row_id(i) for i in ids):  # a forged form: rowid=x answered 500
            flash("Select the products from the list.", "error")
            return
        try:
            jobmonitor.enqueue(
                change_prices,
                percent,
                product_ids=[int(i) for i in ids],
                user=current_user,
                name=f"Change prices of {len(ids)} products by {percent:+g}%",
            )
        except EnqueueError as error:
            flash(f"The job could not be started: {error.reason}", "error")


def _last_jobs(task: Any, profiles: Sequence[Any]) -> dict[int, Job]:
    """{profile id: the newest job of ``task`` for that profile that the current user may see}.

    One query: the jobs are ranked per profile (the ``profile_id`` argument they were started
    with) among those the permissions object lets this user see, and the first of each kept.
    """
    if not profiles:
        return {}
    profile_id = Job.params[("kwargs", "profile_id")].as_integer()
    ranked = (
        db.select(
            Job.id,
            profile_id.label("profile_id"),
            sa.func.row_number()
            .over(partition_by=profile_id, order_by=(Job.created_at.desc(), Job.id.desc()))
            .label("rank"),
        )
        .where(
            Job.task == task.name,
            profile_id.in_([p.id for p in profiles]),
            (permissions := jobmonitor.state().permissions).visible_jobs(permissions.current_user()),
        )
        .subquery()
    )
    rows = db.session.execute(
        db.select(Job, ranked.c.profile_id).join(ranked, ranked.c.id == Job.id).where(ranked.c.rank == 1)
    )
    return {profile: job for job, profile in rows}


class ImportProfilesView(_LoginRequired, BaseView):
    """Import profiles: upload a CSV through a profile; see and stop its last execution."""

    @expose("/")
    def index(self) -> str:
        profiles = db.session.execute(db.select(ImportProfile).order_by(ImportProfile.id)).scalars().all()
        from .tasks import import_products

        return self.render(
            "profiles.html", kind="import", profiles=profiles, last_jobs=_last_jobs(import_products, profiles)
        )

    @expose("/<int:profile_id>/run", methods=["POST"])
    def run(self, profile_id: int) -> Response:
        from .tasks import import_products

        profile = _profile_or_404(ImportProfile, profile_id)
        try:
            upload = request.files.get("file")
        except RequestEntityTooLarge as error:  # past MAX_CONTENT_LENGTH: said on this page
            flash(too_large_message(error), "error")
            return self.index(), 413  # type: ignore[return-value]
        if upload is None or not upload.filename:
            flash("Choose a CSV file to import.", "error")
            return redirect(url_for(".index"))
        try:
            jobmonitor.enqueue(
                import_products,
                profile_id=profile.id,
                user=current_user,
                name=f"Import {upload.filename}",
                description=f"Profile “{profile.name}”",
                files={"products.csv": upload},
            )
        except FileTooLarge as error:
            flash(str(error), "error")
            return self.index(), 413  # type: ignore[return-value]
        except EnqueueError as error:
            flash(f"The import could not be started: {error.reason}", "error")
            return redirect(url_for(".index"))
        return redirect(url_for(".index"))


class ExportProfilesView(_LoginRequired, BaseView):
    """Export profiles: run an export; see, stop and download its last execution."""

    @expose("/")
    def index(self) -> str:
        profiles = db.session.execute(db.select(ExportProfile).order_by(ExportProfile.id)).scalars().all()
        from .tasks import export_products

        return self.render(
            "profiles.html", kind="export", profiles=profiles, last_jobs=_last_jobs(export_products, profiles)
        )

    @expose("/<int:profile_id>/run", methods=["POST"])
    def run(self, profile_id: int) -> Response:
        from .tasks import export_products

        profile = _profile_or_404(ExportProfile, profile_id)
        try:
            jobmonitor.enqueue(
                export_products,
                profile_id=profile.id,
                user=current_user,
                name=f"Export “{profile.name}”",
                description=f"Products with at least {profile.min_stock} in stock",
            )
        except EnqueueError as error:
            flash(f"The export could not be started: {error.reason}", "error")
            return redirect(url_for(".index"))
        return redirect(url_for(".index"))
