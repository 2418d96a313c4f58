"""The method's private names stay inside ``ssae/``: the benchmarks, the scripts and the book's
package use only its public names (no ``from ssae.cli import _parse_value``)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = ("benchmarks", "scripts", "book/ssae_book")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str) -> list[str]:
    """``module.name`` for each underscored name of ``ssae`` that ``source`` imports or reads
    from an imported ``ssae`` module."""
    found, modules = [], {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ssae":
            for alias in node.names:
                if _private(alias.name) or any(_private(p) for p in node.module.split(".")):
                    found.append(f"{node.module}.{alias.name}")
                else:
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ssae":
                    if any(_private(p) for p in alias.name.split(".")):
                        found.append(alias.name)
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in modules:
            found.append(f"{modules[node.value.id]}.{node.attr}")
    return found


def test_the_scanner_finds_private_imports():
    assert private_uses("from ssae.cli import _parse_value") == ["ssae.cli._parse_value"]
    assert private_uses("from ssae.cli import (\n    main,\n    _parse_value as p,\n)") == ["ssae.cli._parse_value"]
    assert private_uses("from ssae import cli\ncli._parse_value('1')") == ["ssae.cli._parse_value"]
    assert private_uses("import ssae.config as C\nC._ranges") == ["ssae.config._ranges"]
    assert private_uses("from ssae_book.book import _show\nfrom ssae.cli import main\nx.__name__") == []


def test_no_private_names_of_ssae_outside_it():
    bad = []
    for folder in OUTSIDE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            bad += [f"{path.relative_to(ROOT)}: {name}" for name in private_uses(path.read_text())]
    assert not bad, "private names of ssae used outside it (make them public, with a docstring): " + "; ".join(bad)


def test_one_hardware_label():
    """ssae.hardware.hardware is the only code that names the machine: nothing else asks torch
    for the GPU's name or reads the CPU's model."""
    from ssae.hardware import hardware

    label = hardware("cpu")
    assert label.startswith("CPU: ") and " cores), torch " in label
    allowed = {"ssae/hardware.py", "ssae/precision.py"}   # precision.py reads /proc/cpuinfo's flags
    others = []
    for folder in ("ssae", *OUTSIDE):
        for path in sorted([*(ROOT / folder).rglob("*.py"), *(ROOT / folder).rglob("*.sh")]):
            rel = str(path.relative_to(ROOT))
            text = path.read_text()
            if rel not in allowed and ("get_device_name" in text or '"model name"' in text or "cpu_name" in text):
                others.append(rel)
    assert not others, f"hardware labels made outside ssae/hardware.py: {others}"
