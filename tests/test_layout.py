"""The package's layout is its architecture: no import circle at run time, small modules, few faces."""

from __future__ import annotations

import ast
from pathlib import Path

import sip_statsd

PACKAGE = Path(sip_statsd.__file__).parent
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 12


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import that runs, at module level or in a function: `if TYPE_CHECKING:` bodies left out."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the package's modules it imports at run time (ast only: nothing is executed)."""
    top = root.name
    paths = {module_name(root, p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = here[: len(here) - (node.level - 1)] if node.level else []
                stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
                targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in paths else stem for alias in node.names]
            for target in targets:
                if target.split(".")[0] != top:
                    continue
                module = target
                while module not in paths and "." in module:
                    module = module.rsplit(".", 1)[0]
                if module != name:
                    graph[name].add(module)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_package_has_no_import_circle_at_run_time():
    assert circles(import_graph(PACKAGE)) == []


def test_no_module_is_longer_than_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_at_most_12_modules_sit_at_the_top_and_the_rest_live_in_subpackages_by_concern():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    assert {"_core", "_wire", "_sip", "_assets", "_cli", "integrations"} <= {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
    }


def test_the_core_does_not_import_the_catalog_helpers_assets_or_command_line():
    """The core records and flushes; it knows SIP only through the quality thresholds its Config carries."""
    graph = import_graph(PACKAGE)
    allowed = {"sip_statsd._sip.quality", "sip_statsd._wire.transport"}
    reached = {
        target
        for name, targets in graph.items()
        if name.startswith("sip_statsd._core")
        for target in targets
        if not target.startswith("sip_statsd._core")
    }
    assert reached <= allowed, reached - allowed


def test_importing_the_package_imports_no_stack_integration_nor_the_command_line():
    graph = import_graph(PACKAGE)
    seen: set[str] = set()
    todo = ["sip_statsd"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    assert not {n for n in seen if n.startswith(("sip_statsd.integrations.", "sip_statsd._cli"))}


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_walk_finds_a_circle_through_a_function_level_import(tmp_path):
    """The checker can fail: a lazy import inside a function closes a circle as much as a top-level one."""
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a/__init__.py": "",
            "pkg/a/x.py": "from ..b.y import f\n",
            "pkg/b/__init__.py": "",
            "pkg/b/y.py": "def f():\n    from ..a import x\n    return x\n",
        },
    )
    assert circles(import_graph(root)) == [["pkg.a.x", "pkg.b.y"]]


def test_the_walk_ignores_imports_made_only_for_type_checking(tmp_path):
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/x.py": "from .y import f\n",
            "pkg/y.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import x\ndef f(): pass\n",
        },
    )
    assert circles(import_graph(root)) == []


def _classes(path: Path) -> dict[str, ast.ClassDef]:
    return {
        node.name: node for node in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(node, ast.ClassDef)
    }


CORE = PACKAGE / "_core"
# Each delivery (who sends when) is one class in a module of its own, with its own fork story.
DELIVERIES = {"ThreadDelivery": "thread.py", "HostDelivery": "host.py", "SharedDelivery": "shared_delivery.py"}


def test_the_recorder_composes_its_parts_and_inherits_none():
    """Recorder has no base class: its sending, take and deliveries are objects it holds."""
    recorder = _classes(CORE / "recorder.py")["Recorder"]
    assert recorder.bases == []
    from sip_statsd._core.config import Config
    from sip_statsd._core.host import HostDelivery
    from sip_statsd._core.recorder import Recorder
    from sip_statsd._core.sending import Sender
    from sip_statsd._core.shared_delivery import SharedDelivery
    from sip_statsd._core.taking import Take
    from sip_statsd._core.thread import ThreadDelivery

    made = Recorder(Config(backend="memory"), dormant=True)  # sends nowhere
    try:
        parts = {name: type(getattr(made, name)) for name in ("sender", "take", "flusher", "host", "shared")}
        assert parts == {
            "sender": Sender,
            "take": Take,
            "flusher": ThreadDelivery,
            "host": HostDelivery,
            "shared": SharedDelivery,
        }
    finally:
        made.close(timeout=1)


def test_each_delivery_is_its_own_module_with_its_own_fork_story():
    for name, module in DELIVERIES.items():
        classes = _classes(CORE / module)
        # Beside it, at most the Protocol that says what it uses of its recorder.
        own = [c for c, node in classes.items() if not any(getattr(b, "id", "") == "Protocol" for b in node.bases)]
        assert own == [name], (module, own)
        assert classes[name].bases == [], name
        methods = {n.name for n in classes[name].body if isinstance(n, ast.FunctionDef)}
        assert "set_mode" in methods, name
        assert methods & {"after_fork_child", "pause_for_fork"} or name == "SharedDelivery", name


def test_no_core_class_is_a_mixin_that_initialises_another_objects_attributes():
    """No `_init_<part>` methods: a part's state lives in the part's own constructor."""
    found = [
        f"{path.name}:{node.name}"
        for path in CORE.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_init_")
    ]
    assert found == []


def test_no_core_constructor_takes_more_than_8_parameters():
    wide = [
        f"{path.name}:{cls.name}"
        for path in CORE.glob("*.py")
        for cls in _classes(path).values()
        for node in cls.body
        if isinstance(node, ast.FunctionDef) and node.name == "__init__"
        if len(node.args.args) + len(node.args.kwonlyargs) - 1 > 8
    ]
    assert wide == []
