"""``python -m sape_geom.app.worker JOB.json``: runs :func:`.main.main` on the job file, then ends the
process at once with its exit status (see :mod:`.protocol` for the protocol and the exit codes).
"""

import os
import sys

from .main import main

if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # daemon threads (the stdin reader) must not keep the process alive; skip slow interpreter teardown
    os._exit(code)
