"""Dashboard pages: the queue, one fulfillment order and its actions, stock, shops and their settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from app.dashboard import bp
from app.deps import celery, ctx, redis_client
from fulfillment import stock
from fulfillment.operator import actions, bulk, forms, queries
from fulfillment.operator.actions import Done, NotActionable
from fulfillment.operator.forms import MAX_PACKAGES, REJECTION_REASONS, InvalidInput, whole_number
from fulfillment.states import FINAL, Cause, State
from fulfillment.store.errors import StoreError
from workers.queue import fulfillment_order_lock, request_step
from workers.runtime import Busy

log = logging.getLogger("app.dashboard")

# An operator's action takes the lock a worker's step takes, and waits this long for a step to end rather than
# race it to the store.
LOCK_WAIT_S = 15.0


# --- helpers ------------------------------------------------------------------------------------------------


@bp.app_template_filter("dashboard_time")
def _time(value: datetime | str | None) -> str:
    """A moment in UTC, the zone named: operators in several zones read the same queue."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    # SQLite hands back naive datetimes; the app writes them in UTC.
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("dashboard_label")
def _label(value: str | None) -> str:
    return (value or "").replace("_", " ").lower()


def _run(record_id: int, action: Callable[[], Done], form_errors_render: bool = False):
    """Run an operator action on one fulfillment order and answer with the order's page."""
    try:
        with fulfillment_order_lock(record_id, wait_s=LOCK_WAIT_S, redis_client=redis_client()):
            done = action()
    except InvalidInput as exc:
        if form_errors_render:
            return _order_page(record_id, errors=exc.problems, form=request.form, status=422)
        for problem in exc.problems:
            flash(problem, "error")
    except NotActionable as exc:
        flash(exc.reason[:1].upper() + exc.reason[1:] + ".", "error")
    except Busy:
        flash("The worker is busy with this order right now; try again in a moment.", "error")
    except StoreError as exc:
        log.warning("operator_action_store_error record=%s error=%s", record_id, exc)
        flash(f"The store did not take it: {exc}", "error")
    else:
        flash(done.summary, "ok")
        if done.needs_worker:
            request_step(celery(), redis_client(), done.shop_id, record_id, Cause.OPERATOR)
    return redirect(url_for("dashboard.fulfillment_order", record_id=record_id))


# --- the queue ----------------------------------------------------------------------------------------------


def _queue_page(chosen: queries.QueueFilter, problems: list[str], select_page: bool = False, status: int = 200):
    result = queries.queue(ctx(), chosen)
    page = render_template(
        "dashboard/queue.html",
        result=result,
        chosen=result.filter,
        problems=problems,
        select_page=select_page,
        shops=queries.shops(ctx()),
        states=[s.value for s in State],
        final_states={s.value for s in FINAL},
        attention_states=[s.value for s in queries.QUEUE_VIEWS["attention"]],
        ages=queries.AGES,
        page_sizes=queries.PAGE_SIZES,
        reasons=REJECTION_REASONS,
        max_bulk=forms.MAX_BULK,
    )
    return page, status


@bp.get("/")
def queue():
    chosen, problems = forms.queue_filter(request.args)
    return _queue_page(chosen, problems, request.args.get("select") == "page", 400 if problems else 200)


# A bulk decision waits less for each order's lock than a single action does: one busy order is reported and the
# rest go on, rather than the whole page waiting.
BULK_LOCK_WAIT_S = 3.0


@contextmanager
def _bulk_lock(record_id: int) -> Iterator[None]:
    try:
        with fulfillment_order_lock(record_id, wait_s=BULK_LOCK_WAIT_S, redis_client=redis_client()):
            yield
    except Busy as exc:
        raise NotActionable("the worker is busy with it right now; try again in a moment") from exc


@bp.post("/bulk")
def bulk_decision():
    # The queue's filter comes back with the form, so the operator returns to the page they were on.
    chosen, _ = forms.queue_filter(request.form)
    try:
        decision, record_ids, reason, message = forms.bulk_decision(request.form)
    except InvalidInput as exc:
        return _queue_page(chosen, exc.problems, status=422)
    outcomes = bulk.decide(
        ctx(), decision, record_ids, g.operator.email, reason=reason, message=message, guard=_bulk_lock
    )
    page = render_template(
        "dashboard/bulk.html",
        decision=decision,
        outcomes=outcomes,
        done=sum(o.done for o in outcomes),
        back=chosen.args(),
    )
    return page, 200


# --- one fulfillment order ----------------------------------------------------------------------------------


def _order_page(record_id: int, errors: list[str] | None = None, form: MultiDict | None = None, status: int = 200):
    order = queries.fulfillment_order(ctx(), record_id)
    if order is None:
        abort(404)
    form = form if form is not None else MultiDict()
    package_count = whole_number(form.get("package_count") or request.args.get("packages"), 1)
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
    return _run(record_id, lambda: actions.accept(ctx(), record_id, g.operator.email, message))


@bp.post("/fulfillment-orders/<int:record_id>/reject")
def reject(record_id: int):
    form = request.form
    line_messages = list(zip(form.getlist("line_store_id"), form.getlist("line_message"), strict=False))
    return _run(
        record_id,
        lambda: actions.reject(
            ctx(), record_id, form.get("reason", ""), form.get("message"), line_messages, g.operator.email
        ),
        form_errors_render=True,
    )


@bp.post("/fulfillment-orders/<int:record_id>/pack")
def pack(record_id: int):
    form = request.form

    def action() -> Done:
        packages, tracking_numbers = forms.packages_from_form(form)
        return actions.pack(ctx(), record_id, packages, form.get("carrier", ""), tracking_numbers, g.operator.email)

    return _run(record_id, action, form_errors_render=True)


@bp.post("/fulfillment-orders/<int:record_id>/cancellation")
def answer_cancellation(record_id: int):
    decision = request.form.get("decision")
    if decision not in ("accept", "reject"):
        abort(400)
    message = request.form.get("message")
    return _run(
        record_id,
        lambda: actions.answer_cancellation(ctx(), record_id, decision == "accept", message, g.operator.email),
        form_errors_render=True,
    )


# --- stock --------------------------------------------------------------------------------------------------


def _stock_page(report: stock.ImportReport | None = None, status: int = 200):
    shop_id = whole_number(request.values.get("shop"))
    page = render_template(
        "dashboard/stock.html",
        rows=stock.levels(ctx(), shop_id),
        movements=stock.movements(ctx(), shop_id),
        shops=queries.shops(ctx()),
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
    return redirect(url_for("dashboard.stock", shop=whole_number(request.form.get("shop"))))


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
    shop_id = whole_number(request.args.get("shop"))
    name = f"stock-shop-{shop_id}.csv" if shop_id else "stock.csv"
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- shops --------------------------------------------------------------------------------------------------


@bp.get("/shops")
def shops():
    return render_template("dashboard/shops.html", shops=queries.shops(ctx()))


@bp.get("/shops/<int:shop_id>/settings")
def shop_settings(shop_id: int):
    shop = queries.shop(ctx(), shop_id)
    if shop is None:
        abort(404)
    return render_template(
        "dashboard/settings.html",
        shop=shop,
        values=forms.settings_values(shop.settings),
        errors=[],
        defaults=ctx().config,
    )


@bp.post("/shops/<int:shop_id>/settings")
def update_shop_settings(shop_id: int):
    shop = queries.shop(ctx(), shop_id)
    if shop is None:
        abort(404)
    try:
        actions.update_settings(ctx(), shop_id, request.form, g.operator.email)
    except InvalidInput as exc:
        values = forms.submitted_settings_values(request.form)
        page = render_template(
            "dashboard/settings.html", shop=shop, values=values, errors=exc.problems, defaults=ctx().config
        )
        return page, 422
    flash(f"Settings of {shop.domain} saved.", "ok")
    return redirect(url_for("dashboard.shop_settings", shop_id=shop_id))
