"""Offline stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test creates an empty virtualenv per sanity test and runs get-pip.py in it (with pip's
install options and the pinned packages as arguments). Where that download host is out of reach,
this does the same from local means: the interpreter's bundled pip (ensurepip), then `pip install`
of the requested pins from the package index pip is configured for.
"""

import ensurepip
import os
import subprocess
import sys

# get-pip.py's own flags; everything else goes to `pip install`
OWN_FLAGS = {"--no-setuptools", "--no-wheel"}

config_file = os.environ.get("PIP_CONFIG_FILE")
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null for itself; the real install needs the machine's pip config
if config_file is None:
    os.environ.pop("PIP_CONFIG_FILE", None)
else:
    os.environ["PIP_CONFIG_FILE"] = config_file
args = [a for a in sys.argv[1:] if a not in OWN_FLAGS]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
