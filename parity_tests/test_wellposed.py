"""Every registry case is well-posed for float32: no unit within rounding reach of a
ReLU-family kink and no max-pool window with its two largest entries within rounding of
each other, on the case's own inputs and weights (see ``flax_arch/parity/kinks.py``).
And :func:`clear_kinks` does what it says on a hand-built example."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flax_arch.parity.harness import build_reference
from flax_arch.parity.kinks import clear_kinks, well_posedness
from flax_arch.parity.registry import all_cases

PARAMS = [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if "slow" in c.tags else [])
          for c in all_cases()]


@pytest.mark.parametrize("case", PARAMS)
def test_registry_case_is_well_posed_in_float32(case):
    inputs = case.inputs(np.random.default_rng(case.seed))
    module = build_reference(case, inputs)  # as the harness builds it
    assert case.well_posed
    report = well_posedness(module, inputs, call=case.torch_call, train=case.train)
    assert report, f"{case.name}: {report}"


def _near_kink_model():
    """Linear(3 → 2) + ReLU where unit (0, 0)'s float64 pre-activation is 3e-9: far below
    float32 rounding of the sum (≈ 1e-7)."""
    lin = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0, 0.5], [0.25, 0.5, -1.0]]))
        lin.bias.copy_(torch.tensor([0.1, -0.2]))
    model = torch.nn.Sequential(lin, torch.nn.ReLU()).float()
    x = np.array([[0.3, 0.0, 0.3], [1.0, 2.0, 3.0]])
    x[0, 1] = 0.3 + 0.5 * 0.3 + 0.1 - 3e-9  # pre = 0.3 − x01 + 0.15 + 0.1 = 3e-9
    return model, x


def test_clear_kinks_moves_a_near_kink_unit_out_of_reach():
    model, x = _near_kink_model()
    before = well_posedness(model, [x])
    assert before.near_kinks == {"1": 1}, before
    bias0 = model[0].bias.detach().clone()
    notes = clear_kinks(model, [x])
    assert len(notes) == 1 and notes[0].startswith("0.bias: 1 channel(s)")
    assert well_posedness(model, [x]), well_posedness(model, [x])
    shift = (model[0].bias.detach() - bias0).double()
    assert shift[1] == 0 and 0 < abs(float(shift[0])) < 1e-4  # only that channel, a little
    assert model[0].weight.dtype == torch.float32  # the module keeps its dtype
    with torch.no_grad():
        pre = torch.as_tensor(x) @ model[0].weight.double().T + model[0].bias.double()
    assert abs(float(pre[0, 0])) > 1e-6  # now clear of the kink in float64


def test_clear_kinks_leaves_buffers_and_rng_alone():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.ReLU())
    x = np.random.default_rng(0).standard_normal((16, 4))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    clear_kinks(model, [x], train=True)
    for k, v in model.state_dict().items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(v, state[k]), k
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_max_pool_near_ties_are_reported():
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, 0, :2] = [1.1, 1.1 + 1e-12]      # a near tie: reported
    x[0, 0, 0, 2:] = [1.1, 2.1]              # a clear maximum
    # δ is the float32 rounding of the pool's input (1.1 is not a float32 number)
    report = well_posedness(torch.nn.Sequential(torch.nn.MaxPool2d(2)), [x])
    assert report.near_ties == {"0": 1}, report
    x[0, 0, 0, 1] = 2.2                      # separated: well-posed
    assert well_posedness(torch.nn.Sequential(torch.nn.MaxPool2d(2)), [x])
