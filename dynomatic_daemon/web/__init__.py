"""The status page: the live view of the scaler, ``/healthz`` and Prometheus ``/metrics``, served
over HTTP from a background thread of ``dynomatic run --http-port``."""
