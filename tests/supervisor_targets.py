"""Actor stand-ins for the supervisor tests: a module that imports nothing heavy, so the
processes spawned to run them start fast."""

import os
import time


def crash(spec):
    os._exit(3)


def hang(spec):
    time.sleep(3600)
