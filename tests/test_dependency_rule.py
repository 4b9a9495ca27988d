"""The dependency rule's contracts (pyproject.toml, checked by `lint-imports` in CI) cover every package.

A package added under cluster/ and not named in the contracts would be in no layer, and the
domain's contract would not stop it importing Ray: this fails until it is listed.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPPER_LAYERS = ["cluster.cli", "cluster.loadtesting", "cluster.demo", "cluster.api", "cluster.application", "actors"]


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["type"] + ":" + contract["name"]: contract for contract in config["contracts"]}


def domain_modules() -> set[str]:
    """Every package and top-level module under cluster/ that is not one of the upper layers."""
    children = {
        f"cluster.{path.stem}"
        for path in (ROOT / "cluster").iterdir()
        if (path.is_dir() and (path / "__init__.py").is_file()) or (path.suffix == ".py" and path.stem != "__init__")
    }
    return children - set(UPPER_LAYERS)


def test_the_layers_are_the_upper_layers_then_every_domain_package():
    (layers,) = [c for key, c in contracts().items() if key.startswith("layers:")]
    assert layers["layers"][:-1] == UPPER_LAYERS
    assert set(layers["layers"][-1].split(" : ")) == domain_modules()


def test_every_domain_package_is_forbidden_ray_actors_the_upper_layers_loadtest_and_tests():
    (contract,) = [
        c
        for key, c in contracts().items()
        if key.startswith("forbidden:") and set(c["source_modules"]) == domain_modules()
    ]
    assert set(contract["forbidden_modules"]) >= {"ray", "loadtest", "tests", *UPPER_LAYERS}
    assert not contract.get("allow_indirect_imports", False) and not contract.get("ignore_imports")
