"""`python -m history.copy_store`, its name before history/transfer/: kept so scripts keep working."""

import sys

from history.transfer.copy_store import main

if __name__ == "__main__":
    sys.exit(main())
