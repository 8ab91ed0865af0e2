# target: Net
# expect: interrupted while the model's code ran | KeyboardInterrupt | line: 10,11
# never finishes: tests/test_import_errors.py interrupts it (Ctrl-C) once it runs, the fuzzer's alarm stops it
import os
from pathlib import Path

if "CNNCALC_TEST_READY" in os.environ:
    Path(os.environ["CNNCALC_TEST_READY"]).touch()
n = 0
while True:
    n += 1
