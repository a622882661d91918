"""The catalogue's tracked tasks: import, export, mass edit."""

from __future__ import annotations

import csv
import io
import math
import time

from rq import Retry

from flask_jobmonitor import JobContext, JobFailed, csvsafe

from .extensions import db, jobmonitor
from .models import ExportProfile, ImportProfile, Product

# Rows saved per transaction. Short transactions matter on SQLite, where an open write
# transaction of the task makes every other writer wait: the job's record takes the progress
# right after each commit (the pages show it from Redis in between), its subtasks and log lines
# too, and the web process's own writes wait at most one batch (docs/developers.md).
COMMIT_EVERY = 20
# Seconds each demo job waits per row, so a person can watch it move (tests pass row_delay=0).
# Not called "delay": that is the name of enqueue()'s own option for queueing a job later.
DEMO_DELAY_SECONDS = 0.02
#: The columns an import file must have (its first line names them); ``stock`` may be left out.
PRODUCT_COLUMNS = ("sku", "name", "price")


@jobmonitor.task(type="import", category="import", steps=["Read file", "Validate rows", "Save products"])
def import_products(ctx: JobContext, profile_id: int | None = None, row_delay: float = DEMO_DELAY_SECONDS) -> None:
    """Import products from ``products.csv`` (columns sku,name,price,stock); reject bad rows."""
    profile = db.session.get(ImportProfile, profile_id) if profile_id else None
    update_existing = profile.update_existing if profile else True
    text = io.TextIOWrapper(ctx.input_file("products.csv"), encoding="utf-8", newline="")
    with ctx.step("Read file") as step:
        rows = _read_rows(text)
        step.set_total(len(rows))
        step.advance(len(rows))
        step.count("read", len(rows))
    valid: list[dict[str, str]] = []
    rejected: list[tuple[int, dict[str, str], str]] = []
    with ctx.step("Validate rows", total=len(rows)) as step:
        for number, row in enumerate(rows, start=2):
            problem = _problem(row)
            if problem:
                rejected.append((number, row, problem))
                ctx.subtask(f"line {number}", status="error", message=problem)
                step.count("rejected")
            else:
                valid.append(row)
                step.count("valid")
            step.advance()
            time.sleep(row_delay)
    with ctx.step("Save products", total=len(valid)) as step:
        for row in valid:
            product = db.session.execute(db.select(Product).filter_by(sku=row["sku"])).scalar_one_or_none()
            if product is None:
                product = Product(sku=row["sku"])
                db.session.add(product)
                step.count("created")
            elif not update_existing:
                ctx.subtask(row["sku"], status="skipped", message="exists; the profile does not update")
                step.count("skipped")
                step.advance()
                continue
            else:
                step.count("updated")
            product.name = row["name"]
            product.price = float(row["price"])
            product.stock = int(row.get("stock") or 0)
            ctx.subtask(row["sku"], status="done", message="saved")
            step.advance()
            if step.done % COMMIT_EVERY == 0:
                db.session.commit()
            time.sleep(row_delay)
        db.session.commit()
    ctx.log.info("%d products saved, %d rows rejected", len(valid), len(rejected))
    if rejected:
        report = io.StringIO()
        writer = csv.writer(report)
        writer.writerow(["line", "sku", "problem"])
        for number, row, problem in rejected:
            writer.writerow(csvsafe.row([number, row.get("sku", ""), problem]))
        ctx.add_error_report("rejected-rows.csv", report.getvalue().encode())


def _read_rows(text: io.TextIOWrapper) -> list[dict[str, str]]:
    """The file's rows; a file that is not a CSV of products fails the job with a message for the
    person who uploaded it (JobFailed: shown as is, unlike an unexpected error's text)."""
    reader = csv.DictReader(text)
    try:
        rows = list(reader)
    except UnicodeDecodeError:
        raise JobFailed('The file is not UTF-8 text: save it as "CSV UTF-8" and import it again.') from None
    except csv.Error as error:
        raise JobFailed(f"The file is not a readable CSV file (line {reader.line_num}: {error}).") from None
    missing = [column for column in PRODUCT_COLUMNS if column not in (reader.fieldnames or ())]
    if missing:
        raise JobFailed(
            f"The file has no column {', '.join(missing)}: its first line must name the columns "
            f"{', '.join(PRODUCT_COLUMNS)}."
        )
    return rows


def _problem(row: dict[str, str]) -> str | None:
    """Why ``row`` cannot be saved (it is then a rejected row with that reason), or None."""
    if not (row.get("sku") or "").strip():
        return "missing SKU"
    if not (row.get("name") or "").strip():
        return "missing name"
    try:
        price = float(row.get("price") or "")
    except ValueError:
        price = math.nan
    if not math.isfinite(price):  # float() reads "nan" and "inf" too: no price a product can have
        return f"price {row.get('price')!r} is not a number"
    if price < 0:
        return "negative price"
    try:
        stock = int(row.get("stock") or 0)
    except ValueError:
        return f"stock {row.get('stock')!r} is not a whole number"
    if stock < 0:
        return "negative stock"
    return None


@jobmonitor.task(type="export", category="export", steps=["Query products", "Write CSV"])
def export_products(ctx: JobContext, profile_id: int | None = None, row_delay: float = DEMO_DELAY_SECONDS) -> None:
    """Export the products of a profile (in stock at least its ``min_stock``) as CSV."""
    profile = db.session.get(ExportProfile, profile_id) if profile_id else None
    min_stock = profile.min_stock if profile else 0
    with ctx.step("Query products") as step:
        products = (
            db.session.execute(db.select(Product).where(Product.stock >= min_stock).order_by(Product.sku))
            .scalars()
            .all()
        )
        step.count("found", len(products))
    with ctx.step("Write CSV", total=len(products)) as step:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["sku", "name", "price", "stock"])
        for product in products:
            writer.writerow(csvsafe.row([product.sku, product.name, product.price, product.stock]))
            step.advance()
            time.sleep(row_delay)
    ctx.add_output_file("products.csv", out.getvalue().encode(), content_type="text/csv")


@jobmonitor.task(type="mass_edit", steps=["Update prices"], resumable=True)
def change_prices(
    ctx: JobContext, percent: float, product_ids: list[int] | None = None, row_delay: float = DEMO_DELAY_SECONDS
) -> None:
    """Raise (or lower) the price of the given products (all if none) by ``percent``.

    Resumable: it records the last product done, so a stopped or paused run continues there.
    """
    query = db.select(Product).order_by(Product.id)
    if product_ids:
        query = query.where(Product.id.in_(product_ids))
    total = len(db.session.execute(query.with_only_columns(Product.id)).all())
    products = db.session.execute(query.where(Product.id > ctx.checkpoint.get("after_id", 0))).scalars().all()
    with ctx.step("Update prices", total=total) as step:
        for product in products:
            old = product.price
            product.price = round(product.price * (1 + percent / 100), 2)
            db.session.commit()
            # the safe order for a resumable task: do the work, record it, then checkpoint; a
            # stop or pause takes effect only at save_checkpoint, after the row is covered
            ctx.subtask(product.sku, message=f"{old:.2f} -> {product.price:.2f}")
            step.advance()
            ctx.save_checkpoint(after_id=product.id)
            time.sleep(row_delay)


@jobmonitor.task(type="rules", steps=["Plan", "Start rule jobs"])
def apply_pricing_rules(ctx: JobContext, chunk_size: int = 25, row_delay: float = DEMO_DELAY_SECONDS) -> None:
    """Apply the pricing rules: one child job per chunk of products (released a few at a time)."""
    with ctx.step("Plan") as step:
        ids = db.session.execute(db.select(Product.id).order_by(Product.id)).scalars().all()
        chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
        step.count("chunks", len(chunks))
    with ctx.step("Start rule jobs", total=len(chunks)) as step:
        for number, chunk in enumerate(chunks, start=1):
            ctx.spawn(apply_rule_chunk, chunk, name=f"Pricing rules, chunk {number}/{len(chunks)}", row_delay=row_delay)
            step.advance()


@jobmonitor.task(type="rules", steps=["Apply rules"], launchable=False)  # a child of apply_pricing_rules only
def apply_rule_chunk(ctx: JobContext, product_ids: list[int], row_delay: float = DEMO_DELAY_SECONDS) -> None:
    """Round prices to .99 and flag products out of stock, for one chunk."""
    products = db.session.execute(db.select(Product).where(Product.id.in_(product_ids))).scalars().all()
    with ctx.step("Apply rules", total=len(products)) as step:
        for product in products:
            rounded = max(0.99, round(product.price) - 0.01)
            if rounded != product.price:
                ctx.subtask(product.sku, message=f"price {product.price:.2f} -> {rounded:.2f}")
                product.price = rounded
                step.count("repriced")
            if product.stock == 0:
                ctx.subtask(product.sku, status="warning", message="out of stock")
            db.session.commit()
            step.advance()
            time.sleep(row_delay)


@jobmonitor.task(type="report", steps=["Count stock", "Write report"])
def stock_report(ctx: JobContext) -> None:
    """A stock report: value of the stock per price band, as CSV."""
    bands = {"under 50": (0, 50), "50 to 100": (50, 100), "100 and more": (100, 10**9)}
    totals: dict[str, list[float]] = {band: [0, 0.0] for band in bands}
    with ctx.step("Count stock") as step:
        for product in db.session.execute(db.select(Product)).scalars():
            for band, (low, high) in bands.items():
                if low <= product.price < high:
                    totals[band][0] += product.stock
                    totals[band][1] += product.stock * product.price
            step.advance()
    with ctx.step("Write report"):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["price band", "items", "value"])
        for band, (items, value) in totals.items():
            writer.writerow(csvsafe.row([band, int(items), round(value, 2)]))
        ctx.add_output_file("stock-report.csv", out.getvalue().encode(), content_type="text/csv")


class SupplierUnreachable(JobFailed):
    """The supplier's feed did not answer: worth another try later (its message is for people)."""


@jobmonitor.task(
    type="sync",
    description="Sync stock from the supplier",
    steps=["Fetch the supplier's feed", "Update stock"],
    retry=Retry(max=3, interval=[15, 60, 300]),
    retry_on=SupplierUnreachable,
)
def sync_supplier_stock(ctx: JobContext, unreachable_tries: int = 1, row_delay: float = DEMO_DELAY_SECONDS) -> None:
    """Bring the stock in line with the supplier's feed. The demo's supplier does not answer the
    first ``unreachable_tries`` tries, so a person sees the job wait for its retry and then pass;
    with 4 or more it fails after its third retry."""
    with ctx.step("Fetch the supplier's feed"):
        if ctx.retries < unreachable_tries:
            raise SupplierUnreachable("The supplier's stock feed did not answer within 10 seconds.")
        products = db.session.execute(db.select(Product).order_by(Product.id)).scalars().all()
        feed = {product.id: (product.id * 7) % 40 for product in products}  # the demo supplier's stock
    with ctx.step("Update stock", total=len(products)) as step:
        for product in products:
            if product.stock != feed[product.id]:
                ctx.subtask(product.sku, "updated", f"stock {product.stock} -> {feed[product.id]}")
                product.stock = feed[product.id]
                step.count("updated")
            step.advance()
            if step.done % COMMIT_EVERY == 0:
                db.session.commit()
            time.sleep(row_delay)
        db.session.commit()


# Every night at 02:00 UTC: the first export profile, as a system job.
jobmonitor.schedule(export_products, "0 2 * * *", name="nightly-export", job_name="Nightly export", profile_id=1)
# Every hour: the supplier's stock (its demo supplier answers at once here).
jobmonitor.schedule(
    sync_supplier_stock, "15 * * * *", name="hourly-supplier-sync", job_name="Supplier stock sync", unreachable_tries=0
)
