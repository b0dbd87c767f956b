import sys

from funrl.distributed.cli import main

sys.exit(main())
