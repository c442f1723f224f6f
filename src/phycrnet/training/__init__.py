"""One training engine for every network (:mod:`~phycrnet.training.engine`): schedule and
budget, the L-BFGS finish, the divergence policy, checkpoints, the log. Methods hand it a
:class:`~phycrnet.training.task.Task`."""
