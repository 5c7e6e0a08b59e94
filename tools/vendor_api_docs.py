"""Vendor the API docs' browser assets (Swagger UI for /docs, ReDoc for /redoc) into the package, so both pages
work on a cluster that reaches no CDN:

    python -m tools.vendor_api_docs          fetch the pinned versions with `npm pack`, copy the fixed file set

The files land in framequeue/api/apidocs/static/{swagger-ui,redoc}/ with each package's licence files and a
VERSION file naming the npm package and version copied. Bump a version here, rerun, commit the result.

One change is made to a copied file (PATCHES, noted in VERSION): ReDoc's sidebar draws the "API docs by
Redocly" logo from cdn.redoc.ly; its URL becomes `data:,`, an image that fails to load, which ReDoc then
leaves out. The script stops when a patched string is not found (a new version: check it again).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "framequeue" / "api" / "apidocs" / "static"

#: npm package, version, target folder, files copied (paths inside the package's tarball, under package/)
PACKAGES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("swagger-ui-dist", "5.35.0", "swagger-ui", (
        "swagger-ui-bundle.js", "swagger-ui-bundle.js.LICENSE.txt", "swagger-ui.css", "favicon-32x32.png",
        "LICENSE", "NOTICE",
    )),
    # 2.x: the `<redoc spec-url>` standalone bundle FastAPI's get_redoc_html is written for
    ("redoc", "2.5.4", "redoc", (
        "bundles/redoc.standalone.js", "bundles/redoc.standalone.js.LICENSE.txt", "LICENSE",
    )),
)


#: (file under a target folder, text to replace, replacement): what would reach outside the API
PATCHES: tuple[tuple[str, str, str], ...] = (
    ("redoc/redoc.standalone.js", '"https://cdn.redoc.ly/redoc/logo-mini.svg"', '"data:,"'),
)


def vendor(package: str, version: str, folder: str, files: tuple[str, ...], work: Path) -> None:
    out = subprocess.run(["npm", "pack", f"{package}@{version}", "--silent"], cwd=work, check=True,
                         capture_output=True, text=True)
    tarball = work / out.stdout.strip().splitlines()[-1]
    unpacked = work / folder
    with tarfile.open(tarball) as tar:
        tar.extractall(unpacked, filter="data")
    target = DEST / folder
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in files:
        shutil.copyfile(unpacked / "package" / name, target / Path(name).name)
    notes = [f"{package}@{version} (npm)"]
    for path, old, new in PATCHES:
        folder_of, _, name = path.partition("/")
        if folder_of != folder:
            continue
        text = (target / name).read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{path}: {old} is not there once; check the patch against {package}@{version}")
        (target / name).write_text(text.replace(old, new))
        notes.append(f"patched {name}: {old} -> {new}")
    (target / "VERSION").write_text("\n".join(notes) + "\n")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for package, version, folder, files in PACKAGES:
            vendor(package, version, folder, files, Path(tmp))
            print(f"{package}@{version} -> {(DEST / folder).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
