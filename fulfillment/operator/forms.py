"""What an operator types into the dashboard, checked: rejections, packages and shop settings (stock's own input
is `fulfillment.stock`'s).

The shapes are marshmallow schemas, as `fulfillment.schemas` has them for the store's payloads; the checks name
every problem at once (`InvalidInput.problems`), in the words the form shows; the actions
(`fulfillment.operator.actions`) take only what passed them. What depends on the fulfillment order itself (the
units left to ship against the packages made) is checked by hand in `validate_packages`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from fulfillment.models import MAX_ROW_ID
from fulfillment.operator import queries

# The store's FulfillmentOrderRejectionReason values, with the words an operator picks them by.
REJECTION_REASONS: dict[str, str] = {
    "INVENTORY_OUT_OF_STOCK": "Out of stock",
    "INCORRECT_ADDRESS": "Incorrect address",
    "UNDELIVERABLE_DESTINATION": "Undeliverable destination",
    "INTERNATIONAL_SHIPPING_UNAVAILABLE": "International shipping unavailable",
    "INELIGIBLE_PRODUCT": "Ineligible product",
    "INCORRECT_PRODUCT_INFO": "Incorrect product info",
    "INVALID_SKU": "Invalid SKU",
    "MISSING_CUSTOMS_INFO": "Missing customs info",
    "ORDER_TOO_LARGE": "Order too large",
    "PACKAGE_PREFERENCE_NOT_SET": "Package preference not set",
    "INVALID_CONTACT_INFORMATION": "Invalid contact information",
    "PAYMENT_DECLINED": "Payment declined",
    "MERCHANT_BLOCKED_OR_SUSPENDED": "Merchant blocked or suspended",
    "OTHER": "Other",
}

TEXT_LIMIT = 1000  # what we send the store as a message; its timeline shows it to the merchant
# How many packages one packing may make: the dashboard's form shows a column for each.
MAX_PACKAGES = 20
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LIST_SPLIT = re.compile(r"[\s,;]+")


class InvalidInput(ValueError):
    """What the operator entered cannot be used; `problems` lists each reason, for the form."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def trimmed(value: str | None, limit: int = TEXT_LIMIT) -> str:
    """What the operator wrote, trimmed to what the store takes."""
    return (value or "").strip()[:limit]


def whole_number(value: Any, default: int | None = None) -> int | None:
    """A whole number from a form or query string, held to the database's integer so none overflows it."""
    text = str(value).strip()
    if not text.isascii() or len(text.lstrip("+-")) > 10:
        return default
    try:
        number = int(text)
    except (TypeError, ValueError):
        return default
    return number if -MAX_ROW_ID <= number <= MAX_ROW_ID else default


def _problems(exc: ValidationError, schema: Schema) -> list[str]:
    """The form's words for each problem, in the order the form shows its fields."""
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    order = [*schema.fields, "_schema"]
    found: list[str] = []
    for key in sorted(messages, key=lambda k: order.index(k) if k in order else len(order)):
        value = messages[key]
        found.extend(value if isinstance(value, list) else [str(value)])
    return found


def _load(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput(_problems(exc, schema)) from exc


class _FormField(fields.Field):
    """A form field whose null is read as the field left blank (and checked as such)."""

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any) -> Any:
        return super().deserialize("" if value is None else value, attr, data, **kwargs)


class _Trimmed(_FormField):
    """Free text as `trimmed` makes it: nothing written is the empty string."""

    def __init__(self, limit: int = TEXT_LIMIT, **kwargs: Any):
        super().__init__(load_default="", **kwargs)
        self.limit = limit

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return trimmed(value if isinstance(value, str) else None, self.limit)


class WholeNumber(fields.Field):
    """A whole number as `whole_number` reads it: held to the database's integer."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        number = whole_number(value)
        if number is None:
            raise self.make_error("invalid")
        return number


def row_id(value: Any) -> int | None:
    """A row's id from a query string or form, or None when it is not one (absent, not digits, out of range)."""
    text = str(value or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ROW_ID else None


def _values(form: Mapping[str, Any], key: str) -> list[Any]:
    """All values of a form field: a MultiDict's list, or a plain mapping's one value (which may be a list)."""
    getlist = getattr(form, "getlist", None)
    if getlist is not None:
        return list(getlist(key))
    return [form[key]] if key in form else []


def _first(form: Mapping[str, Any], key: str) -> Any:
    values = _values(form, key)
    return values[0] if values else None


# --- rejections and packages --------------------------------------------------------------------------------


class RejectionForm(Schema):
    """Rejecting a fulfillment request: the store's reason, a message for the merchant, and per-line messages
    (store line item id, message) naming the lines at fault; blank line messages are dropped."""

    class Meta:
        unknown = EXCLUDE

    reason = fields.Raw(
        required=True,
        validate=validate.OneOf(tuple(REJECTION_REASONS), error="unknown rejection reason {input!r}"),
    )
    message = _Trimmed(
        validate=validate.Length(min=1, error="say why in the message: the merchant reads it in the order's timeline")
    )
    line_item_messages = fields.List(fields.Tuple((fields.Raw(), _Trimmed())), load_default=list)

    @post_load
    def _drop_blank_lines(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["line_item_messages"] = tuple((line_id, text) for line_id, text in data["line_item_messages"] if text)
        return data


def validate_rejection(
    reason: str, message: str | None, line_item_messages: Sequence[tuple[str, str]]
) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """The store's reason, a message for the merchant, and per-line messages (blank ones dropped)."""
    data = {"reason": reason, "message": message, "line_item_messages": [tuple(pair) for pair in line_item_messages]}
    loaded = _load(RejectionForm(), data)
    return loaded["reason"], loaded["message"], loaded["line_item_messages"]


class CancellationAnswer(Schema):
    """Answering a merchant's cancellation request: refusing it needs a reason the merchant reads."""

    accept = fields.Boolean(required=True)
    message = _Trimmed()

    @validates_schema
    def _refusal_says_why(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data["accept"] and not data["message"]:
            raise ValidationError("say why the cancellation is refused: the merchant reads it in the timeline")


def cancellation_message(accept: bool, message: str | None) -> str:
    """The message of a cancellation answer, trimmed (may be empty when accepting)."""
    return _load(CancellationAnswer(), {"accept": accept, "message": message})["message"]


def validate_packages(
    remaining: Mapping[int, int],
    packages: Sequence[Sequence[tuple[int, int]]],
    tracking_numbers: Sequence[str],
    carrier: str,
    labels: Mapping[int, str] | None = None,
) -> tuple[list[list[tuple[int, int]]], list[str], str]:
    """Check an operator's packing against what remains to ship.

    `remaining` maps our line item ids to units left; `packages` are lists of (line item id, quantity). Every
    remaining unit must go in a package, no line may be packed beyond what remains: once all its packages
    have shipped, the workflow counts the fulfillment order as shipped, so a unit left out would never ship.
    Returns the packages without empty entries, the tracking numbers and the carrier, trimmed.
    """
    labels = labels or {}
    problems: list[str] = []
    carrier = trimmed(carrier, 255)
    if not carrier:
        problems.append("name the carrier")
    numbers = [trimmed(n, 255) for n in tracking_numbers]
    if not packages:
        problems.append("pack at least one package")
    if len(packages) > MAX_PACKAGES:
        problems.append(f"at most {MAX_PACKAGES} packages at a time")
    if len(numbers) != len(packages):
        problems.append(f"{len(packages)} package(s) need {len(packages)} tracking number(s), got {len(numbers)}")
    cleaned: list[list[tuple[int, int]]] = []
    packed: dict[int, int] = {}
    for number, items in enumerate(packages, start=1):
        merged: dict[int, int] = {}
        for line_id, quantity in items:
            if line_id not in remaining:
                problems.append(f"package {number}: line item {line_id} is not on this fulfillment order")
            elif quantity < 0:
                problems.append(f"package {number}: a quantity cannot be negative")
            elif quantity > 0:
                merged[line_id] = merged.get(line_id, 0) + quantity
        if not merged:
            problems.append(f"package {number} is empty")
        for line_id, quantity in merged.items():
            packed[line_id] = packed.get(line_id, 0) + quantity
        cleaned.append(sorted(merged.items()))
    for index, tracking in enumerate(numbers[: len(packages)], start=1):
        if not tracking:
            problems.append(f"package {index} needs a tracking number")
    repeated = sorted({n for n in numbers if n and numbers.count(n) > 1})
    if repeated:
        problems.append(f"each package needs its own tracking number ({', '.join(repeated)} repeated)")
    for line_id, left in remaining.items():
        label = labels.get(line_id, f"line item {line_id}")
        units = packed.get(line_id, 0)
        if units > left:
            problems.append(f"{label}: {units} packed but only {left} left to ship")
        elif units < left:
            problems.append(f"{label}: {left - units} unit(s) not packed; every remaining unit must go in a package")
    if problems:
        raise InvalidInput(problems)
    return cleaned, numbers, carrier


_PACKAGE_COUNT = f"pack in 1 to {MAX_PACKAGES} packages"


class PackingForm(Schema):
    """The packing form's size: how many package columns it has. The columns' names depend on the fulfillment
    order's lines (`qty-<package>-<line id>`), so they are read one by one below."""

    package_count = WholeNumber(
        required=True,
        allow_none=False,
        validate=validate.Range(1, MAX_PACKAGES, error=_PACKAGE_COUNT),
        error_messages={"required": _PACKAGE_COUNT, "null": _PACKAGE_COUNT, "invalid": _PACKAGE_COUNT},
    )


def packages_from_form(form: Mapping[str, Any]) -> tuple[list[list[tuple[int, int]]], list[str]]:
    """The packing form's packages, as (line item id, quantity) lists, and their tracking numbers.

    The form has `package_count` columns; `qty-<package>-<line id>` holds a quantity, `tracking-<package>` the
    package's tracking number.
    """
    count = _load(PackingForm(), {"package_count": _first(form, "package_count")})["package_count"]
    line_ids = [whole_number(v) for v in _values(form, "line_id")]
    problems = []
    packages: list[list[tuple[int, int]]] = []
    for number in range(1, count + 1):
        items = []
        for line_id in line_ids:
            raw = (_first(form, f"qty-{number}-{line_id}") or "0").strip() or "0"
            quantity = whole_number(raw)
            if line_id is None or quantity is None:
                problems.append(f"package {number}: quantities are whole numbers")
                continue
            items.append((line_id, quantity))
        packages.append(items)
    if problems:
        raise InvalidInput(sorted(set(problems)))
    return packages, [_first(form, f"tracking-{number}") or "" for number in range(1, count + 1)]


# --- shop settings --------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _words(value: Any) -> list[str]:
    items = [str(v) for v in value] if isinstance(value, list | tuple) else _LIST_SPLIT.split(str(value or ""))
    seen: dict[str, None] = {}
    for item in (i.strip() for i in items):
        if item:
            seen[item] = None
    return list(seen)


class _Checkbox(_FormField):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        return _truthy(value)


class _Words(_FormField):
    """A list typed one per line or separated by commas (or given as a list by a script), repeats dropped."""

    def __init__(self, upper: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.upper = upper

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        words = _words(value)
        return [w.upper() for w in words] if self.upper else words


def _countries(codes: list[str]) -> None:
    bad = [c for c in codes if not _COUNTRY.match(c)]
    if bad:
        raise ValidationError(f"blocked countries: two-letter country codes (ISO 3166), not {', '.join(bad)}")


def _skus(skus: list[str]) -> None:
    if any(len(s) > 255 for s in skus):
        raise ValidationError("ineligible SKUs: at most 255 characters each")


_HANDLING_DAYS = "handling days: a number from 0 to 60"


class SettingsForm(Schema):
    """A shop's settings as the settings form sends them, one value a field; an empty text field is None (the
    warehouse's default applies)."""

    class Meta:
        unknown = EXCLUDE

    review_requests = _Checkbox()
    review_cancellations = _Checkbox()
    handling_days = fields.Float(
        allow_none=True,
        allow_nan=False,
        validate=validate.Range(0, 60, error=_HANDLING_DAYS),
        error_messages={"invalid": _HANDLING_DAYS, "special": _HANDLING_DAYS, "too_large": _HANDLING_DAYS},
    )
    carrier = fields.String(allow_none=True, validate=validate.Length(max=255, error="carrier: at most 255 characters"))
    blocked_countries = _Words(upper=True, validate=_countries)
    ineligible_skus = _Words(validate=_skus)

    @pre_load
    def _last_values(self, form: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The last value of each field sent (a checkbox comes after its hidden "0"); blank text is None."""
        data: dict[str, Any] = {}
        for key in self.fields:
            if values := _values(form, key):
                data[key] = values[-1]
        for key in ("handling_days", "carrier"):
            if key in data:
                data[key] = str(data[key]).strip() or None
        return data


def parse_settings(form: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> dict:
    """A shop's settings from a form: fields the form leaves out keep their current value.

    `review_requests` and `review_cancellations` hold new requests (cancellation requests) for an operator
    instead of answering them automatically. They are checkboxes: the dashboard sends a hidden "0" before
    each, and the last value wins.
    Lists (`blocked_countries`, `ineligible_skus`) come one per line or separated by commas.
    """
    settings = dict(current or {})
    for key, value in _load(SettingsForm(), form).items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return settings


def settings_values(settings: Mapping[str, Any]) -> dict:
    """A shop's settings as the settings form shows them: lists one item per line."""
    handling_days = settings.get("handling_days")
    return {
        "review_requests": bool(settings.get("review_requests")),
        "review_cancellations": bool(settings.get("review_cancellations")),
        "handling_days": "" if handling_days is None else f"{handling_days:g}",
        "carrier": settings.get("carrier", ""),
        "blocked_countries": "\n".join(settings.get("blocked_countries", [])),
        "ineligible_skus": "\n".join(settings.get("ineligible_skus", [])),
    }


def submitted_settings_values(form: Mapping[str, Any]) -> dict:
    """What the operator submitted, shown again beside the problems found in it."""
    values = {key: _first(form, key) or "" for key in settings_values({})}
    for flag in ("review_requests", "review_cancellations"):
        values[flag] = _values(form, flag)[-1:] == ["1"]
    return values


# --- the queue: its filter and its bulk decisions ------------------------------------------------------------------


def _one_of(choices: Sequence[Any], what: str) -> validate.OneOf:
    return validate.OneOf(choices, error=f"{what}: one of {', '.join(str(c) for c in choices if c != '')}")


class _RowId(_FormField):
    """A row's id as `row_id` reads it."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        number = row_id(value)
        if number is None:
            raise self.make_error("invalid")
        return number


class _Search(_FormField):
    """What the operator searches for, trimmed, its control characters dropped (PostgreSQL refuses a NUL in a
    string, and none belongs in a search)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = value if isinstance(value, str) else ""
        return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text).strip()


_PAGE = "page: a whole number from 1"
_PER_PAGE = f"per page: one of {', '.join(map(str, queries.PAGE_SIZES))}"


class QueueFilterForm(Schema):
    """The queue's query string: which fulfillment orders, in what order, which page. Every field is optional."""

    class Meta:
        unknown = EXCLUDE

    view = fields.String(load_default="open", validate=_one_of(queries.VIEWS, "show"))
    shop = _RowId(load_default=None, error_messages={"invalid": "shop: the id of a shop"})
    q = _Search(
        load_default="",
        validate=validate.Length(max=queries.SEARCH_LIMIT, error=f"search: at most {queries.SEARCH_LIMIT} characters"),
    )
    age = fields.String(load_default="", validate=_one_of(("", *queries.AGES), "waiting longer than"))
    late = _Checkbox(load_default=False)
    sort = fields.String(load_default="newest", validate=_one_of(queries.SORTS, "order"))
    # Past the last page is not a mistake (the queue shrinks under the operator): the query shows the last one.
    page = WholeNumber(
        load_default=1, validate=validate.Range(1, error=_PAGE), error_messages={"invalid": _PAGE, "null": _PAGE}
    )
    per_page = WholeNumber(
        load_default=queries.PAGE_SIZES[1],
        validate=validate.OneOf(queries.PAGE_SIZES, error=_PER_PAGE),
        error_messages={"invalid": _PER_PAGE, "null": _PER_PAGE},
    )

    @pre_load
    def _first_values(self, args: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The first value of each field (as a browser reads a link that repeats one); a blank one is unset."""
        data: dict[str, Any] = {}
        for key in self.fields:
            values = _values(args, key)
            if values:
                value = values[0] if isinstance(values[0], str) else str(values[0])
                if value.strip():
                    data[key] = value
        return data


def queue_filter(args: Mapping[str, Any]) -> tuple[queries.QueueFilter, list[str]]:
    """The queue's filter from a query string, and the problems found in it: a field that does not pass is left
    at its default (the page still shows, with the problems beside it), so no query string fails the page."""
    schema = QueueFilterForm()
    try:
        data, problems = schema.load(args), []
    except ValidationError as exc:
        problems = _problems(exc, schema)
        bad = set(exc.messages) if isinstance(exc.messages, dict) else set(schema.fields)
        passed = {key: value for key, value in (exc.valid_data or {}).items() if key not in bad}
        data = {**schema.load({}), **passed}
    return (
        queries.QueueFilter(
            view=data["view"],
            shop_id=data["shop"],
            search=data["q"],
            age=data["age"],
            late=data["late"],
            sort=data["sort"],
            page=min(data["page"], queries.MAX_PAGE),
            per_page=data["per_page"],
        ),
        problems,
    )


MAX_BULK = max(queries.PAGE_SIZES)  # one page of the queue at a time
_BULK_COUNT = f"choose 1 to {MAX_BULK} fulfillment orders"


class BulkDecisionForm(Schema):
    """Accepting or rejecting the requests ticked on a page of the queue: the same decision for each."""

    class Meta:
        unknown = EXCLUDE

    decision = fields.String(
        required=True,
        validate=_one_of(("accept", "reject"), "decision"),
        error_messages={"required": "choose accept or reject"},
    )
    fulfillment_orders = fields.List(
        _FormField(),
        load_default=list,
        validate=validate.Length(min=1, max=MAX_BULK, error=_BULK_COUNT),
    )
    reason = _FormField(load_default="")
    message = _Trimmed()

    @pre_load
    def _from_form(self, form: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        data = {key: _first(form, key) for key in ("decision", "reason", "message") if _values(form, key)}
        data["fulfillment_orders"] = _values(form, "fulfillment_order")
        return data

    @validates_schema
    def _ids(self, data: dict[str, Any], **kwargs: Any) -> None:
        if any(row_id(value) is None for value in data.get("fulfillment_orders", [])):
            raise ValidationError({"fulfillment_orders": ["a fulfillment order is named by its id"]})


def bulk_decision(form: Mapping[str, Any]) -> tuple[str, list[int], str, str]:
    """The decision ("accept" or "reject"), the fulfillment orders' ids (in the order ticked, repeats dropped),
    and the rejection's reason and message (checked as a single rejection's are) or the accept's message."""
    loaded = _load(BulkDecisionForm(), form)
    ids = list(dict.fromkeys(row_id(value) for value in loaded["fulfillment_orders"]))
    if loaded["decision"] == "reject":
        reason, message, _ = validate_rejection(loaded["reason"], loaded["message"], ())
        return "reject", ids, reason, message
    return "accept", ids, "", loaded["message"]
