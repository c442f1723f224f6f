"""Files: solutions as netCDF (:mod:`~phycrnet.io.solution`), observations as CSV
(:mod:`~phycrnet.io.observations`), and the paper's data files (:mod:`~phycrnet.io.paper_data`)."""
