"""dd-preview's Kubernetes operator.

Where things live:

- ``settings``: the operator's configuration; the only module that reads ``os.environ``.
- ``model``: the PreviewEnvironment spec and status as typed values (our "api/").
- ``naming``: every external name, request id and ownership stamp, and ``is_ours``.
- ``conditions``: condition bookkeeping; decides whether a status write is a real change.
- ``errors``: the small error family every provider maps its SDK errors into.
- ``retry``: the one backoff schedule and the shared Cloudflare request budget.
- ``handlers``: kopf decorators only; they parse, call ``reconcile`` and translate errors.
- ``reconcile``: observe -> plan (pure) -> apply, the ordered teardown, and reporting
  to the pull request.
- ``reaper``: the periodic orphan sweep and ttl expiry (pure plan + runner, one Lease).
- ``metrics`` and ``probes``: Prometheus metrics, and liveness tied to watch and reaper
  progress.
- ``providers``: VM providers (``local``, ``gce`` with ``gce_boot`` and ``gce_secrets``),
  edge providers (``none``, ``cloudflare``), and the GitHub reporter, each behind a narrow
  Protocol in ``providers.base``.
- ``kube``: the one place that calls the Kubernetes API outside kopf.
- ``cli``: the ``dd-preview`` command for CI.
"""
