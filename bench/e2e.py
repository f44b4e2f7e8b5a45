"""End-to-end: the demo's materialization time after install, in a fresh QUANT_HOME (budget: 10 minutes).

Prints the time of each stage as the demo reports it and the total against the budget.
"""

import os
import subprocess
import sys
import tempfile
import time

BUDGET_S = 600.0


def main() -> int:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "QUANT_HOME": home, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "quant_assets.demo"], env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
    for line in done.stdout.splitlines():
        if line.startswith("demo:"):
            print(line)
    if done.returncode != 0:
        print(done.stderr[-3000:])
        return 1
    print(f"demo end to end (process start to Projector printed): {elapsed:.0f} s "
          f"(budget {BUDGET_S:.0f} s; ratio {elapsed / BUDGET_S:.2f}; load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
