"""Reading YAML safely: unique keys, safe constructors only, and limits on size and aliases."""

from __future__ import annotations

import yaml

from ..errors import InstanceError, Problem
from .limits import MAX_YAML_NODES
from .messages import _repr


class _YAMLLimitError(yaml.composer.ComposerError):
    """The document is too big once aliases are expanded, or refers to itself."""


try:  # libyaml reads the events, ten times faster than pure Python
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

if _CParser is not None:

    class _SafeBase(_CParser, yaml.composer.Composer, yaml.constructor.SafeConstructor,
                    yaml.resolver.Resolver):
        def __init__(self, stream):
            _CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml
    _SafeBase = yaml.SafeLoader


class _UniqueKeyLoader(_SafeBase):
    """Safe YAML loader that rejects duplicate keys (a silent overwrite hides typos).

    Only the safe constructors exist (no Python tags).  Nodes are composed in
    Python from the parser's events so that a document of more than
    :data:`MAX_YAML_NODES` values is stopped while it is read, and one whose
    aliases expand beyond that (a "billion laughs" bomb) or refer to a node
    that contains them is rejected before any object is built.  A scalar that
    cannot be read as its tag (``!!int abc``, ``2026-02-30``) is a YAML error
    with its line rather than a Python error.
    """

    _nodes = 0

    def get_single_node(self):
        return yaml.composer.Composer.get_single_node(self)

    def compose_node(self, parent, index):
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise _YAMLLimitError(None, None, f"the document has more than {MAX_YAML_NODES:,} values",
                                  self.peek_event().start_mark)
        return yaml.composer.Composer.compose_node(self, parent, index)

    def compose_document(self):
        node = yaml.composer.Composer.compose_document(self)
        _check_expansion(node)
        return node

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError):
            kind = str(node.tag).rsplit(":", 1)[-1]
            shown = _repr(node.value) if isinstance(node, yaml.ScalarNode) else "the value"
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown} as {kind}", node.start_mark
            ) from None


def _check_expansion(root) -> None:
    """Count the values of a composed document with aliases expanded, without expanding them."""
    sizes: dict[int, int] = {}  # id(node) -> values in its expanded subtree
    open_nodes: set[int] = set()  # nodes being counted (ancestors of the current one)
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        if finished:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_YAML_NODES:
                raise _YAMLLimitError(
                    None, None,
                    f"the document has more than {MAX_YAML_NODES:,} values once its aliases are "
                    "expanded (an alias bomb?)", node.start_mark)
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _YAMLLimitError(None, None, "an alias refers to a node that contains it "
                                  "(a recursive document)", node.start_mark)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            continue  # the default constructor reports unhashable keys
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {_repr(key)}",
                key_node.start_mark,
            )
        seen[key] = True
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)



def parse_yaml(text: str, name: str = "instance") -> dict:
    """Parse YAML text into a mapping, turning syntax errors into an InstanceError with the line."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - safe constructors only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = getattr(exc, "problem", None) or str(exc)
        ctx = getattr(exc, "context", None)
        if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
            where = f"line {text[: exc.position].count(chr(10)) + 1}: "
            what = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        if isinstance(exc, _YAMLLimitError):
            raise InstanceError([Problem("", f"{where}{what}")], name) from None
        msg = f"{where}not valid YAML: {what}" + (f" ({ctx})" if ctx else "")
        raise InstanceError([Problem("", msg)], name) from None
    except RecursionError:
        raise InstanceError([Problem("", "YAML nesting is too deep")], name) from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        # a constructor failing outside construct_object (not expected; never a traceback)
        raise InstanceError([Problem("", f"not valid YAML: {type(exc).__name__}: {exc}")], name) from None
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else type(raw).__name__
        raise InstanceError(
            [Problem("", f"line 1: the file must be a YAML mapping of sections, got {kind}")], name
        )
    return raw
