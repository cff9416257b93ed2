"""Run screensync as several hosts on one Linux machine: `python -m screensync.cluster` (docs/scale-out.md).

Workers live in network namespaces (sandbox/netns.py) and reach PostgreSQL, the Prefect server and
the sandbox providers on the services host (the root namespace) only over their veth link. Modules:

- `config`: what to start (workers, connections, warehouse and store URLs) and the connection plan;
- `services`: PostgreSQL, the Prefect server on it, the sandbox providers, all on the services address;
- `prefect_setup`: the work pool, the sync deployments (no schedules) and the zombie-run automation;
- `submit`: how syncs become flow runs (the one place to switch to the sharded dispatcher);
- `watch`: waits for the runs, kills a worker when asked, re-submits crashed runs;
- `analyst`: a process that queries the warehouse over and over while the syncs run;
- `report`: the summary (runs per worker, retries, rows against the sandbox's truth, analyst answers);
- `run`: starts it all, in order, and tears it all down on exit, Ctrl-C or failure.

It lives in the `screensync` layer, not `sandbox`, because it drives every layer below it.
"""
