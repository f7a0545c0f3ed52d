"""The layers hold: the library never imports the orchestration above it, and there are no package cycles,
not even through imports inside functions. The foundations stay importable without torch."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sms", "baselines", "data", "eval", "analysis", "workflow")
# What each package may import (besides itself). The library is at the bottom, `workflow` on top.
ALLOWED = {
    "sms": set(),
    "baselines": {"sms"},
    "data": {"sms"},
    "eval": {"sms"},
    "analysis": {"sms", "eval", "data"},
    "workflow": {"sms", "baselines", "data", "eval", "analysis"},
}
FOUNDATIONS = ("sms.images", "sms.folders", "sms.outputs", "sms.hashing", "sms.results", "sms.weights",
               "sms.registry", "sms.paths")


def imported_packages(file: Path) -> set[str]:
    """Top-level suite packages imported anywhere in ``file`` (module level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES}
    return found


def package_graph() -> dict[str, dict[str, list[str]]]:
    graph: dict[str, dict[str, list[str]]] = {package: {} for package in PACKAGES}
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            for target in imported_packages(file) - {package}:
                graph[package].setdefault(target, []).append(str(file.relative_to(ROOT)))
    return graph


def test_no_package_imports_upward():
    graph = package_graph()
    upward = {f"{package} → {target}: {', '.join(files)}" for package, targets in graph.items()
              for target, files in targets.items() if target not in ALLOWED[package]}
    assert not upward, "imports against the layering:\n" + "\n".join(sorted(upward))


def test_the_package_graph_has_no_cycle():
    graph = {package: set(targets) for package, targets in package_graph().items()}
    done, active = set(), []

    def visit(node):
        assert node not in active, f"import cycle: {' → '.join(active[active.index(node):] + [node])}"
        if node in done:
            return
        active.append(node)
        for target in graph[node]:
            visit(target)
        active.pop()
        done.add(node)

    for package in PACKAGES:
        visit(package)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    file = tmp_path / "probe.py"
    file.write_text("def f():\n    from workflow.discovery import load_methods\n    import eval.run\n")
    assert imported_packages(file) == {"workflow", "eval"}


def test_foundations_import_without_torch():
    code = f"import sys; import {', '.join(FOUNDATIONS)}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
