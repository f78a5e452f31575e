"""Query cost and the leaky bucket, as the store prices a document (rules read off its recorded answers):

- scalar and enum fields cost 0, `__typename` too; a few fields have a price of their own (`FIELD_COSTS`);
- an object or interface field costs 1 plus its selection (fragments on other types of an abstract field: the
  dearest one); introspection (`__type`, `__schema` and their objects) is priced the same way; money objects
  (`MoneyBag`, `MoneyV2`) and union-typed fields (a webhook's `endpoint`) cost only their selection;
- a plain list of objects costs as one object, whatever its `first`;
- a connection costs 2 plus `multiplier(first or last)` times one node, where one node is what `nodes` and
  `edges { node }` select (both, when both are selected; `pageInfo` and `cursor` are free). The multiplier grows
  with the logarithm of the page: floor(2 ln n), at least 1 (1 -> 1, 5 -> 3, 10 -> 4, 20 -> 5, 50 -> 7,
  100 -> 9, 250 -> 11);
- a mutation root field costs 10 (`fulfillmentTrackingInfoUpdate` 50) plus its payload selection, where the
  payload's own objects (`fulfillmentOrder`, `userErrors`, ...) are free and only what they select costs.

The requested cost is computed from the document before execution. The actual cost applies the same rules to
the answer, capped at the requested cost:
- a connection that returned nodes costs 2 + ceil(multiplier(first) x (what its returned nodes cost) / first): a
  full page is charged as requested, a short page in proportion to what it holds;
- an empty connection costs 2 + multiplier(first): the page was looked up, each step of it at one node object;
  an empty connection within one of several nodes of another page costs its 2;
- a connection within the only node another page returned is looked up once, as at the top, and costs at least
  2 + multiplier(first) (empty or not; the proportional charge when that is more);
- a null object was still resolved and costs its 1 (its selection nothing); a root field that found nothing
  costs 1 too, whatever it asked for below; in a mutation payload a null object costs nothing, as the payload's
  objects do; a null connection costs nothing;
- an empty plain list costs its 1, as a full one does.
These rules match about five in six recorded answers (all but a few of the reads a fulfillment-service app
sends); the others are a point or two off, from work the answer does not show.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_composite_type,
    value_from_ast_untyped,
)

MAX_QUERY_COST = 1000
MUTATION_COST = 10
CONNECTION_COST = 2
OBJECT_COST = 1
# Fields the store prices apart from the rules above (type, field) -> cost.
FIELD_COSTS: dict[tuple[str, str], int] = {
    ("Mutation", "fulfillmentTrackingInfoUpdate"): 50,
    ("Mutation", "fulfillmentTrackingInfoUpdateV2"): 50,
    ("Mutation", "flowTriggerReceive"): 1,
    ("Location", "hasUnfulfilledOrders"): 1,
}
FREE_TYPES = frozenset({"MoneyBag", "MoneyV2"})
INTROSPECTION_TYPES = {"__type": "__Type", "__schema": "__Schema"}


def _free(type_: GraphQLNamedType) -> bool:
    """Money objects, and unions (a webhook's `endpoint`), are priced at 0 of their own."""
    return type_.name in FREE_TYPES or isinstance(type_, GraphQLUnionType)


def multiplier(page: int) -> int:
    """How many nodes of a connection a page of `page` is priced at."""
    if page <= 0:
        return 0
    return max(1, math.floor(2 * math.log(page)))


def _is_list(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _is_connection(type_: GraphQLNamedType) -> bool:
    return (
        isinstance(type_, GraphQLObjectType)
        and type_.name.endswith("Connection")
        and bool({"nodes", "edges"} & set(type_.fields))
    )


class _Pricer:
    """Walks one operation of a validated document, with or without its answer."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None) -> None:
        self.schema = schema
        self.variables = dict(variables or {})
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.pages: list[int] = []  # how many nodes each page the answer being priced lies within returned

    def with_defaults(self, operation: OperationDefinitionNode) -> None:
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and definition.default_value is not None:
                self.variables[name] = value_from_ast_untyped(definition.default_value)

    def typed_fields(
        self, selection_set: SelectionSetNode | None, type_: GraphQLNamedType
    ) -> Iterator[tuple[FieldNode, GraphQLNamedType]]:
        """The field nodes of a selection, fragments expanded, each with the type it is selected on."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, type_
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else type_
                yield from self.typed_fields(selection.selection_set, inner or type_)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    inner = self.schema.get_type(fragment.type_condition.name.value) or type_
                    yield from self.typed_fields(fragment.selection_set, inner)

    def field_type(self, field: FieldNode, parent: GraphQLNamedType) -> tuple[Any, GraphQLNamedType] | None:
        name = field.name.value
        if name in INTROSPECTION_TYPES:
            introspection = self.schema.get_type(INTROSPECTION_TYPES[name])
            return (introspection, introspection) if introspection is not None else None
        fields = getattr(parent, "fields", None)
        definition = fields.get(name) if fields else None
        if definition is None:
            return None
        return definition.type, get_named_type(definition.type)

    def page(self, field: FieldNode) -> int:
        for name in ("first", "last"):
            for argument in field.arguments or ():
                if argument.name.value == name:
                    value = value_from_ast_untyped(argument.value, self.variables)
                    if isinstance(value, int) and not isinstance(value, bool):
                        return value
                    # A null `first` is as if absent: `last` sizes the page (`first: $first, last: $last`).
        return 0

    def node_selections(
        self, field: FieldNode, connection: GraphQLObjectType
    ) -> Iterator[tuple[str, str | None, SelectionSetNode | None, GraphQLNamedType]]:
        """(key of `nodes`/`edges`, key of `node` within an edge or None, node selection, node type)."""
        for sub, _ in self.typed_fields(field.selection_set, connection):
            key = (sub.alias or sub.name).value
            if sub.name.value == "nodes":
                yield key, None, sub.selection_set, get_named_type(connection.fields["nodes"].type)
            elif sub.name.value == "edges":
                edge = get_named_type(connection.fields["edges"].type)
                assert isinstance(edge, GraphQLObjectType)
                for inner, _ in self.typed_fields(sub.selection_set, edge):
                    if inner.name.value == "node":
                        node_key = (inner.alias or inner.name).value
                        yield key, node_key, inner.selection_set, get_named_type(edge.fields["node"].type)

    # -- requested ------------------------------------------------------------------------------------------

    def operation_cost(self, operation: OperationDefinitionNode) -> int:
        if operation.operation == OperationType.MUTATION:
            root = self.schema.mutation_type
            assert root is not None
            return sum(
                self.root_mutation_price(field) + self.selection_cost(field.selection_set, named, payload=True)
                for field, named in self.mutation_fields(operation, root)
            )
        root_type = self.schema.query_type
        assert root_type is not None
        return self.selection_cost(operation.selection_set, root_type)

    def mutation_fields(
        self, operation: OperationDefinitionNode, root: GraphQLObjectType
    ) -> Iterator[tuple[FieldNode, GraphQLNamedType]]:
        for field, _ in self.typed_fields(operation.selection_set, root):
            definition = root.fields.get(field.name.value)
            if definition is not None:
                yield field, get_named_type(definition.type)

    def root_mutation_price(self, field: FieldNode) -> int:
        return FIELD_COSTS.get(("Mutation", field.name.value), MUTATION_COST)

    def selection_cost(
        self, selection_set: SelectionSetNode | None, type_: GraphQLNamedType, payload: bool = False
    ) -> int:
        """Fields on `type_` itself add up; fragments on other (possible) types: the dearest one."""
        own, others = 0, {}
        for field, parent in self.typed_fields(selection_set, type_):
            cost = self.field_cost(field, parent, payload)
            if parent is type_:
                own += cost
            else:
                others[parent.name] = others.get(parent.name, 0) + cost
        return own + max(others.values(), default=0)

    def field_cost(self, field: FieldNode, parent: GraphQLNamedType, payload: bool = False) -> int:
        found = self.field_type(field, parent)
        if found is None:
            return 0
        _, named = found
        priced = FIELD_COSTS.get((parent.name, field.name.value))
        if not is_composite_type(named):
            return priced or 0
        if _is_connection(named):
            assert isinstance(named, GraphQLObjectType)
            node = sum(
                OBJECT_COST + self.selection_cost(selection, node_type)
                for _, _, selection, node_type in self.node_selections(field, named)
            )
            base = CONNECTION_COST if priced is None else priced
            return base + multiplier(self.page(field)) * node
        base = 0 if payload or _free(named) else OBJECT_COST
        return (base if priced is None else priced) + self.selection_cost(field.selection_set, named)

    # -- actual -----------------------------------------------------------------------------------------------

    def operation_actual(self, operation: OperationDefinitionNode, data: Mapping[str, Any] | None) -> int:
        data = data or {}
        if operation.operation == OperationType.MUTATION:
            root = self.schema.mutation_type
            assert root is not None
            total = 0
            for field, named in self.mutation_fields(operation, root):
                # A mutation is charged its price even when refused (a null payload).
                total += self.root_mutation_price(field)
                value = data.get((field.alias or field.name).value)
                if value is not None:
                    total += self.selection_actual(field.selection_set, named, value, payload=True)
            return total
        root_type = self.schema.query_type
        assert root_type is not None
        total = 0
        for field, parent in self.typed_fields(operation.selection_set, root_type):
            key = (field.alias or field.name).value
            if key not in data:
                continue
            if data[key] is None:
                # A root field that found nothing was still looked up: one object, whatever it asked for below.
                total += OBJECT_COST if self.field_type(field, parent) is not None else 0
            else:
                total += self.field_actual(field, parent, data[key], payload=False)
        return total

    def selection_actual(
        self, selection_set: SelectionSetNode | None, type_: GraphQLNamedType, value: Any, payload: bool = False
    ) -> int:
        if not isinstance(value, Mapping):
            return 0
        total = 0
        for field, parent in self.typed_fields(selection_set, type_):
            key = (field.alias or field.name).value
            if key in value:
                total += self.field_actual(field, parent, value[key], payload)
        return total

    def field_actual(self, field: FieldNode, parent: GraphQLNamedType, value: Any, payload: bool) -> int:
        found = self.field_type(field, parent)
        if found is None:
            return 0
        type_, named = found
        priced = FIELD_COSTS.get((parent.name, field.name.value))
        if not is_composite_type(named):
            return priced or 0
        if value is None:
            # A null object was still resolved: its own price, nothing of its selection. A payload's objects and
            # a connection have no price of their own.
            if payload or _free(named) or _is_connection(named):
                return 0
            return OBJECT_COST if priced is None else priced
        if _is_connection(named) and isinstance(value, Mapping):
            assert isinstance(named, GraphQLObjectType)
            returned_nodes = [
                (selection, node_type, node)
                for key, node_key, selection, node_type in self.node_selections(field, named)
                for item in value.get(key) or ()
                if (node := item.get(node_key) if node_key is not None and isinstance(item, Mapping) else item)
                is not None
            ]
            self.pages.append(len(returned_nodes))
            nodes = sum(
                OBJECT_COST + self.selection_actual(selection, node_type, node)
                for selection, node_type, node in returned_nodes
            )
            self.pages.pop()
            return (CONNECTION_COST if priced is None else priced) + self.page_charge(
                self.page(field), len(returned_nodes), nodes
            )
        base = 0 if payload or _free(named) else OBJECT_COST
        base = base if priced is None else priced
        if isinstance(value, list):
            # A list is priced as one object: the dearest of its elements' selections, once.
            return base + max(
                (self.selection_actual(field.selection_set, named, item) for item in value if item is not None),
                default=0,
            )
        return base + self.selection_actual(field.selection_set, named, value)

    def page_charge(self, page: int, returned: int, nodes: int) -> int:
        """What a page's nodes are charged, given how many it returned and what they cost together."""
        if page <= 0:
            return nodes
        proportional = math.ceil(multiplier(page) * nodes / page)
        if self.pages and self.pages[-1] == 1:
            # Within the only node another page returned, a page is looked up once, as at the top: at least one
            # node object per step of its multiplier, empty or not.
            return max(multiplier(page) * OBJECT_COST, proportional)
        if returned == 0:
            # An empty page is charged one node object per step of its multiplier; within one of several nodes
            # of another page it costs only its 2.
            return 0 if self.pages else multiplier(page) * OBJECT_COST
        # The page is charged at its multiplier, in proportion to how full it came back.
        return proportional


def requested_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
) -> int:
    """The cost the bucket must hold before the operation runs."""
    pricer = _Pricer(schema, document, variables)
    pricer.with_defaults(operation)
    return pricer.operation_cost(operation)


def actual_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
) -> int:
    """What the answer cost, by the same rules applied to what it holds (capped at the requested cost)."""
    pricer = _Pricer(schema, document, variables)
    pricer.with_defaults(operation)
    return min(pricer.operation_actual(operation, data), pricer.operation_cost(operation))


# ---------------------------------------------------------------------------------------------------------
# The leaky bucket
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: int
    currently_available: int
    restore_rate: int

    def as_graphql(self) -> dict[str, int]:
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": self.currently_available,
            "restoreRate": self.restore_rate,
        }


class LeakyBucket:
    """Points available to one app on one shop; refills at `restore_rate` points per second up to `maximum`."""

    def __init__(self, maximum: int, restore_rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = maximum
        self.restore_rate = restore_rate
        self._clock = clock
        self._available = float(maximum)
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        moment = self._clock()
        self._available = min(float(self.maximum), self._available + (moment - self._at) * self.restore_rate)
        self._at = moment

    def status(self) -> ThrottleStatus:
        with self._lock:
            self._refill()
            return ThrottleStatus(self.maximum, int(self._available), self.restore_rate)

    def take(self, cost: int) -> bool:
        """Reserve `cost` points if the bucket holds them; False (nothing taken) otherwise."""
        with self._lock:
            self._refill()
            if self._available < cost:
                return False
            self._available -= cost
            return True

    def refund(self, points: int) -> None:
        """Give back what was reserved but not spent (requested minus actual)."""
        if points <= 0:
            return
        with self._lock:
            self._refill()
            self._available = min(float(self.maximum), self._available + points)
