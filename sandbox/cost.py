"""Query cost and the leaky bucket, after the store's published rules, kept simple:

- scalar and enum fields cost 0, `__typename` and introspection too;
- an object (or interface/union) field costs 1 plus its selection;
- a connection (a type named `...Connection`) costs 2 plus `first` (or `last`, else 10) times the cost of one node
  (the node's object 1 plus its selection, read from `edges { node }` or `nodes`; `pageInfo` and `cursor` are
  free);
- a plain list of objects costs `first` (else 1) times one element;
- fragments are added as written (an over-estimate for fragments on different types; fine for a ceiling);
- every mutation field costs 10, whatever its payload selection.

The requested cost is computed from the document before execution. The actual cost is counted while resolving
(connections by the nodes they really return) and capped at the requested cost, as the store's is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
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
DEFAULT_PAGE = 10
CONNECTION_COST = 2


class CostCalculator:
    """Requested cost of one operation of a validated document."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None) -> None:
        self.schema = schema
        self.variables = variables or {}
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def operation_cost(self, operation: OperationDefinitionNode) -> int:
        if operation.operation == OperationType.MUTATION:
            root = self.schema.mutation_type
            fields = [f for f in self._fields(operation.selection_set, root) if not f.name.value.startswith("__")]
            return MUTATION_COST * len(fields)
        return self._selection_cost(operation.selection_set, self.schema.query_type)

    def _fields(self, selection_set: SelectionSetNode | None, type_: GraphQLNamedType) -> Iterator[FieldNode]:
        """Field nodes of a selection, with fragments expanded (each with the type it applies to)."""
        for field, _ in self._typed_fields(selection_set, type_):
            yield field

    def _typed_fields(
        self, selection_set: SelectionSetNode | None, type_: GraphQLNamedType
    ) -> Iterator[tuple[FieldNode, GraphQLNamedType]]:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, type_
            elif isinstance(selection, InlineFragmentNode):
                cond = selection.type_condition
                inner = self.schema.get_type(cond.name.value) if cond else type_
                yield from self._typed_fields(selection.selection_set, inner or type_)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    inner = self.schema.get_type(fragment.type_condition.name.value) or type_
                    yield from self._typed_fields(fragment.selection_set, inner)

    def _arg(self, field: FieldNode, name: str) -> Any:
        for arg in field.arguments or ():
            if arg.name.value == name:
                return value_from_ast_untyped(arg.value, self.variables)
        return None

    def page_size(self, field: FieldNode) -> int:
        size = self._arg(field, "first") or self._arg(field, "last")
        return int(size) if isinstance(size, int) and size > 0 else DEFAULT_PAGE

    def _selection_cost(self, selection_set: SelectionSetNode | None, type_: GraphQLNamedType) -> int:
        total = 0
        for field, parent in self._typed_fields(selection_set, type_):
            name = field.name.value
            if name.startswith("__") or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
                continue
            definition = parent.fields.get(name)
            if definition is None:
                continue
            named = get_named_type(definition.type)
            if not is_composite_type(named):
                continue
            if named.name.endswith("Connection"):
                total += CONNECTION_COST + self.page_size(field) * self._node_cost(field.selection_set, named)
            elif _is_list(definition.type):
                size = self._arg(field, "first")
                count = int(size) if isinstance(size, int) and size > 0 else 1
                total += count * (1 + self._selection_cost(field.selection_set, named))
            else:
                total += 1 + self._selection_cost(field.selection_set, named)
        return total

    def _node_cost(self, selection_set: SelectionSetNode | None, connection: GraphQLNamedType) -> int:
        """Cost of one node of a connection, from `edges { node }` and/or `nodes` (the larger)."""
        best = 0
        assert isinstance(connection, GraphQLObjectType)
        for field in self._fields(selection_set, connection):
            name = field.name.value
            if name == "nodes":
                node_type = get_named_type(connection.fields["nodes"].type)
                best = max(best, 1 + self._selection_cost(field.selection_set, node_type))
            elif name == "edges":
                edge_type = get_named_type(connection.fields["edges"].type)
                assert isinstance(edge_type, GraphQLObjectType)
                for inner in self._fields(field.selection_set, edge_type):
                    if inner.name.value == "node":
                        node_type = get_named_type(edge_type.fields["node"].type)
                        best = max(best, 1 + self._selection_cost(inner.selection_set, node_type))
        return best


def _is_list(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def requested_cost(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: dict[str, Any] | None
) -> int:
    """The cost the bucket must hold before the operation runs."""
    return CostCalculator(schema, document, variables).operation_cost(operation)


class CostMeter:
    """Counts the actual cost while resolving; `charge` is called for every resolved field."""

    def __init__(self, is_mutation: bool) -> None:
        self.is_mutation = is_mutation
        self.actual = 0
        self._lock = threading.Lock()

    def charge(self, info: GraphQLResolveInfo, result: Any) -> None:
        added = self._cost(info, result)
        if added:
            with self._lock:
                self.actual += added

    def _cost(self, info: GraphQLResolveInfo, result: Any) -> int:
        if info.field_name.startswith("__"):
            return 0
        if self.is_mutation:
            # A mutation is charged a flat price; its payload selection is free.
            return MUTATION_COST if info.parent_type is info.schema.mutation_type else 0
        if result is None:
            return 0
        named = get_named_type(info.return_type)
        if not is_composite_type(named):
            return 0
        parent = info.parent_type.name
        if named.name.endswith("Connection"):
            return CONNECTION_COST
        if parent.endswith("Connection"):
            # `nodes` are the connection's nodes; `edges` and `pageInfo` are free.
            return len([r for r in result if r is not None]) if info.field_name == "nodes" else 0
        if isinstance(result, list):
            return len([r for r in result if r is not None])
        return 1


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
