"""python -m orthanc_lite.config json | markdown | check PATH..."""

import sys

from .docs import main

sys.exit(main())
