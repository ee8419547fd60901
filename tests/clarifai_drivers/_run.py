"""What every driver does around its calls: read the JSON spec from stdin, run, write what the
calls returned as JSON on stdout; on an error, its traceback on stderr and exit status 1.

The drivers run as scripts in their clients' own venvs, so this sits beside them (their folder
is on ``sys.path``) rather than in the test package.
"""

import json
import sys
import traceback


def run(main):
    try:
        out = main(json.load(sys.stdin))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    json.dump(out, sys.stdout)
