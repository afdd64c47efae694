"""dd-controlplane: the service every preview VM runs, on one port behind one tunnel.

Where things live:
- ``settings.py`` reads ``DD_*`` once; ``app.py`` builds the Quart app; ``__main__`` serves it
  with Hypercorn; ``state.py`` is what one running app holds; ``errors.py`` the error family.
- ``routes/``: the only code that touches ``request``/``websocket`` - health, auth (PAT,
  OAuth, logout), attest, register (websocket), dashboard (+ ``/api/status``); ``guard.py``
  decides who is asking, ``pages.py`` holds the HTML.
- ``auth/``: GitHub API calls, the owner rule and its cache, OAuth states, cookies, CSRF,
  safe redirects.
- ``attestation/``: Actions OIDC verification, configfs-tsm, DCAP quote parsing, evidence.
- ``registration/``: Noise XX, the admission policy, the agent registry.
- ``agent.py``: the ``dd-agent`` CLI.

It never imports ``dd_operator``: the two packages meet only over HTTP.
"""
