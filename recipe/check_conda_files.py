"""Checks environment.yml and recipe/recipe.yaml without conda.

    python recipe/check_conda_files.py [--render] [--pinning DIR/conda_build_config.yaml]

- both files parse as YAML; environment.yml uses the conda-forge channel only;
- every dependency of pyproject.toml (run, build-system, test extras) is in environment.yml with the same
  version bounds, under its conda-forge name; the recipe's run requirements are pyproject's run
  dependencies and its host requirements have the build-system ones;
- the recipe's about section names pyproject's URLs; extra.recipe-maintainers is a list of GitHub handles
  (empty is reported, not failed: the maintainers are not known before a feedstock exists);
- its source is the release's sdist on PyPI once context.sdist_sha256 is set, this tree before;
- its tests run the whole protocol suite (PROTOCOL_SUITE) with the files it needs;
- no library in host that the built kernel does not link (readelf -d on this environment's extension
  module xrpyc._kernel, when it is built);
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
import importlib.util
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
# The tests that drive the installed kernel through the Jupyter protocol with nothing but a stock rpyc
# server (no video fixtures, browser, network namespaces or emulated boards): the recipe runs them all.
PROTOCOL_SUITE = (
    "tests/test_conformance.py",
    "tests/test_execute.py",
    "tests/test_history.py",
    "tests/test_input.py",
    "tests/test_interrupt.py",
    "tests/test_kernelspec.py",
    "tests/test_wire.py",
)
TEST_HELPERS = ("tests/conftest.py", "tests/kernel_client.py", "tests/servers.py", "pyproject.toml")
# Host packages that are there only for a library the kernel links: conda package -> soname.
LINKED = {"libuuid": "libuuid.so", "zeromq": "libzmq.so", "openssl": "libcrypto.so"}
SDIST_URL = "https://pypi.org/packages/source/x/${{ name }}/${{ name }}-${{ version }}.tar.gz"
GITHUB_HANDLE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
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


def check_about(recipe: dict, urls: dict[str, str], problems: list[str], notes: list[str]) -> None:
    about = recipe.get("about", {})
    for field, url in (("homepage", "Homepage"), ("documentation", "Documentation"), ("repository", "Repository")):
        if about.get(field) != urls.get(url):
            problems.append(
                f"recipe.yaml about.{field} is {about.get(field)!r}, pyproject.toml's {url} {urls.get(url)!r}"
            )
    maintainers = recipe.get("extra", {}).get("recipe-maintainers")
    if not isinstance(maintainers, list) or not all(
        isinstance(m, str) and GITHUB_HANDLE.fullmatch(m) for m in maintainers
    ):
        problems.append(f"recipe.yaml extra.recipe-maintainers is {maintainers!r}, not a list of GitHub handles")
    elif not maintainers:
        notes.append("recipe.yaml extra.recipe-maintainers is empty: conda-forge's linter needs one before a feedstock")


def check_source(recipe: dict, problems: list[str]) -> None:
    """A conditional source: the PyPI sdist with context.sdist_sha256 when that is set, else this tree."""
    sha = recipe["context"].get("sdist_sha256")
    if sha != "" and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        problems.append(f"recipe.yaml context.sdist_sha256 is {sha!r}: empty or 64 hex digits")
    source = recipe.get("source")
    if not (isinstance(source, list) and len(source) == 1 and isinstance(source[0], dict)):
        problems.append("recipe.yaml source: expected one conditional entry (release sdist / this tree)")
        return
    (entry,) = source
    release, tree = entry.get("then", {}), entry.get("else", {})
    if entry.get("if") != "sdist_sha256" or release.get("url") != SDIST_URL:
        problems.append(f"recipe.yaml source: `if: sdist_sha256` should name the release {SDIST_URL}")
    if release.get("sha256") != "${{ sdist_sha256 }}" or tree.get("path") != "..":
        problems.append("recipe.yaml source: sha256 from context.sdist_sha256, else `path: ..`")


def check_tests(recipe: dict, problems: list[str]) -> None:
    for test in recipe.get("tests", []):
        for line in test.get("script", []):
            if not isinstance(line, str):  # an unquoted "A=:b: c" is a YAML mapping, not a command
                problems.append(f"recipe.yaml: test script line {line!r} is not a string (quote it)")
        for path in test.get("files", {}).get("source", []):
            if not (ROOT / path).exists():
                problems.append(f"recipe.yaml: test file {path} is not in the repository")
    suites = [
        (test, line)
        for test in recipe.get("tests", [])
        for line in test.get("script", [])
        if isinstance(line, str) and "-m pytest" in line
    ]
    if len(suites) != 1:
        problems.append(f"recipe.yaml: {len(suites)} pytest commands in its tests, expected one")
        return
    test, line = suites[0]
    ran = set(re.findall(r"tests/\S+\.py", line))
    copied = set(test.get("files", {}).get("source", []))
    for missing in sorted(set(PROTOCOL_SUITE) - ran):
        problems.append(f"recipe.yaml: the tests do not run {missing} (part of the protocol suite)")
    for missing in sorted((ran | set(TEST_HELPERS)) - copied):
        problems.append(f"recipe.yaml: the tests need {missing} in files.source")


def check_linked(recipe: dict, problems: list[str], notes: list[str]) -> None:
    """Host libraries the kernel does not link would only add run requirements (their run_exports)."""
    spec = importlib.util.find_spec("xrpyc._kernel") if importlib.util.find_spec("xrpyc") else None
    kernel = Path(spec.origin) if spec is not None and spec.origin else Path("xrpyc._kernel")
    try:
        dynamic = subprocess.run(["readelf", "-d", str(kernel)], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        dynamic = None
    if dynamic is None or dynamic.returncode != 0:
        notes.append(f"no built kernel at {kernel} (or no readelf): host libraries not compared with it")
        return
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic.stdout)
    for package, soname in LINKED.items():
        if package in specs(recipe["requirements"]["host"]) and not any(n.startswith(soname) for n in needed):
            problems.append(f"recipe.yaml host: {package}, but {kernel} does not link {soname} ({', '.join(needed)})")


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
    notes: list[str] = []

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
    check_about(recipe, pyproject["project"].get("urls", {}), problems, notes)
    check_source(recipe, problems)
    check_tests(recipe, problems)
    check_linked(recipe, problems, notes)
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

    for note in notes:
        print("NOTE:", note)
    for problem in problems:
        print("PROBLEM:", problem)
    print("conda files: all checks passed" if not problems else f"conda files: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
