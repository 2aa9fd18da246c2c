"""A virtualenv with the daemon installed as a user would have it: runtime dependencies only.

The development venv also holds test tools (rich, say, which structlog loads when present), so
memory is measured on this one: `.venv-bench`, made on first use with `pip install .`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-bench"


def python() -> Path:
    exe = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    pyproject = ROOT / "pyproject.toml"
    pip = [str(exe), "-m", "pip", "install", "--quiet"]
    if not stamp.exists() or stamp.stat().st_mtime < pyproject.stat().st_mtime:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([*pip, str(ROOT)], check=True)
        stamp.touch()
    else:  # the dependencies stand; the daemon's own code is measured as it is now
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(ROOT)], check=True)
    return exe
