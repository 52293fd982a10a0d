"""`python -m cli`: the `jetscribe` command line."""

import sys

from cli.main import main

sys.exit(main())
