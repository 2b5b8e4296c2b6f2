import sys

from canvass_edge.cli import main

sys.exit(main())
