"""``python -m benchmarks.run [--quick]``: dd-preview's benchmarks, printed as small tables.

These are figures, not tests: nothing here passes or fails on a number. Wherever a
figure depends on the machine it comes with a baseline measured in the same run (N=1 for
apply -> Ready, a bare Quart app for the control plane, the smallest listing for the
reaper), so the ratio can be compared across machines and the absolute value cannot.

Sub-benchmarks, each in its own module:

1. apply -> Ready with N objects, local and gce (fake Compute API, fixed latency)  apply_ready
2. cloud API calls per lifecycle, gce + cloudflare edge, vs an argued minimum     lifecycle_calls
3. control plane requests/s and Noise XX handshakes/s vs a bare Quart app          controlplane_load
4. operator memory, idle and with N environments converged                         apply_ready
5. reaper cost (``plan_sweep``) as the listings grow                               reaper_cost

``--quick`` keeps the whole run to a few minutes (smaller N, shorter windows); a section
that cannot run prints why instead of a table. Every process and temporary directory a
section starts is stopped or removed before the next one begins.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime

from .report import section

__all__ = ["main"]

GCE_LATENCY_SECONDS = 0.1
"""Added to every fake Compute API request: the order of a real Compute API call."""


def _guard(title: str, body: Callable[[], None]) -> None:
    started = time.monotonic()
    try:
        body()
    except Exception as exc:  # one section's failure must not hide the others' figures
        section(title)
        print(f"  not run: {type(exc).__name__}: {exc}", flush=True)
    print(f"  ({title}: {time.monotonic() - started:.0f} s of wall time)", flush=True)


def _machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} cpus, load average {load}")


def _cluster_sections(quick: bool) -> None:
    from .apply_ready import print_apply_ready, print_memory, run_apply_ready
    from .harness import BenchCluster
    from .lifecycle_calls import print_lifecycle_calls, run_lifecycle_calls

    sizes = (1, 5) if quick else (1, 5, 20)
    # --quick: gce's apply -> Ready is the create phase of section 2 (N=1, with the edge).
    providers = ("local",) if quick else ("local", "gce")
    started = time.monotonic()
    with BenchCluster() as bench:
        print(f"  kube-apiserver up in {time.monotonic() - started:.1f} s", flush=True)
        ready = run_apply_ready(bench, sizes, GCE_LATENCY_SECONDS, providers, quick=quick)
        print_apply_ready(ready, GCE_LATENCY_SECONDS)
        _guard("2. cloud API calls per lifecycle", lambda: print_lifecycle_calls(
            run_lifecycle_calls(bench, GCE_LATENCY_SECONDS, 5 if quick else 30),
            GCE_LATENCY_SECONDS,
        ))
        print_memory(ready)


def _controlplane_section(quick: bool) -> None:
    from .controlplane_load import print_controlplane_load, run_controlplane_load

    seconds = 2.0 if quick else 9.0
    print_controlplane_load(run_controlplane_load(seconds), seconds)


def _reaper_section(quick: bool) -> None:
    from .reaper_cost import print_reaper_cost, run_reaper_cost

    print_reaper_cost(run_reaper_cost((100, 1_000, 10_000), 0.3 if quick else 2.0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smaller N and shorter windows (a few minutes in all)")
    parser.add_argument("--only", action="append", default=[],
                        choices=["cluster", "controlplane", "reaper"],
                        help="run only these groups (repeatable); default: all")
    args = parser.parse_args(argv)
    groups = set(args.only) or {"cluster", "controlplane", "reaper"}
    started = time.monotonic()
    print(f"dd-preview benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{'quick' if args.quick else 'full'}; {_machine()}", flush=True)
    if "cluster" in groups:
        _guard("1/2/4. cluster benchmarks", lambda: _cluster_sections(args.quick))
    if "controlplane" in groups:
        _guard("3. control plane", lambda: _controlplane_section(args.quick))
    if "reaper" in groups:
        _guard("5. reaper", lambda: _reaper_section(args.quick))
    print(f"\ntotal {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
