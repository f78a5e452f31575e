"""Refusals before execution, worded as the store words them.

The store runs graphql-ruby: a document that fails validation, or variables that do not fit their declared
types, are answered with HTTP 200, `errors` only (no `data`, no cost extension) and the error codes and messages of
that library (`undefinedField`, `missingRequiredArguments`, `argumentLiteralsIncompatible`, `INVALID_VARIABLE`,
...). graphql-core finds the same faults; this module rewords what it reports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLSchema,
    ListValueNode,
    Node,
    NonNullTypeNode,
    ObjectValueNode,
    OperationDefinitionNode,
    ValueNode,
    VariableDefinitionNode,
    get_named_type,
    print_ast,
    type_from_ast,
    value_from_ast_untyped,
    visit,
)
from graphql.language import Visitor, get_location
from graphql.utilities import validate_input_value

StoreError = dict[str, Any]


def _error(message: str, code: str | None, error: GraphQLError | None = None, **extensions: Any) -> StoreError:
    out: StoreError = {"message": message}
    if error is not None and error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if code is not None:
        out["extensions"] = {"code": code, **extensions}
    return out


class _Arguments(Visitor):
    """Every value node inside a field's argument -> (argument, field), to name them in literal errors."""

    def __init__(self) -> None:
        super().__init__()
        self.owner: dict[int, tuple[ArgumentNode, FieldNode]] = {}

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        for argument in node.arguments or ():
            self._mark(argument.value, argument, node)

    def _mark(self, value: ValueNode, argument: ArgumentNode, field: FieldNode) -> None:
        self.owner[id(value)] = (argument, field)
        if isinstance(value, ListValueNode):
            for item in value.values:
                self._mark(item, argument, field)
        elif isinstance(value, ObjectValueNode):
            for item in value.fields:
                self._mark(item.value, argument, field)


def _argument_type(schema: GraphQLSchema, field: FieldNode, argument: str) -> str | None:
    """The declared type of `argument` on `field`, found by the field's name on any type that has it."""
    for type_ in schema.type_map.values():
        fields = getattr(type_, "fields", None)
        definition = fields.get(field.name.value) if isinstance(fields, Mapping) else None
        args = getattr(definition, "args", None)
        if args and argument in args:
            return str(args[argument].type)
    return None


_RULES: list[tuple[re.Pattern[str], Callable[..., StoreError]]] = []


def _rule(pattern: str) -> Callable[[Callable[..., StoreError]], Callable[..., StoreError]]:
    def register(build: Callable[..., StoreError]) -> Callable[..., StoreError]:
        _RULES.append((re.compile(pattern), build))
        return build

    return register


@_rule(r"^Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'")
def _undefined_field(error: GraphQLError, m: re.Match[str], **_: Any) -> StoreError:
    message = f"Field '{m['field']}' doesn't exist on type '{m['type']}'"
    return _error(message, "undefinedField", error, typeName=m["type"], fieldName=m["field"])


@_rule(r"^Unknown argument '(?P<argument>\w+)' on field '\w+\.(?P<field>\w+)'")
def _argument_not_accepted(error: GraphQLError, m: re.Match[str], **_: Any) -> StoreError:
    message = f"Field '{m['field']}' doesn't accept argument '{m['argument']}'"
    return _error(message, "argumentNotAccepted", error, name=m["field"], typeName="Field", argumentName=m["argument"])


@_rule(r"^Unknown directive '@(?P<directive>\w+)'")
def _undefined_directive(error: GraphQLError, m: re.Match[str], **_: Any) -> StoreError:
    return _error(f"Directive @{m['directive']} is not defined", "undefinedDirective", error)


@_rule(r"^Variable '\$(?P<variable>\w+)' is never used(?: in operation '(?P<operation>\w+)')?")
def _variable_not_used(error: GraphQLError, m: re.Match[str], **_: Any) -> StoreError:
    operation = m["operation"] or "anonymous query"
    message = f"Variable ${m['variable']} is declared by {operation} but not used"
    return _error(message, "variableNotUsed", error, variableName=m["variable"])


@_rule(r"^Variable '\$(?P<variable>\w+)' is not defined(?: by operation '(?P<operation>\w+)')?")
def _variable_not_defined(error: GraphQLError, m: re.Match[str], **_: Any) -> StoreError:
    operation = m["operation"] or "anonymous query"
    message = f"Variable ${m['variable']} is used by {operation} but not declared"
    return _error(message, "undefinedVariable", error, variableName=m["variable"])


@_rule(r"^Field '(?P<field>\w+)' of type '(?P<type>[^']+)' must have a selection of subfields")
def _missing_selection(error: GraphQLError, m: re.Match[str], **_: Any) -> StoreError:
    named = m["type"].strip("[]!")
    message = (
        f"Field must have selections (field '{m['field']}' returns {named} but has no selections."
        f" Did you mean '{m['field']} {{ ... }}'?)"
    )
    return _error(message, "selectionMismatch", error, nodeName=f"field '{m['field']}'", typeName=named)


@_rule(r"^Field '(?P<field>\w+)' must not have a selection since type '(?P<type>[^']+)' has no subfields")
def _scalar_selection(error: GraphQLError, m: re.Match[str], **_: Any) -> StoreError:
    named = m["type"].strip("[]!")
    message = f"Selections can't be made on scalars (field '{m['field']}' returns {named} but has selections)"
    return _error(message, "selectionMismatch", error, nodeName=f"field '{m['field']}'", typeName=named)


def _literal(
    error: GraphQLError, owner: Mapping[int, tuple[ArgumentNode, FieldNode]], schema: GraphQLSchema
) -> StoreError | None:
    """A literal argument value of the wrong type (graphql-core names the value node, not the argument)."""
    node: Node | None = (error.nodes or [None])[0]
    found = owner.get(id(node)) if node is not None else None
    if found is None:
        return None
    argument, field = found
    expected = _argument_type(schema, field, argument.name.value) or "?"
    message = (
        f"Argument '{argument.name.value}' on Field '{field.name.value}' has an invalid value"
        f" ({print_ast(argument.value)}). Expected type '{expected}'."
    )
    return _error(message, "argumentLiteralsIncompatible", error, typeName="Field", argumentName=argument.name.value)


_MISSING_ARGUMENT = re.compile(r"^Argument '\w+\.(?P<field>\w+)\((?P<argument>\w+):\)' of type '[^']+' is required")


def validation_errors(
    schema: GraphQLSchema, document: DocumentNode, errors: Sequence[GraphQLError]
) -> list[StoreError]:
    """graphql-core's validation errors as the store reports them (one per fault, in the document's order)."""
    arguments = _Arguments()
    visit(document, arguments)
    out: list[StoreError] = []
    missing: dict[int, StoreError] = {}  # one error per field, naming all its missing arguments
    for error in errors:
        m = _MISSING_ARGUMENT.match(error.message)
        if m:
            field_node = (error.nodes or [None])[0]
            known = missing.get(id(field_node))
            if known is not None:
                names = f"{known['extensions']['arguments']}, {m['argument']}"
                known["extensions"]["arguments"] = names
                known["message"] = f"Field '{m['field']}' is missing required arguments: {names}"
                continue
            built = _error(
                f"Field '{m['field']}' is missing required arguments: {m['argument']}",
                "missingRequiredArguments",
                error,
                className="Field",
                name=m["field"],
                arguments=m["argument"],
            )
            missing[id(field_node)] = built
            out.append(built)
            continue
        literal = _literal(error, arguments.owner, schema)
        if literal is not None:
            out.append(literal)
            continue
        for pattern, build in _RULES:
            match = pattern.match(error.message)
            if match:
                out.append(build(error, match))
                break
        else:
            out.append(_error(error.message, None, error))
    return out


# ---------------------------------------------------------------------------------------------------------
# Variables
# ---------------------------------------------------------------------------------------------------------

NOT_NULL = "Expected value to not be null"


def _explanation(schema: GraphQLSchema, path: list[Any], invalid: Any, error: GraphQLError) -> tuple[list[Any], str]:
    message = error.message
    enum = re.search(r"does not exist in '(\w+)' enum", message)
    if enum:
        type_ = schema.get_type(enum.group(1))
        values = ", ".join(type_.values) if isinstance(type_, GraphQLEnumType) else ""
        return path, f'Expected "{invalid}" to be one of: {values}'
    if "not to be None" in message or "to be provided" in message:
        return path, NOT_NULL
    unknown = re.search(r"type '(\w+)' not to include unknown field '(\w+)'", message)
    if unknown:
        return [*path, unknown.group(2)], f"Field is not defined on {unknown.group(1)}"
    required = re.search(r"to include required field '(\w+)'", message)
    if required:
        return [*path, required.group(1)], NOT_NULL
    return path, message


def variable_errors(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Mapping[str, Any]
) -> list[StoreError]:
    """Variables that do not fit their declared types, as the store words it (INVALID_VARIABLE)."""
    out: list[StoreError] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        type_ = type_from_ast(schema, definition.type)
        if type_ is None or get_named_type(type_) is None:
            continue
        if name not in variables and definition.default_value is not None:
            continue
        value = variables.get(name)
        problems: list[dict[str, Any]] = []
        if name not in variables and not _nullable(definition):
            problems.append({"path": [], "explanation": NOT_NULL})
        elif name in variables:
            problems = _problems(schema, value, type_)
        if not problems:
            continue
        message = f"Variable ${name} of type {print_ast(definition.type)} was provided invalid value"
        located = [p for p in problems if p["path"]]
        if located:
            message += " for " + ", ".join(
                f"{'.'.join(str(step) for step in p['path'])} ({p['explanation']})" for p in located
            )
        error: StoreError = {
            "message": message,
            "locations": [{"line": loc.line, "column": loc.column} for loc in _locations(definition)],
            "extensions": {"code": "INVALID_VARIABLE", "value": value, "problems": problems},
        }
        out.append(error)
    return out


def _problems(schema: GraphQLSchema, value: Any, type_: Any) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []

    def collect(error: GraphQLError, path: Sequence[Any]) -> None:
        invalid = value
        for step in path:
            invalid = invalid[step] if isinstance(invalid, dict | list) else None
        where, explanation = _explanation(schema, list(path), invalid, error)
        problems.append({"path": where, "explanation": explanation})

    validate_input_value(value, type_, collect, hide_suggestions=True)
    return problems


def _nullable(definition: VariableDefinitionNode) -> bool:
    return not isinstance(definition.type, NonNullTypeNode)


def _locations(node: Node) -> list[Any]:
    loc = node.loc
    if loc is None or loc.source is None:
        return []
    return [get_location(loc.source, loc.start)]


def operation_name_error(operation_name: str | None) -> StoreError:
    """No operation to run: the document has several and none was named, or none of that name."""
    if operation_name:
        return {"message": f'No operation named "{operation_name}"'}
    return {"message": "An operation name is required"}


# ---------------------------------------------------------------------------------------------------------
# Global ids
# ---------------------------------------------------------------------------------------------------------

GLOBAL_ID = re.compile(r"^gid://shopify/\w+/[^/]+$")
# Root fields that take any global id, and the argument holding it (one id, or a list of them).
_NODE_ARGUMENTS = {"node": "id", "nodes": "ids"}


def global_id_errors(operation: OperationDefinitionNode, variables: Mapping[str, Any]) -> list[StoreError]:
    """`node`/`nodes` refuse an id that is no global id at all (`gid://shopify/Product`) before running."""
    out: list[StoreError] = []
    name = f"{operation.operation.value} {operation.name.value}" if operation.name else operation.operation.value
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.name.value not in _NODE_ARGUMENTS:
            continue
        argument = _NODE_ARGUMENTS[selection.name.value]
        for node in selection.arguments or ():
            if node.name.value != argument:
                continue
            value = value_from_ast_untyped(node.value, variables)
            for id_ in value if isinstance(value, list) else [value]:
                if isinstance(id_, str) and not GLOBAL_ID.match(id_):
                    error: StoreError = {
                        "message": f"Invalid global id '{id_}'",
                        "locations": [{"line": loc.line, "column": loc.column} for loc in _locations(selection)],
                        "path": [name, selection.name.value, argument],
                        "extensions": {"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
                    }
                    out.append(error)
                    break
    return out
