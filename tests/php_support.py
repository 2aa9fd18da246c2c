"""Running the real PHP queue libraries (Debian packages) from the adapter tests.

The Laravel and Symfony tests drive ``tests/php/*.php`` with Debian's php-cli and the library
packages ``.ci/run`` installs. Without them a test is skipped on a developer's machine, but
fails in CI (``CI`` set): CI must run these tests, not skip them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PHP_DIR = Path(__file__).resolve().parent / "php"
# what the scripts require: php-cli, php-pgsql, and each library's autoloader
NEEDS = {
    "laravel_queue.php": ["/usr/share/php/Illuminate/Queue/autoload.php"],
    "symfony_messenger.php": [
        "/usr/share/php/Symfony/Component/Messenger/Bridge/Doctrine/autoload.php",
        "/usr/share/php/Doctrine/DBAL/autoload.php",
    ],
}


def missing(script: str) -> str | None:
    """What is not installed for ``script``, or None."""
    php = shutil.which("php")
    if php is None:
        return "php-cli is not installed"
    modules = subprocess.run(
        [php, "-m"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    if "pdo_pgsql" not in modules.split():
        return "php-pgsql (pdo_pgsql) is not installed"
    absent = [path for path in NEEDS[script] if not Path(path).exists()]
    return f"not installed: {', '.join(absent)}" if absent else None


def require(script: str) -> None:
    """Skip (locally) or fail (in CI) when ``script`` cannot run here."""
    reason = missing(script)
    if reason is None:
        return
    message = f"{script}: {reason} (.ci/run installs it with apt-get)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run(script: str, *args: object, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``tests/php/<script>`` and return the JSON document it prints."""
    php = shutil.which("php")
    assert php is not None
    result = subprocess.run(
        [php, str(PHP_DIR / script), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return document
