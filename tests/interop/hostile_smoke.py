#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""hostile_test.py's frame with no attack: the baseline every case is measured against."""
from hostile_common import module_main


def idle(r, ctx):
    ctx.during()


CASES = [("no attack (baseline)", idle)]

if __name__ == "__main__":
    module_main(CASES)
