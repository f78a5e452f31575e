"""The operator dashboard in a real headless Chromium, against the whole system: sign in, read the merchant's
note, reject one request per line item, ship another in two packages, and see both on the sandbox store."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from devstack.wait import wait_for
from fulfillment import stock
from fulfillment.accounts import create_operator
from fulfillment.operator import actions

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "a long operator password"
XSS_NOTE = "Gift wrap please <script>alert(1)</script> & thanks"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.dialogs = []  # any alert() that fires lands here (and is dismissed)

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    context.close()


@pytest.fixture
def operator_email(system) -> str:
    email = f"operator-{uuid.uuid4().hex[:8]}@warehouse.example"
    create_operator(system.context(), email, PASSWORD)
    return email


def url(system, path: str) -> str:
    return f"{system.app_url}{path}"


def screenshot(page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page, system, email: str, password: str = PASSWORD):
    """Fill the sign-in form and submit it; returns the POST's response."""
    if "/dashboard/login" not in page.url:
        page.goto(url(system, "/dashboard/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda r: "/dashboard/login" in r.url and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return answer.value


def only_fo(order: dict) -> dict:
    (fo,) = order["fulfillment_orders"]
    return fo


def requested_record(shop, fo_id: str):
    return wait_for(
        lambda: (r := shop.record(fo_id)) is not None and r.state == "requested" and r.merchant_requests and r,
        timeout=60,
        what=f"our record of {fo_id} with the merchant's note",
    )


def fo_by_id(order: dict, fo_id: str) -> dict:
    return next(fo for fo in order["fulfillment_orders"] if fo["id"] == fo_id)


def timeline(order: dict) -> str:
    return "\n".join(entry["message"] or "" for entry in order["timeline"])


def test_operator_rejects_one_request_per_line_item_and_ships_another_in_two_packages(
    connected_shop, operator_email, page
):
    from playwright.sync_api import expect

    shop, system = connected_shop, connected_shop.system
    actions.update_settings(system.context(), shop.shop_id, {"review_requests": True})
    for sku in ("DASH-MUG", "DASH-TEE", "DASH-CAP", "DASH-SOCK"):
        shop.set_stock(sku, 20)

    rejected_order = shop.place_order(
        [
            {"sku": "DASH-MUG", "title": "Mug <b>bold</b>", "quantity": 2},
            {"sku": "DASH-TEE", "title": "T-shirt", "quantity": 1},
        ]
    )
    shipped_order = shop.place_order(
        [
            {"sku": "DASH-CAP", "title": "Cap", "quantity": 3},
            {"sku": "DASH-SOCK", "title": "Socks", "quantity": 1},
        ]
    )
    rejected_fo, shipped_fo = only_fo(rejected_order)["id"], only_fo(shipped_order)["id"]
    shop.merchant.request_fulfillment(rejected_fo, message=XSS_NOTE)
    shop.merchant.request_fulfillment(shipped_fo, message="Two boxes, please")
    rejected_record = requested_record(shop, rejected_fo)
    shipped_record = requested_record(shop, shipped_fo)

    # Signed out, the dashboard sends us to sign in, and brings us back after.
    page.goto(url(system, "/dashboard/"))
    assert "/dashboard/login" in page.url
    screenshot(page, "login")
    assert sign_in(page, system, operator_email).status == 302
    expect(page.locator(".whoami")).to_contain_text(operator_email)

    # The queue lists both requests, with the merchant's note shown as text.
    queue = page.locator("table.queue")
    expect(queue).to_contain_text(rejected_record.order_name)
    expect(queue).to_contain_text(shipped_record.order_name)
    expect(queue).to_contain_text(XSS_NOTE)
    screenshot(page, "queue")

    # One fulfillment order: the note is inert text, never markup.
    response = page.goto(url(system, f"/dashboard/fulfillment-orders/{rejected_record.id}"))
    body = response.text()
    assert "Gift wrap please &lt;script&gt;alert(1)&lt;/script&gt; &amp; thanks" in body
    assert "<script>" not in body
    assert "Mug &lt;b&gt;bold&lt;/b&gt;" in body
    expect(page.locator(".merchant-note")).to_have_text(XSS_NOTE)
    assert page.locator("script").count() == 0
    assert page.locator("main b").count() == 0
    screenshot(page, "order-requested")

    # Reject it, with a reason for the whole request and one for the mug.
    reject = page.locator("#reject")
    reject.locator("select[name=reason]").select_option("INELIGIBLE_PRODUCT")
    reject.locator("textarea[name=message]").fill("We cannot ship ceramics.")
    reject.get_by_label("DASH-MUG").fill("Mugs break in transit")
    reject.get_by_role("button", name="Reject request").click()
    expect(page.locator(".flash-ok")).to_contain_text("Rejected")
    expect(page.locator("h1 .badge")).to_have_text("rejected")

    # Accept the other and pack it in two packages: the cap in one, the socks in the other.
    page.goto(url(system, f"/dashboard/fulfillment-orders/{shipped_record.id}"))
    page.get_by_role("button", name="Accept").click()
    expect(page.locator(".flash-ok")).to_contain_text("Accepted")
    pack = page.locator("#pack")
    pack.locator("input[name=packages]").fill("2")
    pack.get_by_role("button", name="Change").click()
    lines = {line.sku: line.id for line in shipped_record.line_items}
    numbers = [f"PN{uuid.uuid4().hex[:10].upper()}", f"PN{uuid.uuid4().hex[:10].upper()}"]
    pack = page.locator("#pack")
    pack.locator(f"input[name=qty-1-{lines['DASH-CAP']}]").fill("3")
    pack.locator(f"input[name=qty-1-{lines['DASH-SOCK']}]").fill("0")
    pack.locator(f"input[name=qty-2-{lines['DASH-CAP']}]").fill("0")
    pack.locator(f"input[name=qty-2-{lines['DASH-SOCK']}]").fill("0")
    pack.locator("input[name=tracking-1]").fill(numbers[0])
    pack.locator("input[name=tracking-2]").fill(numbers[1])
    pack.locator("input[name=carrier]").fill("PostNord")
    # Forgetting the socks is refused, and nothing typed is lost.
    with page.expect_response(lambda r: r.url.endswith("/pack")) as answer:
        pack.get_by_role("button", name="Pack 2 packages and ship").click()
    assert answer.value.status == 422
    expect(page.locator(".flash-error")).to_contain_text("DASH-SOCK: 1 unit(s) not packed")
    pack = page.locator("#pack")
    expect(pack.locator("input[name=tracking-2]")).to_have_value(numbers[1])
    pack.locator(f"input[name=qty-2-{lines['DASH-SOCK']}]").fill("1")
    screenshot(page, "order-packing")
    pack.get_by_role("button", name="Pack 2 packages and ship").click()
    expect(page.locator(".flash-ok")).to_contain_text("Packed")

    # The store's side: the rejection with its reasons in the timeline, and two fulfillments with our tracking.
    store_rejected = shop.merchant.order(rejected_order["id"])
    assert only_fo(store_rejected)["request_status"] == "REJECTED"
    text = timeline(store_rejected)
    assert "INELIGIBLE_PRODUCT" in text and "We cannot ship ceramics." in text
    assert "DASH-MUG: Mugs break in transit" in text

    def two_fulfillments():
        order = shop.merchant.order(shipped_order["id"])
        return order if order["display_fulfillment_status"] == "FULFILLED" else None

    store_shipped = wait_for(two_fulfillments, timeout=60, what="both packages to ship")
    by_number = {f["tracking_info"][0]["number"]: f for f in store_shipped["fulfillments"]}
    assert set(by_number) == set(numbers)
    assert [(i["sku"], i["quantity"]) for i in by_number[numbers[0]]["line_items"]] == [("DASH-CAP", 3)]
    assert [(i["sku"], i["quantity"]) for i in by_number[numbers[1]]["line_items"]] == [("DASH-SOCK", 1)]
    assert all(f["tracking_info"][0]["company"] == "PostNord" for f in store_shipped["fulfillments"])

    # Our side: final states, and the operator's hand in the log. (The store answers before the worker commits.)
    ours_shipped = wait_for(
        lambda: (r := shop.record(shipped_fo)).state == "shipped" and r, timeout=30, what="our record to be shipped"
    )
    ours_rejected = shop.record(rejected_fo)
    assert ours_rejected.state == "rejected"
    assert any(c.cause == "operator" and operator_email in c.detail for c in ours_rejected.state_changes)
    assert ours_shipped.state == "shipped"
    assert [(p.tracking_number, p.state) for p in ours_shipped.packages] == [(n, "shipped") for n in numbers]
    log = [(c.to_state, c.cause, c.detail) for c in ours_shipped.state_changes if c.from_state != c.to_state]
    assert [state for state, _, _ in log] == [
        "requested",
        "accepted",
        "picked",
        "packed",
        "partially_shipped",
        "shipped",
    ]
    assert [cause for _, cause, _ in log[1:4]] == ["operator"] * 3, log
    assert f"packed in 2 package(s): PostNord {numbers[0]}, {numbers[1]} [operator {operator_email}]" == log[3][2]

    # The order page shows the packages shipped with their tracking.
    page.goto(url(system, f"/dashboard/fulfillment-orders/{shipped_record.id}"))
    expect(page.locator("h1 .badge")).to_have_text("shipped")
    for number in numbers:
        expect(page.locator("section", has_text="Packages")).to_contain_text(number)
    screenshot(page, "order-shipped")

    page.goto(url(system, "/dashboard/stock"))
    expect(page.locator("table.stock")).to_contain_text("DASH-CAP")
    screenshot(page, "stock")
    page.goto(url(system, f"/dashboard/shops/{shop.shop_id}/settings"))
    expect(page.get_by_label("Hold new requests for an operator")).to_be_checked()
    screenshot(page, "settings")
    assert page.dialogs == []


def test_operator_answers_a_cancellation_request_with_the_merchants_note_in_view(connected_shop, operator_email, page):
    from playwright.sync_api import expect

    shop, system = connected_shop, connected_shop.system
    actions.update_settings(system.context(), shop.shop_id, {"review_requests": True, "review_cancellations": True})
    shop.set_stock("DASH-LAMP", 5)
    order = shop.place_order([{"sku": "DASH-LAMP", "title": "Lamp", "quantity": 2}])
    fo_id = only_fo(order)["id"]
    shop.merchant.request_fulfillment(fo_id)
    record = requested_record(shop, fo_id)

    sign_in(page, system, operator_email)
    page.goto(url(system, f"/dashboard/fulfillment-orders/{record.id}"))
    page.get_by_role("button", name="Accept").click()
    expect(page.locator(".flash-ok")).to_contain_text("Accepted")
    assert shop.available("DASH-LAMP") == 3

    shop.merchant.request_cancellation(fo_id, "Customer moved <i>abroad</i>")
    wait_for(
        lambda: (r := shop.record(fo_id)) is not None and r.state == "cancellation_requested",
        timeout=60,
        what="our record to see the cancellation request",
    )
    page.goto(url(system, f"/dashboard/fulfillment-orders/{record.id}"))
    expect(page.locator(".merchant-note").last).to_have_text("Customer moved <i>abroad</i>")
    assert page.locator("main i").count() == 0
    cancellation = page.locator("#cancellation")
    cancellation.locator("textarea[name=message]").fill("Cancelled before picking.")
    screenshot(page, "order-cancellation")
    cancellation.get_by_role("button", name="Accept cancellation").click()
    expect(page.locator(".flash-ok")).to_contain_text("Cancellation")
    expect(page.locator("h1 .badge")).to_have_text("cancelled")

    store_order = shop.merchant.order(order["id"])
    fo = fo_by_id(store_order, fo_id)
    assert (fo["status"], fo["request_status"]) == ("CLOSED", "CANCELLATION_ACCEPTED")
    assert "Cancelled before picking." in timeline(store_order)
    assert shop.record(fo_id).state == "cancelled"
    assert shop.available("DASH-LAMP") == 5  # the reservation went back on the shelf
    assert page.dialogs == []


PAGES = ["/dashboard/", "/dashboard/stock", "/dashboard/shops", "/dashboard/fulfillment-orders/1"]


def test_every_page_sends_a_signed_out_visitor_to_sign_in(system, page):
    for path in PAGES:
        page.goto(url(system, path))
        assert re.search(r"/dashboard/login(\?|$)", page.url), path
        assert page.get_by_role("button", name="Sign in").is_visible()


def test_signing_in_never_sends_the_operator_to_another_site(system, operator_email, page):
    page.goto(url(system, "/dashboard/login?next=//evil.example/phish"))
    assert sign_in(page, system, operator_email).headers["location"] == "/dashboard/"
    assert page.url == url(system, "/dashboard/")


def test_a_post_without_the_right_csrf_token_is_forbidden(connected_shop, operator_email, page):
    system = connected_shop.system
    sign_in(page, system, operator_email)
    sku = f"CSRF-{uuid.uuid4().hex[:6]}"
    form = {"shop": str(connected_shop.shop_id), "sku": sku, "on_hand": "7"}
    missing = page.request.post(url(system, "/dashboard/stock"), form=form)
    wrong = page.request.post(url(system, "/dashboard/stock"), form={**form, "csrf_token": "x"})
    assert (missing.status, wrong.status) == (403, 403)
    assert all(row.sku != sku for row in stock.levels(system.context()))

    # The same request with the page's token goes through: the token is what made the difference.
    page.goto(url(system, "/dashboard/stock"))
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    ok = page.request.post(url(system, "/dashboard/stock"), form={**form, "csrf_token": token})
    assert ok.status == 200
    assert any(row.sku == sku and row.on_hand == 7 for row in stock.levels(system.context()))


def test_repeated_failed_sign_ins_are_answered_429_even_with_the_right_password(system, operator_email, page):
    from playwright.sync_api import expect

    page.goto(url(system, "/dashboard/login"))
    for _ in range(5):
        assert sign_in(page, system, operator_email, "not the password").status == 401
        expect(page.locator(".flash-error")).to_have_text("Wrong email or password.")
    answer = sign_in(page, system, operator_email, PASSWORD)
    assert answer.status == 429
    expect(page.locator(".flash-error")).to_contain_text("Too many failed sign-ins")
    page.goto(url(system, "/dashboard/"))
    assert "/dashboard/login" in page.url


# --- the queue at scale --------------------------------------------------------------------------------------------

REAL_ORDERS = 50  # placed on the sandbox store and accepted there through the dashboard
ARCHIVE_ORDERS = 950  # written straight into our database: a second merchant's history, the queue's bulk


def seed_archive(system, count: int, now) -> dict:
    """A disconnected merchant's fulfillment orders, received 15 minutes apart going back from an hour ago, in
    a warehouse's mix of states; returns what the queue must show of them (late and delivered ones)."""
    from datetime import timedelta

    from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, Package, Shop

    people = [("Grace", "Hopper"), ("Alan", "Turing"), ("Edsger", "Dijkstra"), ("Barbara", "Liskov")]
    expected = {"late": 0, "delivered": 0, "shipped": 0}
    ctx = system.context()
    with ctx.db.transaction() as session:
        shop = Shop(domain=f"archive-{uuid.uuid4().hex[:6]}.myshopify.com", settings={}, uninstalled_at=now)
        session.add(shop)
        session.flush()
        for n in range(count):
            # 7 minutes off the quarter hours, so no promise falls due within minutes of the test's clock.
            received = now - timedelta(hours=1, minutes=7) - timedelta(minutes=15 * n)
            kind = n % 19
            state, promised, deliveries = "shipped", None, ["DELIVERED"]
            if kind in (0, 1):
                state = "requested"
            elif kind in (2, 3):
                state, promised = "accepted", received + timedelta(days=1)
            elif kind == 4:
                state = "rejected"
            elif kind == 5:
                state = "cancelled"
            elif kind == 6:
                deliveries = ["DELIVERED", "IN_TRANSIT"]
            first, last = people[n % len(people)]
            record = FulfillmentOrder(
                shop_id=shop.id,
                store_id=f"gid://shopify/FulfillmentOrder/archive-{n}",
                order_id=f"gid://shopify/Order/archive-{n}",
                order_name=f"#{9001 + n}",
                state=state,
                store_status={"requested": "OPEN", "accepted": "IN_PROGRESS"}.get(state, "CLOSED"),
                store_request_status={"requested": "SUBMITTED", "rejected": "REJECTED"}.get(state, "ACCEPTED"),
                destination={"first_name": first, "last_name": last, "country_code": "NO"},
                created_at=received,
                expected_ship_at=promised,
            )
            line = FulfillmentOrderLineItem(
                store_id=f"gid://LI/archive-{n}",
                line_item_id=f"gid://OLI/archive-{n}",
                sku=f"ARCH-{n % 40}",
                product_title="Archive item",
                total_quantity=2,
                remaining_quantity=0 if state == "shipped" else 2,
            )
            record.line_items = [line]
            if state == "shipped":
                record.packages = [
                    Package(
                        sequence=i,
                        state="shipped",
                        tracking_number=f"ARCH{shop.id}-{n}-{i}",
                        carrier="DHL",
                        delivery_status=status,
                        shipped_at=received,
                    )
                    for i, status in enumerate(deliveries, start=1)
                ]
                expected["shipped"] += 1
                expected["delivered"] += all(s == "DELIVERED" for s in deliveries)
            # The rule the queue documents: past our promise, or received longer ago than the handling day.
            open_ = state in ("requested", "accepted")
            due = promised or received + timedelta(days=1)
            expected["late"] += open_ and due < now
            session.add(record)
        session.flush()
        expected["shop_id"] = shop.id
    return expected


def summary(page) -> str:
    return page.locator(".paging-summary").inner_text()


def test_queue_at_scale_pages_searches_and_bulk_accepts_fifty_on_the_store(connected_shop, operator_email, page):
    from datetime import UTC, datetime

    from playwright.sync_api import expect
    from sqlalchemy import func, select

    from devstack.system import ADDRESS
    from fulfillment.models import FulfillmentOrder

    shop, system = connected_shop, connected_shop.system
    actions.update_settings(system.context(), shop.shop_id, {"review_requests": True})
    shop.set_stock("SCALE-MUG", REAL_ORDERS * 2)
    buyer = {**ADDRESS, "first_name": "Charles", "last_name": "Babbage"}
    orders = [
        shop.place_order([{"sku": "SCALE-MUG", "title": "Scale mug", "quantity": 1}], shipping_address=buyer)
        for _ in range(REAL_ORDERS)
    ]
    for order in orders:
        shop.merchant.request_fulfillment(only_fo(order)["id"])
    archive = seed_archive(system, ARCHIVE_ORDERS, datetime.now(UTC))

    ctx = system.context()

    def requested_here() -> int:
        # Read whole: a request the sweep has only listed has no lines (nor SKU, nor customer) to search yet.
        with ctx.db.transaction() as session:
            return session.scalar(
                select(func.count())
                .select_from(FulfillmentOrder)
                .where(
                    FulfillmentOrder.shop_id == shop.shop_id,
                    FulfillmentOrder.state == "requested",
                    FulfillmentOrder.line_items.any(),
                    FulfillmentOrder.destination.is_not(None),
                )
            )

    wait_for(lambda: requested_here() == REAL_ORDERS, timeout=60, what="our records of the 50 requests, read whole")
    with ctx.db.transaction() as session:
        total = session.scalar(select(func.count()).select_from(FulfillmentOrder))
    assert total >= REAL_ORDERS + ARCHIVE_ORDERS
    pages = -(-total // 50)

    sign_in(page, system, operator_email)

    # Paging: every fulfillment order is on a page, the number matched said, nothing silently cut.
    page.goto(url(system, "/dashboard/?view=all"))
    expect(page.locator(".paging-summary")).to_have_text(f"Showing 1–50 of {total:,}")
    expect(page.locator(".page-of")).to_have_text(f"Page 1 of {pages}")
    assert page.locator("table.queue tbody tr").count() == 50
    expect(page.locator("table.queue")).to_contain_text("UTC")
    screenshot(page, "queue-scale-1-first-page", full_page=False)
    page.get_by_role("link", name="Next").click()
    expect(page.locator(".paging-summary")).to_have_text(f"Showing 51–100 of {total:,}")
    page.locator(".pager input[name=page]").fill("7")
    page.locator(".pager").get_by_role("button", name="Go").click()
    expect(page.locator(".paging-summary")).to_have_text(f"Showing 301–350 of {total:,}")
    page.get_by_role("link", name="Last").click()
    expect(page.locator(".page-of")).to_have_text(f"Page {pages} of {pages}")
    last_rows = total - (pages - 1) * 50
    expect(page.locator(".paging-summary")).to_have_text(f"Showing {total - last_rows + 1:,}–{total:,} of {total:,}")
    # Newest first: the last page ends with the oldest order there is.
    expect(page.locator("table.queue tbody tr").last).to_contain_text(f"#{9000 + ARCHIVE_ORDERS}")
    screenshot(page, "queue-scale-2-last-page", full_page=False)

    # Search by order name, by SKU and by the customer's name.
    records = {r.store_id: r for r in system.records(shop.shop_id)}
    one = records[only_fo(orders[7])["id"]]
    page.goto(url(system, "/dashboard/?view=all"))
    page.get_by_label("Search").fill(one.order_name)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".paging-summary")).to_have_text("Showing 1–1 of 1")
    expect(page.locator("table.queue tbody tr")).to_contain_text(one.order_name)
    page.get_by_label("Search").fill("scale-mug")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".paging-summary")).to_have_text(f"Showing 1–50 of {REAL_ORDERS}")
    page.get_by_label("Search").fill("babbage")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".paging-summary")).to_have_text(f"Showing 1–50 of {REAL_ORDERS}")
    expect(page.locator("table.queue")).to_contain_text("Charles Babbage")
    page.get_by_label("Search").fill("hopper")
    page.get_by_label("Shop").select_option(str(archive["shop_id"]))
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".paging-summary")).to_contain_text(f"of {-(-ARCHIVE_ORDERS // 4)}")
    screenshot(page, "queue-scale-3-search", full_page=False)

    # Late orders are highlighted (and filtered), delivered ones shown as delivered.
    page.goto(url(system, f"/dashboard/?shop={archive['shop_id']}&late=1"))
    expect(page.locator(".paging-summary")).to_contain_text(f"of {archive['late']}")
    assert page.locator("table.queue tbody tr.late").count() == min(50, archive["late"])
    screenshot(page, "queue-scale-4-late", full_page=False)
    page.goto(url(system, f"/dashboard/?shop={archive['shop_id']}&view=shipped"))
    expect(page.locator(".paging-summary")).to_contain_text(f"of {archive['shipped']}")
    delivered = page.locator("table.queue tbody .badge.state-delivered").count()
    assert 0 < delivered < 50 and page.locator("table.queue tbody .badge.state-shipped").count() == 50 - delivered

    # Bulk accept: this shop's 50 requests under review, one page, all selected, accepted on the store.
    page.goto(url(system, "/dashboard/"))
    page.get_by_label("Show").select_option("requested")
    page.get_by_label("Shop").select_option(str(shop.shop_id))
    page.get_by_label("Per page").select_option("50")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".paging-summary")).to_have_text(f"Showing 1–{REAL_ORDERS} of {REAL_ORDERS}")
    page.get_by_role("link", name=f"Select all {REAL_ORDERS} requests on this page").click()
    expect(page.locator("input[name=fulfillment_order]:checked")).to_have_count(REAL_ORDERS)
    screenshot(page, "queue-scale-5-selected", full_page=False)
    page.get_by_role("button", name="Accept selected").click(timeout=90_000)
    expect(page.locator("h1.bulk-summary")).to_have_text(f"Accepted {REAL_ORDERS} of {REAL_ORDERS}", timeout=90_000)
    expect(page.locator(".bulk-outcomes tbody tr.done")).to_have_count(REAL_ORDERS)
    screenshot(page, "queue-scale-6-bulk-accepted", full_page=False)

    # The store's side: every one of the 50 is accepted there, read back over the merchant API.
    by_fo = {fo["id"]: fo for order in shop.merchant.orders() for fo in order["fulfillment_orders"]}
    statuses = {(by_fo[only_fo(o)["id"]]["status"], by_fo[only_fo(o)["id"]]["request_status"]) for o in orders}
    assert statuses == {("IN_PROGRESS", "ACCEPTED")}
    # Ours: accepted by the operator, each in its own step, the store's statuses as last seen.
    ours = system.records(shop.shop_id)
    assert sorted(r.state for r in ours) == ["accepted"] * REAL_ORDERS
    assert all(any(c.cause == "operator" and operator_email in c.detail for c in r.state_changes) for r in ours)
    page.get_by_role("link", name="Back to the queue").click()
    expect(page.locator("p.empty")).to_be_visible()
    page.goto(url(system, f"/dashboard/?view=accepted&shop={shop.shop_id}"))
    expect(page.locator(".store-status").first).to_contain_text("in progress / accepted")
    screenshot(page, "queue-scale-7-accepted", full_page=False)
    assert page.dialogs == []
