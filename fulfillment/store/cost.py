"""A static estimate of what a GraphQL document will cost against the store's rate limit.

The store charges each request from a per-shop leaky bucket and refuses a request whose *requested* cost
the bucket cannot cover. Knowing that cost before sending lets the throttle budget wait locally instead of
spending a round trip on a THROTTLED answer. The rules are the store's, as its recorded answers show them,
applied to the document alone:

- a scalar or enum field costs 0 (a leaf: no selection set);
- an object field costs 1 plus the cost of its selection; a list of objects costs as one object, even a paged
  plain list such as `trackingInfo(first: 5)` or `fulfillments(first: 5)`;
- a field whose selection holds `nodes` or `edges` is a connection: 2 + multiplier(first or last) x the cost
  of one node (what `nodes { ... }` and `edges { node { ... } }` select, both when both are there); the
  multiplier grows with the logarithm of the page, floor(2 ln n) and at least 1 (10 -> 4, 50 -> 7,
  100 -> 9, 250 -> 11); `pageInfo` and `cursor` are part of the 2;
- each mutation root field costs 10 (`fulfillmentTrackingInfoUpdate` 50) plus what its payload's objects
  select: the payload's own objects (`fulfillmentOrder`, `userErrors`) are free.

Without the schema an unknown `first:` variable is taken at its default, else at the store's page maximum, so
the estimate errs high: over-reserving costs a short wait, under-reserving costs a refused request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    parse,
    value_from_ast_untyped,
)

MUTATION_COST = 10
# Mutations the store prices apart from the flat 10.
MUTATION_COSTS = {"fulfillmentTrackingInfoUpdate": 50, "fulfillmentTrackingInfoUpdateV2": 50}
CONNECTION_BASE_COST = 2
# The store caps a page at 250 items; an unresolvable `first:` is assumed to ask for all of them.
MAX_PAGE_SIZE = 250

_PAGING_ARGUMENTS = ("first", "last")


def multiplier(page_size: int) -> int:
    """How many nodes the store prices a connection page of `page_size` at: floor(2 ln n), at least 1."""
    if page_size <= 0:
        return 0
    return max(1, math.floor(2 * math.log(page_size)))


@lru_cache(maxsize=256)
def parse_document(document: str) -> DocumentNode:
    """Parse once per distinct document: the app sends the same few dozen documents over and over."""
    return parse(document)


def operation_of(document: DocumentNode, operation_name: str | None = None) -> OperationDefinitionNode:
    """The operation to run: the named one, or the only one in the document."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [op for op in operations if op.name is not None and op.name.value == operation_name]
    if len(operations) != 1:
        raise ValueError(f"expected exactly one operation{f' named {operation_name}' if operation_name else ''}")
    return operations[0]


def estimate_cost(
    document: str, variables: Mapping[str, Any] | None = None, *, operation_name: str | None = None
) -> int:
    """The requested cost of running `document` with `variables`, by the store's static rules."""
    parsed = parse_document(document)
    operation = operation_of(parsed, operation_name)
    fragments = {d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)}
    resolved = _variable_values(operation, variables or {})
    estimator = _Estimator(fragments, resolved)
    if operation.operation is OperationType.MUTATION:
        return sum(
            MUTATION_COSTS.get(field.name.value, MUTATION_COST) + estimator.payload_cost(field.selection_set)
            for field in estimator.fields(operation.selection_set)
        )
    # The root object itself is free; each root field is priced by the ordinary rules.
    return estimator.selection_cost(operation.selection_set)


def _variable_values(operation: OperationDefinitionNode, given: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name in given:
            values[name] = given[name]
        elif definition.default_value is not None:
            values[name] = value_from_ast_untyped(definition.default_value)
    return values


class _Estimator:
    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]):
        self._fragments = fragments
        self._variables = variables

    def fields(self, selection_set: SelectionSetNode | None) -> list[FieldNode]:
        """The fields of a selection set with fragments inlined (a type condition cannot be checked
        without the schema, so every fragment is assumed to apply: an over-estimate at worst)."""
        if selection_set is None:
            return []
        found: list[FieldNode] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                found.extend(self.fields(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments.get(selection.name.value)
                if fragment is None:
                    raise ValueError(f"unknown fragment {selection.name.value}")
                found.extend(self.fields(fragment.selection_set))
        return found

    def selection_cost(self, selection_set: SelectionSetNode | None) -> int:
        return sum(self.field_cost(field) for field in self.fields(selection_set))

    def payload_cost(self, selection_set: SelectionSetNode | None) -> int:
        """A mutation payload: its own objects are free, what they select is not."""
        return sum(
            self.field_cost(field) if self._is_connection(field) else self.selection_cost(field.selection_set)
            for field in self.fields(selection_set)
        )

    def field_cost(self, field: FieldNode) -> int:
        if field.selection_set is None:
            return 0
        if not self._is_connection(field):
            return 1 + self.selection_cost(field.selection_set)
        page_size = self._page_size(field) or 0
        return CONNECTION_BASE_COST + multiplier(page_size) * self._node_cost(field)

    def _is_connection(self, field: FieldNode) -> bool:
        return bool({f.name.value for f in self.fields(field.selection_set)} & {"nodes", "edges"})

    def _node_cost(self, connection: FieldNode) -> int:
        """The cost of one node: `nodes` and `edges { node }` are each charged when both are selected."""
        total = 0
        for f in self.fields(connection.selection_set):
            if f.name.value == "nodes":
                total += 1 + self.selection_cost(f.selection_set)
            elif f.name.value == "edges":
                for edge_field in self.fields(f.selection_set):
                    if edge_field.name.value == "node":
                        total += 1 + self.selection_cost(edge_field.selection_set)
        return total

    def _page_size(self, field: FieldNode) -> int | None:
        for argument in field.arguments or ():
            if argument.name.value not in _PAGING_ARGUMENTS:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                if value.name.value not in self._variables:
                    return MAX_PAGE_SIZE
                resolved = self._variables[value.name.value]
                if resolved is None:
                    continue  # given as null: as if absent, the other paging argument sizes the page
                return int(resolved)
            return MAX_PAGE_SIZE
        return None


__all__ = ["MUTATION_COST", "estimate_cost", "multiplier", "operation_of", "parse_document"]
