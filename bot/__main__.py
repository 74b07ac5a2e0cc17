"""`python -m bot`: the documented way to start the bot; everything is wired in the composition root."""

from __future__ import annotations

import sys

# The one import from bot/ out to the composition root, which imports handlers/ (import-linter
# allows exactly this one).
from composition_root import main

if __name__ == "__main__":
    sys.exit(main())
