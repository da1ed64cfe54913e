import sys

from jaximpala.cli import main

sys.exit(main())
