"""Training: the loop behind :meth:`fastbp.Network.fit` and ``evaluate``
(:mod:`~fastbp.training.loop`), its callbacks (:mod:`~fastbp.training.callbacks`, also
``fastbp.callbacks``), :class:`~fastbp.training.history.History`, the metrics
(:mod:`~fastbp.training.metrics`) and data-parallel training on MPI
(:mod:`~fastbp.training.distributed`, also ``fastbp.distributed``)."""
