"""A safe evaluator for the detectors' ``apply_if`` expressions.

An expression is Python's expression syntax, parsed by ``ast`` and walked here node
by node: nothing is ever handed to ``eval`` or ``exec``. Only what a rule over facts
needs is allowed -- literals, names of facts, ``and``/``or``/``not``, comparisons
(``==``, ``<``, ``in``...), arithmetic, ``x if c else y`` and subscripts
(``grains['os']``). Attribute access, calls, lambdas, comprehensions and any name
with a double underscore are refused when the rule is compiled, with one sentence
saying what and where, so a rule that would reach into Python never runs.

The sizes an expression may build are bounded (exponents, repeated strings and
lists), so a rule cannot make a host spend its memory or CPU.
"""

import ast
import operator

from mc_project.errors import CorpusError

MAX_LENGTH = 2000
MAX_NODES = 400
MAX_EXPONENT = 64
MAX_POWER_BASE = 2 ** 64
MAX_SEQUENCE = 10000

BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge,
           ast.In: lambda left, right: left in right, ast.NotIn: lambda left, right: left not in right}
# Named for the refusals: what a user wrote, in their words.
REFUSED = {ast.Attribute: "attribute access (use grains['key'], not grains.key)",
           ast.Call: "function calls", ast.Lambda: "lambda", ast.ListComp: "comprehensions",
           ast.SetComp: "comprehensions", ast.DictComp: "comprehensions", ast.GeneratorExp: "comprehensions",
           ast.NamedExpr: "assignment (:=)", ast.Starred: "starred expressions", ast.Await: "await",
           ast.Yield: "yield", ast.YieldFrom: "yield", ast.JoinedStr: "f-strings", ast.Slice: "slices"}
LITERAL_TYPES = (str, int, float, bool, type(None))


class ExpressionError(CorpusError):
    """An expression that is refused, or that cannot be evaluated over the facts given."""


class Expression:
    """A checked expression, ready to be evaluated over facts many times."""

    def __init__(self, text, names=None):
        self.text = text
        self.tree = compile_expression(text, names)

    def evaluate(self, facts):
        return evaluate(self.tree, facts)

    def __repr__(self):
        return "Expression({!r})".format(self.text)


def compile_expression(text, names=None):
    """The checked AST of ``text``; ``names`` (if given) are the only names it may use."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("An expression must be non-empty text.")
    if len(text) > MAX_LENGTH:
        raise ExpressionError("An expression is at most {} characters long; this one has {}.".format(
            MAX_LENGTH, len(text)))
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError("The expression is not valid syntax at column {}: {}.".format(
            exc.offset or 0, exc.msg)) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("The expression cannot be read: it is nested too deeply or holds a null "
                              "character.") from None
    count = 0
    for node in ast.walk(tree):
        count += 1
        if count > MAX_NODES:
            raise ExpressionError("The expression is too large: at most {} parts are allowed.".format(MAX_NODES))
        _check_node(node, names)
    return tree.body


def _where(node):
    return " (column {})".format(node.col_offset + 1) if hasattr(node, "col_offset") else ""


def _check_node(node, names):
    kind = type(node)
    if kind in REFUSED:
        raise ExpressionError("The expression uses {}{}, which is not allowed.".format(REFUSED[kind], _where(node)))
    if isinstance(node, ast.Name):
        if "__" in node.id:
            raise ExpressionError("The expression names {}{}: names with '__' are not allowed.".format(
                node.id, _where(node)))
        if names is not None and node.id not in names:
            raise ExpressionError("The expression names {}{}, which is no fact; facts are: {}.".format(
                node.id, _where(node), ", ".join(sorted(names))))
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, LITERAL_TYPES):
            raise ExpressionError("The expression holds a {} literal{}; only text, numbers, true/false and None "
                                  "are allowed.".format(type(node.value).__name__, _where(node)))
        if isinstance(node.value, str) and "__" in node.value and node.value.startswith("__"):
            raise ExpressionError("The expression holds the text {!r}{}: keys starting with '__' are not "
                                  "allowed.".format(node.value, _where(node)))
    elif isinstance(node, ast.BinOp) and type(node.op) not in BINARY:
        raise ExpressionError("The expression uses operator {}{}, which is not allowed.".format(
            type(node.op).__name__, _where(node)))
    elif isinstance(node, ast.UnaryOp) and type(node.op) not in UNARY:
        raise ExpressionError("The expression uses operator {}{}, which is not allowed.".format(
            type(node.op).__name__, _where(node)))
    elif isinstance(node, ast.Compare) and any(type(op) not in COMPARE for op in node.ops):
        raise ExpressionError("The expression uses 'is' or 'is not'{}; use == and !=.".format(_where(node)))
    elif not isinstance(node, ALLOWED):
        raise ExpressionError("The expression uses {}{}, which is not allowed.".format(
            type(node).__name__, _where(node)))


ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.BinOp, ast.Compare, ast.IfExp,
           ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Subscript,
           *BINARY, *UNARY, *COMPARE)


def evaluate(node, facts):
    """The value of checked ``node`` with names looked up in ``facts``."""
    try:
        return _value(node, facts)
    except ExpressionError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        raise ExpressionError("The expression cannot be evaluated: {}.".format(
            str(exc).rstrip(".") or type(exc).__name__)) from None
    except RecursionError:
        raise ExpressionError("The expression is nested too deeply to evaluate.") from None


def _value(node, facts):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in facts:
            raise ExpressionError("The expression names {}, which is no fact.".format(node.id))
        return facts[node.id]
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        result = None
        for part in node.values:
            result = _value(part, facts)
            if bool(result) != is_and:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        return UNARY[type(node.op)](_value(node.operand, facts))
    if isinstance(node, ast.BinOp):
        return _binary(node, _value(node.left, facts), _value(node.right, facts))
    if isinstance(node, ast.Compare):
        left = _value(node.left, facts)
        for op, comparator in zip(node.ops, node.comparators):
            right = _value(comparator, facts)
            if not COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _value(node.body if _value(node.test, facts) else node.orelse, facts)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(item, facts) for item in node.elts]
    if isinstance(node, ast.Set):
        return {_hashable(_value(item, facts)) for item in node.elts}
    if isinstance(node, ast.Dict):
        return {_hashable(_value(key, facts)): _value(value, facts) for key, value in zip(node.keys, node.values)}
    if isinstance(node, ast.Subscript):
        return _subscript(_value(node.value, facts), _value(node.slice, facts))
    raise ExpressionError("The expression uses {}, which is not allowed.".format(type(node).__name__))


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _subscript(container, key):
    """``container[key]``; a missing key or index is None, so a rule over a grain a host
    lacks is false rather than an error."""
    if isinstance(key, str) and key.startswith("__"):
        raise ExpressionError("Keys starting with '__' are not allowed.")
    if isinstance(container, dict):
        return container.get(_hashable(key))
    if isinstance(container, (list, tuple, str)):
        if not isinstance(key, int) or isinstance(key, bool):
            raise ExpressionError("A list or text is indexed by a whole number, not {!r}.".format(key))
        return container[key] if -len(container) <= key < len(container) else None
    if container is None:
        return None
    raise ExpressionError("A {} cannot be indexed.".format(type(container).__name__))


def _size(value):
    return len(value) if isinstance(value, (str, list, tuple)) else 0


def _binary(node, left, right):
    op = type(node.op)
    if op is ast.Pow:
        if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise ExpressionError("Exponents above {} are not allowed (this one is {}).".format(MAX_EXPONENT, right))
        if isinstance(left, (int, float)) and abs(left) > MAX_POWER_BASE:
            raise ExpressionError("The base of a power is at most 2**64.")
    if op is ast.Mult:
        for sequence, times in ((left, right), (right, left)):
            if _size(sequence) and isinstance(times, int) and _size(sequence) * max(times, 0) > MAX_SEQUENCE:
                raise ExpressionError("Repeating text or a list beyond {} items is not allowed.".format(
                    MAX_SEQUENCE))
    if op is ast.Add and _size(left) + _size(right) > MAX_SEQUENCE:
        raise ExpressionError("Joining text or lists beyond {} items is not allowed.".format(MAX_SEQUENCE))
    return BINARY[op](left, right)
