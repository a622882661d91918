"""The catalogue's own data: products."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


class Product(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    price: Mapped[float] = mapped_column(sa.Float)
    stock: Mapped[int] = mapped_column(sa.Integer, default=0)


class ImportProfile(db.Model):  # type: ignore[name-defined,misc]
    """A named way of importing products; its runs are the import jobs started with its id."""

    __tablename__ = "import_profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    update_existing: Mapped[bool] = mapped_column(sa.Boolean, default=True)


class ExportProfile(db.Model):  # type: ignore[name-defined,misc]
    """A named export of products with at least ``min_stock`` items in stock."""

    __tablename__ = "export_profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    min_stock: Mapped[int] = mapped_column(sa.Integer, default=0)
