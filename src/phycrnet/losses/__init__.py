"""Loss terms beyond the residual and how terms combine: weighting schemes
(:mod:`~phycrnet.losses.weighting`) and the data misfit (:mod:`~phycrnet.losses.data`)."""
