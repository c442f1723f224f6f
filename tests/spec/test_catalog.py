"""The built-in catalog: every case is a valid spec with the documented keys."""

from __future__ import annotations

import pytest
import yaml

from phycrnet.spec.catalog import case_path, case_text, list_cases
from phycrnet.spec.problem import load_spec

EXPECTED = {
    "allen_cahn_periodic", "allen_cahn_zero_flux", "allen_cahn_flux", "allen_cahn_mixed",
    "burgers_periodic", "burgers_flux", "burgers_mixed", "diffusion_reaction_mixed", "heat_flux",
    "burgers_phycrnet", "lambda_omega", "fitzhugh_nagumo", "gray_scott",
}
PAPER_CASES = EXPECTED - {"burgers_phycrnet", "lambda_omega", "fitzhugh_nagumo", "gray_scott"}
REQUIRED = {"name", "description", "parameters", "domain", "grid", "time", "equations", "initial", "boundary"}


def test_list_cases_sorted_and_complete():
    cases = list_cases()
    assert cases == sorted(cases)
    assert EXPECTED <= set(cases)


def test_unknown_case_names_the_available_ones():
    with pytest.raises(KeyError, match="allen_cahn_periodic"):
        case_path("no_such_case")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_case_parses_with_required_keys(name):
    data = yaml.safe_load(case_text(name))
    assert REQUIRED <= set(data), REQUIRED - set(data)
    assert data["name"] == name
    assert case_path(name).name == f"{name}.yaml"
    assert set(data["equations"]) == set(data["initial"])
    assert data["time"]["dt"] > 0 and data["time"]["t_end"] >= data["time"]["dt"]
    assert isinstance(data["description"], str) and len(data["description"]) > 80
    assert all(isinstance(v, (int, float)) for v in data["parameters"].values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_case_compiles(name):
    problem = load_spec(case_path(name))
    assert problem.name == name
    assert problem.initial_values().shape == (len(problem.fields), problem.grid.shape[0], problem.grid.shape[1])


@pytest.mark.parametrize("name", sorted(PAPER_CASES))
def test_paper_cases_follow_the_paper_set_up(name):
    data = yaml.safe_load(case_text(name))
    assert data["time"] == {"t_end": 1.0, "dt": 0.05}
    assert data["domain"] == {"x": [0.0, 1.0], "y": [0.0, 1.0]}
    periodic = data["boundary"] == "periodic"
    assert data["grid"] == ({"nx": 32, "ny": 32} if periodic else {"nx": 33, "ny": 33})
    text = data["description"]
    assert ".csv" in text   # names the data file(s)


def test_allen_cahn_periodic_is_the_design_example():
    data = yaml.safe_load(case_text("allen_cahn_periodic"))
    assert data["parameters"] == {"eps": 0.001}
    assert data["equations"] == {"u": "eps*laplace(u) + u - u**3"}
    assert data["initial"] == {"u": "0.5*(sin(4*pi*x) + sin(4*pi*y))"}
    assert data["boundary"] == "periodic"
