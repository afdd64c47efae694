"""A real local Kubernetes for dd-preview's main job and tests.

- ``binaries``: builds kube-apiserver (+ embedded etcd) and kubectl from the official Go
  modules once, cached outside the checkout, keyed by version.
- ``cluster``: starts that apiserver on 127.0.0.1 on free ports, waits for ``/readyz``,
  writes a kubeconfig (token auth, RBAC on) and stops it without leaving anything behind.
- ``demo``: the README's main job: cluster, CRD, operator, a sample PreviewEnvironment.
"""
