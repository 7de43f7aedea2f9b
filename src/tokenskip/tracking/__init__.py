"""The one MLflow layer of the stages and flows that track: the connection and its retries
(:mod:`~tokenskip.tracking.store`, :mod:`~tokenskip.tracking.retries`), the runs found before they
are created (:mod:`~tokenskip.tracking.runs`) and the tag and environment names they share
(:mod:`~tokenskip.tracking.names`). It imports only ``core``; a stage that tracks imports it."""
