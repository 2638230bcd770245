"""``python -m robot_instseg.cli``: the same as the ``robot-instseg`` command."""

import sys

from robot_instseg.cli import main

sys.exit(main())
