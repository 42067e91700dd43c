"""``python -m llm_localfirst``: the same command line as the ``llm-localfirst`` script.

Useful when the console script is not on ``PATH`` (a virtualenv that is not
activated, Claude Desktop started outside your shell): every command works as
``python -m llm_localfirst <command>``. It must do nothing but hand over to
:func:`llm_localfirst.cli.main`.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
