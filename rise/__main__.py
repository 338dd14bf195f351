import sys

from rise.cli import main

sys.exit(main())
