"""Run screensync as several hosts on one Linux machine: `python -m screensync.cluster` (docs/scale-out.md).

Workers live in network namespaces (sandbox/netns.py) and reach PostgreSQL, the Prefect server and
the sandbox providers on the services host (the root namespace) only over their veth link. Modules:

- `config`: what to start (workers, connections, warehouse and store URLs) and the connection plan;
- `services`: PostgreSQL, the Prefect server on it, the sandbox providers, all on the services address;
- `prefect_setup`: the work pool and its two queues, prefect.yaml's `fanout-<integration>` and `shard`
  deployments (no schedules) and the zombie-run automation;
- `submit`: starts one `fanout-<integration>` dispatcher run per integration (flows/fanout.py), which
  starts the shards and re-runs a crashed one;
- `watch`: waits for the dispatchers, kills a worker host when asked, records every shard run;
- `analyst`: a process that queries the warehouse over and over while the syncs run;
- `report`: the summary (runs per worker, retries, rows against the sandbox's truth, analyst answers);
- `run`: starts it all, in order, and tears it all down on exit, Ctrl-C or failure.

It lives in the `screensync` layer, not `sandbox`, because it drives every layer below it.
"""
