"""``python -m rsa_bias.cli ...``: the ``rsa-bias`` command."""

import sys

from rsa_bias.cli import main

sys.exit(main())
