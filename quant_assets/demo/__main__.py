"""`python -m quant_assets.demo` (what `make demo` runs): the local demo."""
import sys

from quant_assets.demo.local import main

if __name__ == "__main__":
    sys.exit(main())
