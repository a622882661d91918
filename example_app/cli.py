"""``flask seed``: demo products, profiles and users."""

from __future__ import annotations

import random

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from .auth import DEMO_USERS, User
from .extensions import db
from .models import ExportProfile, ImportProfile, Product


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create the catalogue tables and 200 products (idempotent)."""
    db.create_all()
    _add_session_token_column()
    if db.session.execute(db.select(Product).limit(1)).first() is None:
        rng = random.Random(7)
        for number in range(1, 201):
            db.session.add(
                Product(
                    sku=f"SKU-{number:04d}",
                    name=f"Product {number}",
                    price=round(rng.uniform(1, 200), 2),
                    stock=rng.randint(0, 500),
                )
            )
        db.session.commit()
    if db.session.execute(db.select(ImportProfile).limit(1)).first() is None:
        db.session.add_all(
            [
                ImportProfile(name="Supplier price list", update_existing=True),
                ImportProfile(name="New products only", update_existing=False),
                ExportProfile(name="Full catalogue", min_stock=0),
                ExportProfile(name="Products in stock", min_stock=1),
            ]
        )
    for username, name, role in DEMO_USERS:
        if db.session.execute(db.select(User).filter_by(username=username)).scalar() is None:
            user = User(username=username, name=name, role=role)
            user.set_password(username)
            db.session.add(user)
    db.session.commit()
    click.echo("seeded")


def _add_session_token_column() -> None:
    """A catalogue seeded before users had a session token (auth.py) gets the column:
    ``create_all`` adds tables, not columns to a table that exists."""
    columns = {column["name"] for column in sa.inspect(db.engine).get_columns("user_account")}
    if "session_token" not in columns:
        with db.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE user_account ADD COLUMN session_token VARCHAR(64)"))
