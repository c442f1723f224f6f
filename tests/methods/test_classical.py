"""``phycrnet.classical``: a solution that blows up is an error, never a result."""

from __future__ import annotations

import numpy as np
import pytest

from phycrnet.errors import DivergenceError
from phycrnet.methods.classical import GROWTH_LIMIT, classical, require_bounded


def test_bounded_frames_pass_and_grown_or_infinite_frames_are_named():
    frames = np.ones((4, 1, 3, 3))
    require_bounded(frames, "implicit")
    frames[2, 0, 1, 1] = 2 * GROWTH_LIMIT
    with pytest.raises(DivergenceError, match="implicit solver blew up at frame 2"):
        require_bounded(frames, "implicit")
    frames[1, 0, 0, 0] = np.nan
    with pytest.raises(DivergenceError, match="frame 1"):
        require_bounded(frames, "explicit")


def test_small_initial_values_are_measured_against_a_unit_scale():
    frames = np.full((2, 1, 2, 2), 1e-9)
    frames[1] = 10.0  # far above 1e-9 times the limit, but a sound value for a field of unit scale
    require_bounded(frames, "implicit")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # Newton-Krylov overflows on the way up
def test_a_growing_implicit_solution_is_reported(periodic_heat_spec):
    """u' = 20 u from a unit sine grows by e^20 = 5e8 over t in [0, 1]."""
    spec = {**periodic_heat_spec, "equations": {"u": "20*u"}, "time": {"t_end": 1.0, "dt": 0.1}}
    with pytest.raises(DivergenceError, match="blew up"):
        classical(spec, scheme="implicit", threads=1)


@pytest.mark.parametrize("scheme", ["implicit", "explicit"])
def test_a_time_limit_ends_the_solve_with_a_one_line_error(periodic_heat_spec, tmp_path, capsys, scheme):
    """Past ``time_limit`` the solve stops with a TimeLimitError (exit code 4) and writes
    nothing; with room to spare it is the same solution as without a limit."""
    from phycrnet.cli import main
    from phycrnet.errors import TimeLimitError

    spec = {**periodic_heat_spec, "time": {"t_end": 0.5, "dt": 0.05}}
    with pytest.raises(TimeLimitError, match=rf"the {scheme} solver did not finish within 1e-09 s \(0 of \d+ steps done\)"):
        classical(spec, scheme=scheme, threads=1, time_limit=1e-9)
    limited = classical(spec, scheme=scheme, threads=1, time_limit=60)
    free = classical(spec, scheme=scheme, threads=1)
    np.testing.assert_array_equal(limited["u"].values, free["u"].values)
    path = tmp_path / "heat.yaml"
    path.write_text(__import__("yaml").safe_dump(spec))
    out = tmp_path / "out.nc"
    assert main(["classical", str(path), "--out", str(out), "--scheme", scheme, "--time-limit", "1e-9", "--threads", "1"]) == 4
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "did not finish within" in error[0] and not out.exists()
    with pytest.raises(Exception, match="--time-limit"):
        classical(spec, scheme=scheme, time_limit=0)
