"""`amanat-hwi`: HWI / Bitcoin Core external-signer interface (not implemented yet)."""

import json
import sys


def main():
    print(json.dumps({"error": "amanat-hwi is not implemented yet", "code": -1}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
