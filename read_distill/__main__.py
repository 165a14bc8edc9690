"""``python -m read_distill`` runs the CLI."""

import sys

from read_distill.cli import main

sys.exit(main())
