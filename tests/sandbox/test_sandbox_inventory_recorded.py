"""The sandbox's locations and inventory held to the recorded store: every recorded location and inventory
mutation of the captures below (and the reads whose documents the sandbox serves) is sent again, in recorded
order, to a fresh sandbox shop, and its userErrors, top-level errors and payload must be what the store answered.

What the recorder made outside these mutations is made through the sandbox's merchant API instead: its products
(`productCreate`, `productSet`, tracking turned on by `productVariantsBulkUpdate`), a tracked product stocked at
the shop location for any other recorded inventory item, a merchant location for each recorded location the
capture did not add, one open order at the shop location (the recorded shop always had some).
Ids, timestamps and cursors compare by kind only. Skipped when ../shared/store-recordings is absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from graphql import FieldNode, OperationDefinitionNode, parse, validate

from sandbox.graphql_api import load_schema

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "store-recordings"
pytestmark = pytest.mark.skipif(not RECORDINGS.is_dir(), reason="needs ../shared/store-recordings")

GID = re.compile(r"gid://shopify/([A-Za-z]+)/(\d+)(\?[A-Za-z0-9=&_.-]*)?")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
LEVEL = re.compile(r"^gid://shopify/InventoryLevel/(\d+)\?inventory_item_id=(\d+)$")

# Root field -> its arguments' types (to rebuild documents the capture did not keep).
ARGUMENTS = {
    "inventorySetQuantities": {"input": "InventorySetQuantitiesInput!"},
    "inventoryAdjustQuantities": {"input": "InventoryAdjustQuantitiesInput!"},
    "inventorySetOnHandQuantities": {"input": "InventorySetOnHandQuantitiesInput!"},
    "inventoryMoveQuantities": {"input": "InventoryMoveQuantitiesInput!"},
    "inventoryActivate": {"inventoryItemId": "ID!", "locationId": "ID!", "available": "Int", "onHand": "Int"},
    "inventoryDeactivate": {"inventoryLevelId": "ID!"},
    "locationActivate": {"locationId": "ID!"},
    "locationDeactivate": {"locationId": "ID!", "destinationLocationId": "ID"},
    "locationDelete": {"locationId": "ID!"},
    "locationAdd": {"input": "LocationAddInput!"},
    "locationEdit": {"id": "ID!", "input": "LocationEditInput!"},
}
# Reads of one object (lists of the store's locations hold its own, older data: not replayed).
READS = {"location", "inventoryItem", "inventoryLevel", "inventoryItems"}
# What the recorder's app did to set the scene: sent with the app's token.
APP_SETUP = {"fulfillmentServiceCreate", "fulfillmentServiceDelete"}
# Payload objects the rebuilt selection names when the store answered null.
NULL_OBJECTS = {"inventoryAdjustmentGroup", "inventoryLevel", "location"}
# userErrors without `code` (plain UserError).
CODELESS = {"inventoryActivate", "inventoryDeactivate"}

CAPTURES = [
    "inventorySetQuantities-name-validation.json",
    "inventorySetQuantities-quantity-bounds.json",
    "inventory-quantity-contracts-2026-04.json",
    "inventory-existence-validation.json",
    "inventory-adjust-name-allowlist.json",
    "inventory-adjust-ledger-document-validation.json",
    "inventory-activate-on-hand.json",
    "inventory-deactivate-validation-2026-04.json",
    "inventory-inactive-level-lifecycle-2026-04.json",
    "location-lifecycle-validation.json",
    "location-activate-deactivate-with-idempotency-directive.json",
    "location-deactivate-state-machine.json",
    "location-delete-state-and-scope.json",
    "location-activate-fulfillment-service-scope.json",
    "inventory-item-levels-connection-windowing-2026-04.json",
    "inventory-live-hybrid-cold-authoritative-reads.json",
]
# What the recorded store reported of its own, older data (other products' stock at the shop location, totals
# it computes later): not compared.
NOT_COMPARED = {"totalInventory"}


def _body(response: Any) -> Any:
    if isinstance(response, dict):
        for key in ("payload", "body"):
            if isinstance(response.get(key), dict):
                return response[key]
    return response


def _steps(node: Any, key: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(key, {query?, variables, response}) in recorded order."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "variables" in node and "response" in node:
            return [(key, node)]
        for name, value in node.items():
            if name != "upstreamCalls":
                found += _steps(value, f"{key}.{name}" if key else name)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _steps(value, f"{key}.{index}")
    return found


def _ordered(steps: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """A capture lists the setup it undid (`setup.<case>Restores...`) under its setup: it ran right after the case
    it was made for (the first step whose name holds `<case>`)."""
    restores = [s for s in steps if re.search(r"\.(\w+)Restores", s[0])]
    ordered = [s for s in steps if s not in restores]
    for restore in restores:
        case = re.search(r"\.(\w+)Restores", restore[0]).group(1).lower()  # type: ignore[union-attr]
        at = next((i for i, s in enumerate(ordered) if case in s[0].lower() and "setup" not in s[0]), len(ordered) - 1)
        ordered.insert(at + 1 + sum(1 for r in restores[: restores.index(restore)]), restore)
    return ordered


def _roots(query: str) -> list[str]:
    """The root fields a document asks for (its answer names them by their aliases)."""
    operations = [d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode)]
    return [s.name.value for op in operations for s in op.selection_set.selections if isinstance(s, FieldNode)]


def _nodes(connection: Any) -> list[dict[str, Any]]:
    if isinstance(connection, dict):
        return connection.get("nodes") or [e.get("node") for e in connection.get("edges") or []]
    return []


def _dicts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value] + [d for v in value.values() for d in _dicts(v)]
    if isinstance(value, list):
        return [d for v in value for d in _dicts(v)]
    return []


def _mask(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items() if k not in NOT_COMPARED}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        if GID.fullmatch(value):
            return f"gid:{GID.fullmatch(value).group(1)}"  # type: ignore[union-attr]
        if TIME.match(value) or key in ("cursor", "startCursor", "endCursor"):
            return "<masked>"
    return value


def _differences(want: Any, got: Any, path: str = "data") -> list[tuple[str, Any, Any]]:
    if isinstance(want, dict) and isinstance(got, dict):
        return [d for k in want.keys() | got.keys() for d in _differences(want.get(k), got.get(k), f"{path}.{k}")]
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for i, (a, b) in enumerate(zip(want, got, strict=True)) for d in _differences(a, b, f"{path}.{i}")]
    return [] if want == got else [(path, want, got)]


def _selection(value: Any, root: str) -> str:
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            if isinstance(item, dict):
                for k, v in item.items():
                    merged.setdefault(k, v)
        value = merged
    parts = []
    for name, sub in value.items():
        if name.endswith("serErrors"):
            parts.append(f"{name} {{ field message{'' if root in CODELESS else ' code'} }}")
        elif name == "quantities" and isinstance(sub, list):
            names = json.dumps([q["name"] for q in sub])
            parts.append(f"quantities(names: {names}) {{ {_selection(sub, root)} }}")
        elif isinstance(sub, dict) or (isinstance(sub, list) and sub and isinstance(sub[0], dict)):
            parts.append(f"{name} {{ {_selection(sub, root)} }}")
        elif sub is None and name in NULL_OBJECTS:
            parts.append(f"{name} {{ id }}")
        else:
            parts.append(name)
    return " ".join(parts)


def _rebuild(root: str, variables: dict[str, Any], data: dict[str, Any], directive: bool) -> str:
    args = {k: t for k, t in ARGUMENTS[root].items() if k in variables}
    declared = dict(args)
    if directive:
        declared["idempotencyKey"] = "String!"
    decl = ", ".join(f"${k}: {t}" for k, t in declared.items())
    call = ", ".join(f"{k}: ${k}" for k in args)
    tail = " @idempotent(key: $idempotencyKey)" if directive else ""
    return f"mutation({decl}) {{ {root}({call}){tail} {{ {_selection(data.get(root) or {}, root)} }} }}"


class Capture:
    """One capture replayed on a fresh shop, recorded ids mapped to the sandbox's as they are made."""

    def __init__(self, name: str, harness: Any) -> None:
        self.name = name
        self.data = json.loads((RECORDINGS / name).read_text(encoding="utf-8"))
        self.version = str(self.data.get("apiVersion") or "2026-04")
        self.h = harness
        self.ids: dict[str, str] = {}
        # Every answer in the capture, the setup's too (some keep only the answer).
        self.answers = [d for d in _dicts(self.data) if "data" in d]
        # Ids the store made (an answer, or the capture's notes on its locations name them); the rest were made
        # up to probe a miss.
        noted = [v for d in _dicts(self.data) for k, v in d.items() if k in ("locations", "location", "seed")]
        self.known = {m.group(0).split("?")[0] for a in self.answers + noted for m in GID.finditer(json.dumps(a))}
        self.records = [d for a in self.answers + noted for d in _dicts(a) if isinstance(d.get("id"), str)]
        self.level_locations: dict[str, str] = {}
        self.level_numbers: dict[str, str] = {}
        self.cursors: dict[str, str] = {}
        for record in self.records:
            level = LEVEL.match(record["id"])
            location = (record.get("location") or {}).get("id")
            if level and location:
                self.level_locations[level.group(1)] = location
        primary = next((r["id"] for r in self.records if r.get("name") == "Shop location"), None)
        if primary:
            self.ids[primary] = self.h.shop_location
        # The recorded shop location always had open orders and other stock.
        self._product(stock_at_primary=True)
        self.h.order([{"sku": "SEED-1", "quantity": 1, "location_id": self.h.shop_location}])
        self.mismatches: list[str] = []
        self.compared = 0

    def _merchant(self, method: str, path: str, body: Any = None) -> Any:
        response = self.h.client.open(f"/_sandbox/shops/{self.h.shop}{path}", method=method, json=body)
        assert response.status_code < 300, response.get_json()
        return response.get_json()

    def _product(self, stock_at_primary: bool = False) -> str:
        made = self._merchant("POST", "/products", {"title": "Recorded item", "variants": [{"tracked": True}]})
        return made["variants"][0]["inventory_item"]["id"]

    def _product_set(self, variables: dict[str, Any], data: dict[str, Any]) -> None:
        """The recorder's `productSet`: the merchant makes the product, stocked where its quantities say."""
        recorded = data["productSet"]["product"]["variants"]["nodes"]
        variants = [
            {
                "sku": spec.get("sku"),
                "tracked": (spec.get("inventoryItem") or {}).get("tracked", False),
                "quantities": {
                    self._map_gid(q["locationId"]): q["quantity"] for q in spec.get("inventoryQuantities", [])
                },
            }
            for spec in variables["input"]["variants"]
        ]
        made = self._merchant("POST", "/products", {"title": variables["input"]["title"], "variants": variants})
        for node, variant in zip(recorded, made["variants"], strict=True):
            self.ids[node["inventoryItem"]["id"]] = variant["inventory_item"]["id"]

    def _product_create(self, recorded: dict[str, Any]) -> None:
        """The recorder's `productCreate`: the merchant makes it (one untracked variant, as the store does)."""
        made = self._merchant("POST", "/products", {"title": recorded.get("title") or "Recorded product"})
        self.ids[recorded["id"]] = made["id"]
        for node, variant in zip(_nodes(recorded.get("variants")), made["variants"], strict=False):
            self.ids[node["id"]] = variant["id"]
            if (node.get("inventoryItem") or {}).get("id"):
                self.ids[node["inventoryItem"]["id"]] = variant["inventory_item"]["id"]

    def _track(self, variables: dict[str, Any]) -> None:
        """The recorder's `productVariantsBulkUpdate` of its items' tracking: the merchant's item edit."""
        for spec in variables.get("variants") or []:
            tracked = (spec.get("inventoryItem") or {}).get("tracked")
            variant = self.ids.get(spec.get("id"))
            if tracked is None or variant is None:
                continue
            products = self._merchant("GET", "/products")["products"]
            item = next(v["inventory_item"]["id"] for p in products for v in p["variants"] if v["id"] == variant)
            self._merchant("PATCH", f"/inventory_items/{item.rsplit('/', 1)[-1]}", {"tracked": tracked})

    def _describes(self, gid: str, key: str) -> bool:
        return any(r["id"].split("?")[0] == gid and r.get(key) for r in self.records)

    def _map_gid(self, gid: str) -> str:
        base = gid.split("?")[0]
        level = LEVEL.match(gid)
        if base in self.ids and not level:
            return self.ids[base]
        if level:
            location = self.level_locations.get(level.group(1), f"gid://shopify/Location/{level.group(1)}")
            mapped_location = self.level_numbers.get(level.group(1)) or self._map_gid(location).rsplit("/", 1)[-1]
            mapped_item = self._map_gid(f"gid://shopify/InventoryItem/{level.group(2)}").rsplit("/", 1)[-1]
            return f"gid://shopify/InventoryLevel/{mapped_location}?inventory_item_id={mapped_item}"
        if base not in self.known:
            return gid  # made up to probe a miss
        kind = GID.fullmatch(base).group(1)  # type: ignore[union-attr]
        if kind == "InventoryItem":
            self.ids[base] = self._product()
        elif kind == "Location" and self._describes(base, "isFulfillmentService"):
            self.ids[base] = self.h.service_location
        elif kind == "Location":
            name = next((r["name"] for r in self.records if r["id"] == base and r.get("name")), f"Recorded {base[-6:]}")
            location = self._merchant("POST", "/locations", {"name": name})["id"]
            self.ids[base] = location
            if self._describes(base, "hasActiveInventory"):
                item = self._product()
                self._merchant(
                    "POST", f"/inventory_items/{item.rsplit('/', 1)[-1]}/activate", {"location_id": location}
                )
        else:
            return gid
        return self.ids[base]

    def _map(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._map(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._map(v) for v in value]
        if isinstance(value, str) and value.startswith("gid://"):
            return GID.sub(lambda m: self._map_gid(m.group(0)), value)
        if isinstance(value, str) and value in self.cursors:
            return self.cursors[value]
        if isinstance(value, str):  # a search query naming ids by number (`inventory_item_id:123`)
            return re.sub(r"\d{6,}", lambda m: self._number(m.group(0)), value)
        return value

    def _number(self, number: str) -> str:
        for kind in ("InventoryItem", "Location"):
            mapped = self.ids.get(f"gid://shopify/{kind}/{number}")
            if mapped:
                return mapped.rsplit("/", 1)[-1]
        return number

    def _learn(self, recorded: Any, got: Any) -> None:
        if isinstance(recorded, str) and isinstance(got, str) and GID.fullmatch(recorded) and GID.fullmatch(got):
            level, mapped = LEVEL.match(recorded), LEVEL.match(got)
            if level and mapped:  # a level is its location and item; its own number is its location's
                self.level_numbers.setdefault(level.group(1), mapped.group(1))
                return
            self.ids.setdefault(recorded.split("?")[0], got.split("?")[0])
        elif isinstance(recorded, dict) and isinstance(got, dict):
            for k, v in recorded.items():
                if k in ("cursor", "startCursor", "endCursor") and isinstance(v, str) and isinstance(got.get(k), str):
                    self.cursors.setdefault(v, got[k])
                self._learn(v, got.get(k))
        elif isinstance(recorded, list) and isinstance(got, list):
            for a, b in zip(recorded, got, strict=False):
                self._learn(a, b)

    def run(self) -> None:
        schema = load_schema()
        for key, step in _ordered(_steps(self.data)):
            recorded = _body(step["response"])
            errors = recorded.get("errors") or []
            if any((e.get("extensions") or {}).get("code") in ("undefinedField", "INVALID_VARIABLE") for e in errors):
                continue  # the generic validation errors, not these mutations' rules
            data = recorded.get("data") or {}
            query = step.get("query")
            roots = _roots(query) if query else list(data) or [p for e in errors for p in e.get("path", [])[:1]]
            if roots == ["productSet"]:
                self._product_set(step["variables"], data)
                continue
            if roots == ["productCreate"] and (data["productCreate"] or {}).get("product"):
                self._product_create(data["productCreate"]["product"])
                continue
            if roots == ["productVariantsBulkUpdate"]:
                self._track(step["variables"])
                continue
            if not roots or not set(roots) <= set(ARGUMENTS) | (READS | APP_SETUP if query else set()):
                continue
            variables = dict(step.get("variables") or {})
            if query is None:
                if len(roots) != 1 or roots[0] not in ARGUMENTS:
                    continue
                directive = "idempotencyKey" in variables and not any(
                    "@idempotent directive is required" in e.get("message", "") for e in errors
                )
                if not directive:
                    variables.pop("idempotencyKey", None)
                query = _rebuild(roots[0], variables, data, directive)
            elif validate(schema, parse(query)):
                continue  # a read selecting what the sandbox does not serve
            version = re.search(r"(20\d\d)(0[1-9]|1[0-2])$", key)
            url_version = f"{version.group(1)}-{version.group(2)}" if version else self.version
            response = self.h.client.post(
                f"/store/{self.h.shop}/admin/api/{url_version}/graphql.json",
                json={"query": query, "variables": self._map(variables)},
                headers={"X-Shopify-Access-Token": self.h.token if set(roots) & APP_SETUP else self.h.merchant_token},
            )
            got = response.get_json()
            self.compared += 1
            want = [(e.get("message"), (e.get("extensions") or {}).get("code")) for e in errors]
            have = [(e.get("message"), (e.get("extensions") or {}).get("code")) for e in got.get("errors") or []]
            if want != have:
                self.mismatches.append(f"{key}: errors {want} != {have}")
            for path, want_value, got_value in _differences(_mask(recorded.get("data")), _mask(got.get("data"))):
                self.mismatches.append(f"{key}: {path}: recorded {want_value!r}, sandbox {got_value!r}")
            self._learn(recorded.get("data"), got.get("data"))


@pytest.mark.parametrize("name", CAPTURES)
def test_recorded_location_and_inventory_answers(name: str, h: Any) -> None:
    capture = Capture(name, h)
    capture.run()
    assert capture.compared, "nothing of the capture was replayed"
    assert not capture.mismatches, "\n".join(capture.mismatches)
