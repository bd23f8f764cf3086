"""``python -m factor_core.factors [--write-docs PATH] [--list]``."""

import sys

from factor_core.factors.docs import main

sys.exit(main())
