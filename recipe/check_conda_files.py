"""Checks environment.yml and recipe/recipe.yaml without conda.

    python recipe/check_conda_files.py [--render] [--pinning DIR/conda_build_config.yaml]

- both files parse as YAML; environment.yml uses the conda-forge channel only;
- every dependency of pyproject.toml (run, build-system, test extras) is in environment.yml with the same
  version bounds, under its conda-forge name; the recipe's run requirements are pyproject's run
  dependencies and its host requirements have the build-system ones;
- with --render (needs `pip install py-rattler-build`): rattler-build renders the recipe, as
  `rattler-build build --render-only` does: variants for linux-64, none (skipped) for osx-arm64 and
  win-64. --pinning uses conda-forge's global pinning (conda-forge-pinning-feedstock's
  recipe/conda_build_config.yaml; the file must keep that name) for the variants, else Python
  3.10 and 3.12 only.

Nothing here solves an environment or builds a package: that needs conda-forge's channel.
Needs PyYAML; exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
# PyPI name -> conda-forge name, where they differ (checked against the feedstocks).
CONDA_NAME = {"matplotlib": "matplotlib-base", "playwright": "playwright-python"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(.*?)\s*$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(requirement: str) -> tuple[str, str]:
    """('name', 'bounds without spaces') of a pip requirement or a conda match spec."""
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(f"cannot read requirement {requirement!r}")
    return normalize(match[1]), match[2].replace(" ", "")


def specs(entries: list) -> dict[str, str]:
    """Plain requirements of a YAML list; `if:` blocks (recipe selectors) and `pip:` lists are left out."""
    return dict(parse(entry) for entry in entries if isinstance(entry, str) and "${{" not in entry)


def check_same(what: str, wanted: list[str], have: dict[str, str], problems: list[str]) -> None:
    for requirement in wanted:
        name, bounds = parse(requirement)
        name = normalize(CONDA_NAME.get(name, name))
        if name not in have:
            problems.append(f"{what}: {requirement!r} is missing")
        elif have[name] != bounds:
            problems.append(f"{what}: {name} has {have[name] or 'no bounds'!r}, pyproject.toml says {bounds!r}")


# Variants when conda-forge's pinning is not given: enough for the recipe's Jinja (python, stdlib('c')).
MINIMAL_VARIANTS = {"python": ["3.10.*", "3.12.*"], "c_stdlib": ["sysroot"], "c_stdlib_version": ["2.17"]}


def render(target: str, pinning: Path | None) -> list[dict]:
    """What `rattler-build build --render-only` prints for the recipe on `target`."""
    code = (
        "import sys, warnings, rattler_build\n"
        "warnings.simplefilter('ignore')\n"
        "rattler_build.build_recipes([sys.argv[1]], render_only=True, target_platform=sys.argv[2],\n"
        "                            variant_config=[sys.argv[3]])\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if pinning is None:
            pinning = Path(tmp) / "variants.yaml"
            pinning.write_text(yaml.safe_dump(MINIMAL_VARIANTS))
        command = [sys.executable, "-c", code, str(ROOT / "recipe" / "recipe.yaml"), target, str(pinning)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"rendering for {target} failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--render", action="store_true", help="render the recipe with py-rattler-build")
    parser.add_argument("--pinning", type=Path, help="conda-forge's conda_build_config.yaml (with --render)")
    args = parser.parse_args()

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    run = pyproject["project"]["dependencies"]
    build = pyproject["build-system"]["requires"]
    test = pyproject["project"]["optional-dependencies"]["test"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    recipe = yaml.safe_load((ROOT / "recipe" / "recipe.yaml").read_text())
    problems: list[str] = []

    if environment.get("channels") != ["conda-forge"]:
        problems.append(f"environment.yml: channels are {environment.get('channels')}, not [conda-forge]")
    if any(isinstance(entry, dict) for entry in environment["dependencies"]):
        problems.append("environment.yml: has a pip: section (everything should come from conda-forge)")
    check_same("environment.yml", run + build + test, specs(environment["dependencies"]), problems)

    requirements = recipe["requirements"]
    run_specs = specs(requirements["run"])
    check_same("recipe.yaml run", run, run_specs, problems)
    check_same("recipe.yaml host", build, specs(requirements["host"]), problems)
    pip_names = {parse(requirement)[0] for requirement in run} | {"python", "numpy"}
    for extra in sorted(set(run_specs) - pip_names):
        problems.append(f"recipe.yaml run: {extra} is not a dependency in pyproject.toml")
    if (
        recipe["package"]["version"] != "${{ version }}"
        or recipe["context"]["version"] != pyproject["project"]["version"]
    ):
        problems.append(f"recipe.yaml: version {recipe['context']['version']!r} is not pyproject.toml's")
    for test in recipe.get("tests", []):
        for line in test.get("script", []):
            if not isinstance(line, str):  # an unquoted "A=:b: c" is a YAML mapping, not a command
                problems.append(f"recipe.yaml: test script line {line!r} is not a string (quote it)")
        for path in test.get("files", {}).get("source", []):
            if not (ROOT / path).exists():
                problems.append(f"recipe.yaml: test file {path} is not in the repository")
    print(
        f"environment.yml: {len(environment['dependencies'])} packages; recipe.yaml: "
        f"{len(requirements['host'])} host, {len(requirements['run'])} run requirements"
    )

    if args.render:
        for target, expect_variants in (("linux-64", True), ("osx-arm64", False), ("win-64", False)):
            try:
                variants = render(target, args.pinning)
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as error:
                problems.append(str(error))
                continue
            pythons = [v["build_configuration"]["variant"].get("python", "-") for v in variants]
            print(f"rendered for {target}: {len(variants)} variant(s) {pythons}")
            if bool(variants) != expect_variants:
                problems.append(
                    f"recipe.yaml: {len(variants)} variant(s) for {target}, expected "
                    f"{'some' if expect_variants else 'none (skipped)'}"
                )

    for problem in problems:
        print("PROBLEM:", problem)
    print("conda files: all checks passed" if not problems else f"conda files: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
