"""The ways to solve a problem: PhyCRNet (:mod:`~phycrnet.methods.solve`, its options resolved
in :mod:`~phycrnet.methods.resolve`, members in batches in :mod:`~phycrnet.methods.batch`),
the PINN (:mod:`~phycrnet.methods.pinn`) and the classical solvers
(:mod:`~phycrnet.methods.classical`)."""
