"""The networks: PhyCRNet's encoder, ConvLSTM and decoder (:mod:`~phycrnet.models.crn`), the
PINN's MLP (:mod:`~phycrnet.models.pinn`), and learnable coefficients."""
