"""What every app does before its work: no TensorFlow or absl INFO noise, and
library errors as one `ERROR:` line with exit status 2.

Set `KERAS_GLIMPSE_TRACEBACK=1` to see the full traceback instead.
"""

import logging
import os
import sys
import warnings

# Errors a user can fix from the message alone.
USER_ERRORS = (ValueError, LookupError, TypeError, FileNotFoundError, FileExistsError,
               NotADirectoryError, IsADirectoryError, PermissionError)


def configure():
    """Silences TF's and absl's INFO logging and known harmless warnings (apps
    only; `apps/__init__` already quiets TF's C++ runtime)."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    warnings.filterwarnings("ignore", message=".*Skipping variable loading for optimizer.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def wrap(main):
    """`main(argv)` with `configure()` first and user errors as one line."""

    def run(argv):
        configure()
        if os.environ.get("KERAS_GLIMPSE_TRACEBACK"):
            return main(argv)
        try:
            return main(argv)
        except USER_ERRORS as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return 2

    return run
