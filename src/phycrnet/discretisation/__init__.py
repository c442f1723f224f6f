"""The discrete operators the residual is built from: finite-difference and spectral
derivatives, boundary stencils and ghost nodes, implicit diffusion, time schemes."""
