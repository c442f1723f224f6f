"""Reading solutions: errors against a reference (:mod:`~phycrnet.analysis.metrics`) and
figures (:mod:`~phycrnet.analysis.plots`)."""
