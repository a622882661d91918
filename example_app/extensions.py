"""Extension objects, created once and bound to the app in ``create_app``."""

from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase

from flask_jobmonitor import JobMonitor


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
jobmonitor = JobMonitor(db=db)
csrf = CSRFProtect()
