"""Xvfb for the UI tests: started here on a free display number, stopped at the end of the session."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

@pytest.fixture(scope="session")
def xvfb():
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed (apt-get install xvfb; see docs/ui.md)", pytrace=False)
    read, write = os.pipe()
    # -displayfd: Xvfb picks a free display number itself and writes it to the pipe
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start", pytrace=False)
    yield f":{number}"
    proc.terminate()
    proc.wait(5)
