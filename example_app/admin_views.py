"""The catalogue's admin: a home page, products (with a mass edit), import and export profiles
whose pages show their "Last execution" with a Stop button."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import SecureForm
from flask_login import current_user
from werkzeug.wrappers import Response

from flask_jobmonitor import EnqueueError, Job

from .extensions import db, jobmonitor
from .models import ExportProfile, ImportProfile


class _LoginRequired:
    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        return redirect(url_for("auth.login", next=request.full_path))


class CatalogueHome(_LoginRequired, AdminIndexView):
    @expose("/")
    def index(self) -> str:
        return self.render("catalogue_home.html")


class ProductView(_LoginRequired, ModelView):
    form_base_class = SecureForm
    column_searchable_list = ("sku", "name")
    column_default_sort = "sku"
    page_size = 50

    @action("raise_prices", "Raise prices by 5%", "Start a job that raises the selected products' prices by 5%?")
    def raise_prices(self, ids: list[str]) -> None:
        self._change_prices(ids, 5)

    @action("lower_prices", "Lower prices by 5%", "Start a job that lowers the selected products' prices by 5%?")
    def lower_prices(self, ids: list[str]) -> None:
        self._change_prices(ids, -5)

    def _change_prices(self, ids: list[str], percent: float) -> None:
        from .tasks import change_prices

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


def _last_jobs(profiles: list[Any]) -> dict[str, Job]:
    ids = [p.last_job_id for p in profiles if p.last_job_id]
    if not ids:
        return {}
    return {job.id: job for job in db.session.execute(db.select(Job).where(Job.id.in_(ids))).scalars()}


class ImportProfilesView(_LoginRequired, BaseView):
    """Import profiles: upload a CSV through a profile; see and stop its last execution."""

    @expose("/")
    def index(self) -> str:
        profiles = db.session.execute(db.select(ImportProfile).order_by(ImportProfile.id)).scalars().all()
        return self.render("profiles.html", kind="import", profiles=profiles, last_jobs=_last_jobs(profiles))

    @expose("/<int:profile_id>/run", methods=["POST"])
    def run(self, profile_id: int) -> Response:
        from .tasks import import_products

        profile = db.get_or_404(ImportProfile, profile_id)
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash("Choose a CSV file to import.", "error")
            return redirect(url_for(".index"))
        try:
            job = jobmonitor.enqueue(
                import_products,
                profile_id=profile.id,
                user=current_user,
                name=f"Import {upload.filename}",
                description=f"Profile “{profile.name}”",
                files={"products.csv": upload},
            )
        except EnqueueError as error:
            flash(f"The import could not be started: {error.reason}", "error")
            return redirect(url_for(".index"))
        profile.last_job_id = job.id
        db.session.commit()
        return redirect(url_for(".index"))


class ExportProfilesView(_LoginRequired, BaseView):
    """Export profiles: run an export; see, stop and download its last execution."""

    @expose("/")
    def index(self) -> str:
        profiles = db.session.execute(db.select(ExportProfile).order_by(ExportProfile.id)).scalars().all()
        return self.render("profiles.html", kind="export", profiles=profiles, last_jobs=_last_jobs(profiles))

    @expose("/<int:profile_id>/run", methods=["POST"])
    def run(self, profile_id: int) -> Response:
        from .tasks import export_products

        profile = db.get_or_404(ExportProfile, profile_id)
        try:
            job = jobmonitor.enqueue(
                export_products,
                profile_id=profile.id,
                user=current_user,
                name=f"Export “{profile.name}”",
                description=f"Products with at least {profile.min_stock} in stock",
            )
        except EnqueueError as error:
            flash(f"The export could not be started: {error.reason}", "error")
            return redirect(url_for(".index"))
        profile.last_job_id = job.id
        db.session.commit()
        return redirect(url_for(".index"))
