"""A process that never served the web UI does not load Flask when it exits (patch no-flask-import-at-exit).

settings.dispose_orm() runs at exit of every Airflow process; upstream 2.11.2 imported
airflow.www.extensions.init_session there (and with it Flask and flask_session) only to reset its
cached session interface."""

from __future__ import annotations

import subprocess
import sys

# Registered before `import airflow`, so it runs after airflow's own atexit handler (dispose_orm): last in, first out.
PROGRAM = """
import atexit, sys

def loaded_at_exit():
    print("loaded at exit:", sorted(m for m in ("flask", "flask_session", "airflow.www.extensions.init_session")
                                    if m in sys.modules))

atexit.register(loaded_at_exit)
import airflow.settings
print("dispose_orm registered:", airflow.settings.dispose_orm.__name__)
"""


def test_exiting_after_import_airflow_loads_no_flask():
    result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "dispose_orm registered: dispose_orm" in result.stdout
    assert "loaded at exit: []" in result.stdout, result.stdout
