"""The dashboard's files ship in the package: every one under framequeue/api/ui/static matches the
package-data globs of pyproject.toml (a new folder or kind of file must be added there), and every module
the pages import exists (no import of anything off this server)."""

from __future__ import annotations

import re
import tomllib

from framequeue.api.ui import STATIC_DIR
from tests.conftest import REPO_ROOT

IMPORT = re.compile(r'^import .* from "([^"]+)";$', re.M)


def test_every_static_file_is_package_data() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["framequeue.api.ui"]
    package_dir = STATIC_DIR.parent
    shipped = {p for g in globs for p in package_dir.glob(g)}
    files = {p for p in STATIC_DIR.rglob("*") if p.is_file()}
    assert files and files == shipped, sorted(str(p.relative_to(package_dir)) for p in files ^ shipped)


def test_the_modules_import_only_each_other() -> None:
    modules = list(STATIC_DIR.rglob("*.js"))
    assert len(modules) >= 5
    imports = [(module, target) for module in modules for target in IMPORT.findall(module.read_text())]
    assert len(imports) >= 10, "the pattern no longer finds the imports"
    for module, target in imports:
        assert target.startswith("."), f"{module.name} imports {target} from off this server"
        assert (module.parent / target).resolve().is_file(), f"{module.name}: {target} is missing"
    index = (STATIC_DIR / "index.html").read_text()
    for src in re.findall(r'(?:src|href)="([^"#]+)"', index):
        assert src.startswith("data:") or (STATIC_DIR / src).is_file(), src

