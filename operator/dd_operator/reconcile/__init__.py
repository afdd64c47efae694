"""Reconcile: observe -> plan (pure) -> apply, one step at a time.

- ``context``: what a pass needs (identity, spec, providers, clock) as plain values.
- ``observe``: GET-by-name from every provider; a failed read raises, it is never "gone".
- ``probe``: the control plane's ``/health`` and ``/cp/attest``, as the operator sees them.
- ``plan``: pure ``plan_next_step`` and ``conditions_for`` over one ``Situation``;
  table-testable without a cluster.
- ``teardown``: pure ordered teardown (DNS -> VMs -> tunnel -> Secret).
- ``apply``: records the intent in status, then makes exactly one call.
- ``loop``: one reconcile pass (``reconcile_once``), one teardown pass (``teardown_once``)
  and ``record_failure``; the daemon in ``handlers`` loops over them.
- ``report``: what the pull request is told, once per real change.
"""
