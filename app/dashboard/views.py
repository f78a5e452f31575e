"""Dashboard pages: the queue, one fulfillment order and its actions, stock, shops and their settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from app.dashboard import bp
from app.deps import celery, ctx, redis_client
from app.edge import MAX_ID, parse_id
from fulfillment import operator, stock
from fulfillment.operator import REJECTION_REASONS, Done, InvalidInput, NotActionable
from fulfillment.states import FINAL, State
from fulfillment.store import StoreError

log = logging.getLogger("app.dashboard")

MAX_PACKAGES = 20
# The lock a worker takes around a step on one fulfillment order (workers.runtime.exclusive): an operator's
# action waits for the worker's step to end instead of racing it to the store.
_STEP_LOCK = "fulfillment:lock:fulfillment-order:{record_id}"


class OrderBusy(Exception):
    pass


# --- helpers ------------------------------------------------------------------------------------------------


@bp.app_template_filter("dashboard_time")
def _time(value: datetime | str | None) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M")


@bp.app_template_filter("dashboard_label")
def _label(value: str | None) -> str:
    return (value or "").replace("_", " ").lower()


@contextmanager
def _exclusive(record_id: int) -> Iterator[None]:
    lock = redis_client().lock(_STEP_LOCK.format(record_id=record_id), timeout=120, blocking_timeout=15)
    if not lock.acquire():
        raise OrderBusy(record_id)
    try:
        yield
    finally:
        lock.release()


def _enqueue(record_id: int) -> None:
    celery().send_task("workers.tasks.advance_fulfillment_order", args=(record_id, "operator"))


def _run(record_id: int, action: Callable[[], Done], form_errors_render: bool = False):
    """Run an operator action on one fulfillment order and answer with the order's page."""
    try:
        with _exclusive(record_id):
            done = action()
    except InvalidInput as exc:
        if form_errors_render:
            return _order_page(record_id, errors=exc.problems, form=request.form, status=422)
        for problem in exc.problems:
            flash(problem, "error")
    except NotActionable as exc:
        flash(exc.reason[:1].upper() + exc.reason[1:] + ".", "error")
    except OrderBusy:
        flash("The worker is busy with this order right now; try again in a moment.", "error")
    except StoreError as exc:
        log.warning("operator_action_store_error record=%s error=%s", record_id, exc)
        flash(f"The store did not take it: {exc}", "error")
    else:
        flash(done.summary, "ok")
        if done.needs_worker:
            _enqueue(record_id)
    return redirect(url_for("dashboard.fulfillment_order", record_id=record_id))


def _int(value: str | None, default: int | None = None) -> int | None:
    """A whole number from a form or query string, held to the database's integer so none overflows it."""
    text = str(value).strip()
    if not text.isascii() or len(text.lstrip("+-")) > 10:
        return default
    try:
        number = int(text)
    except (TypeError, ValueError):
        return default
    return number if -MAX_ID <= number <= MAX_ID else default


# --- the queue ----------------------------------------------------------------------------------------------


@bp.get("/")
def queue():
    view = request.args.get("view") or "open"
    if view not in operator.QUEUE_VIEWS and view != "all" and view not in {s.value for s in State}:
        view = "open"
    shop = request.args.get("shop", "")
    shop_id = parse_id(shop) if shop else None
    if shop and shop_id is None:
        abort(400, description="shop must be the id of a shop")
    result = operator.queue(ctx(), view, shop_id)
    return render_template(
        "dashboard/queue.html",
        result=result,
        view=view,
        shop_id=shop_id,
        shops=operator.shops(ctx()),
        states=[s.value for s in State],
        final_states={s.value for s in FINAL},
        attention_states=[s.value for s in operator.QUEUE_VIEWS["attention"]],
    )


# --- one fulfillment order ----------------------------------------------------------------------------------


def _order_page(record_id: int, errors: list[str] | None = None, form: MultiDict | None = None, status: int = 200):
    order = operator.fulfillment_order(ctx(), record_id)
    if order is None:
        abort(404)
    form = form if form is not None else MultiDict()
    package_count = _int(form.get("package_count") or request.args.get("packages"), 1)
    package_count = max(1, min(MAX_PACKAGES, package_count or 1))
    page = render_template(
        "dashboard/order.html",
        order=order,
        errors=errors or [],
        form=form,
        package_count=package_count,
        max_packages=MAX_PACKAGES,
        reasons=REJECTION_REASONS,
    )
    return page, status


@bp.get("/fulfillment-orders/<int:record_id>")
def fulfillment_order(record_id: int):
    return _order_page(record_id)


@bp.post("/fulfillment-orders/<int:record_id>/accept")
def accept(record_id: int):
    message = request.form.get("message")
    return _run(record_id, lambda: operator.accept(ctx(), record_id, g.operator.email, message))


@bp.post("/fulfillment-orders/<int:record_id>/reject")
def reject(record_id: int):
    form = request.form
    line_messages = list(zip(form.getlist("line_store_id"), form.getlist("line_message"), strict=False))
    return _run(
        record_id,
        lambda: operator.reject(
            ctx(), record_id, form.get("reason", ""), form.get("message"), line_messages, g.operator.email
        ),
        form_errors_render=True,
    )


def _packages_from_form(form: MultiDict) -> tuple[list[list[tuple[int, int]]], list[str]]:
    count = _int(form.get("package_count"), 0) or 0
    if not 1 <= count <= MAX_PACKAGES:
        raise InvalidInput([f"pack in 1 to {MAX_PACKAGES} packages"])
    line_ids = [_int(v) for v in form.getlist("line_id")]
    problems = []
    packages: list[list[tuple[int, int]]] = []
    for number in range(1, count + 1):
        items = []
        for line_id in line_ids:
            raw = (form.get(f"qty-{number}-{line_id}") or "0").strip() or "0"
            quantity = _int(raw)
            if line_id is None or quantity is None:
                problems.append(f"package {number}: quantities are whole numbers")
                continue
            items.append((line_id, quantity))
        packages.append(items)
    if problems:
        raise InvalidInput(sorted(set(problems)))
    return packages, [form.get(f"tracking-{number}", "") for number in range(1, count + 1)]


@bp.post("/fulfillment-orders/<int:record_id>/pack")
def pack(record_id: int):
    form = request.form

    def action() -> Done:
        packages, tracking_numbers = _packages_from_form(form)
        return operator.pack(ctx(), record_id, packages, form.get("carrier", ""), tracking_numbers, g.operator.email)

    return _run(record_id, action, form_errors_render=True)


@bp.post("/fulfillment-orders/<int:record_id>/cancellation")
def answer_cancellation(record_id: int):
    decision = request.form.get("decision")
    if decision not in ("accept", "reject"):
        abort(400)
    message = request.form.get("message")
    return _run(
        record_id,
        lambda: operator.answer_cancellation(ctx(), record_id, decision == "accept", message, g.operator.email),
        form_errors_render=True,
    )


# --- stock --------------------------------------------------------------------------------------------------


def _stock_page(report: stock.ImportReport | None = None, status: int = 200):
    shop_id = _int(request.values.get("shop"))
    page = render_template(
        "dashboard/stock.html",
        rows=stock.levels(ctx(), shop_id),
        movements=stock.movements(ctx(), shop_id),
        shops=operator.shops(ctx()),
        shop_id=shop_id,
        report=report,
    )
    return page, status


def _stock_change(action: Callable[[], Done]):
    """Run a change to a shelf and go back to the stock page of its shop."""
    try:
        done = action()
    except InvalidInput as exc:
        for problem in exc.problems:
            flash(problem, "error")
    else:
        flash(done.summary, "ok")
    return redirect(url_for("dashboard.stock", shop=_int(request.form.get("shop"))))


@bp.get("/stock", endpoint="stock")
def stock_page():
    return _stock_page()


@bp.post("/stock")
def set_stock():
    form = request.form
    return _stock_change(
        lambda: stock.count(ctx(), form.get("shop"), form.get("sku"), form.get("on_hand"), g.operator.email)
    )


@bp.post("/stock/receipts")
def receive_stock():
    form = request.form
    return _stock_change(
        lambda: stock.receive(
            ctx(), form.get("shop"), form.get("sku"), form.get("units"), g.operator.email, form.get("note")
        )
    )


@bp.post("/stock/adjustments")
def adjust_stock():
    form = request.form
    return _stock_change(
        lambda: stock.adjust(
            ctx(), form.get("shop"), form.get("sku"), form.get("change"), form.get("note"), g.operator.email
        )
    )


@bp.post("/stock/import")
def import_stock():
    upload = request.files.get("file")
    data = upload.read() if upload is not None else b""
    dry_run = request.form.get("mode") != "import"
    report = stock.import_csv(ctx(), request.form.get("shop"), data, dry_run=dry_run, actor=g.operator.email)
    if report.ok and report.applied:
        flash(report.summary(), "ok")
    return _stock_page(report, 200 if report.ok else 422)


@bp.get("/stock.csv")
def export_stock():
    try:
        text = stock.export_csv(ctx(), request.args.get("shop"))
    except InvalidInput as exc:
        flash(exc.problems[0][:1].upper() + exc.problems[0][1:] + ".", "error")
        return redirect(url_for("dashboard.stock"))
    shop_id = _int(request.args.get("shop"))
    name = f"stock-shop-{shop_id}.csv" if shop_id else "stock.csv"
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- shops --------------------------------------------------------------------------------------------------


@bp.get("/shops")
def shops():
    return render_template("dashboard/shops.html", shops=operator.shops(ctx()))


def _settings_values(settings: dict) -> dict:
    """The settings as the form shows them: lists one item per line."""
    handling_days = settings.get("handling_days")
    return {
        "review_requests": bool(settings.get("review_requests")),
        "review_cancellations": bool(settings.get("review_cancellations")),
        "handling_days": "" if handling_days is None else f"{handling_days:g}",
        "carrier": settings.get("carrier", ""),
        "blocked_countries": "\n".join(settings.get("blocked_countries", [])),
        "ineligible_skus": "\n".join(settings.get("ineligible_skus", [])),
    }


@bp.get("/shops/<int:shop_id>/settings")
def shop_settings(shop_id: int):
    shop = operator.shop(ctx(), shop_id)
    if shop is None:
        abort(404)
    return render_template(
        "dashboard/settings.html", shop=shop, values=_settings_values(shop.settings), errors=[], defaults=ctx().config
    )


@bp.post("/shops/<int:shop_id>/settings")
def update_shop_settings(shop_id: int):
    shop = operator.shop(ctx(), shop_id)
    if shop is None:
        abort(404)
    try:
        operator.update_settings(ctx(), shop_id, request.form, g.operator.email)
    except InvalidInput as exc:
        values = {key: request.form.get(key, "") for key in _settings_values({})}
        for flag in ("review_requests", "review_cancellations"):
            values[flag] = request.form.getlist(flag)[-1:] == ["1"]
        page = render_template(
            "dashboard/settings.html", shop=shop, values=values, errors=exc.problems, defaults=ctx().config
        )
        return page, 422
    flash(f"Settings of {shop.domain} saved.", "ok")
    return redirect(url_for("dashboard.shop_settings", shop_id=shop_id))
