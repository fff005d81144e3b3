"""The ``edgeps`` command and the applications built on the runtime (installed as edgeps.apps)."""
