#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""An outsider attacks turnbridge (issue 11): every case of every `hostile_<area>.py` module,
one after the other on one server with gateway mode on, each inside hostile_common.run_case
(alive, STUN Binding latency, legitimate TURN/SIP/admin clients served during the attack,
descriptors and RSS back to the baseline, the log bounded). Loopback only; bounded.

interop-timeout: 420 (read by scripts/test)
"""
import importlib
from pathlib import Path

from hostile_common import module_main

MODULES = sorted(p.stem for p in Path(__file__).resolve().parent.glob("hostile_*.py")
                 if p.stem not in ("hostile_common", "hostile_test"))

if __name__ == "__main__":
    cases = []
    for name in MODULES:
        cases += importlib.import_module(name).CASES
    module_main(cases)
