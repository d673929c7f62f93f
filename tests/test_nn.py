"""nn: Module registration, state_dict save/load (no pickle), modes, hooks, layers, init."""
import numpy as np
import pytest

import minidl
from minidl import nn, tensor
from minidl.gradcheck import gradcheck


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8, rng=0)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(8, 3, rng=1)
        self.register_buffer("steps", np.zeros(1))

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))


def test_parameters_are_registered_by_assignment():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert sum(p.size for p in m.parameters()) == 4 * 8 + 8 + 8 * 3 + 3
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "drop", "fc2"]
    assert m.get_submodule("fc2") is m.fc2
    with pytest.raises(KeyError, match="no submodule 'fc3'"):
        m.get_submodule("fc3")


def test_shared_parameter_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2


def test_train_eval_switch_dropout():
    m = TwoLayer()
    x = tensor(np.ones((2, 4)))
    m.eval()
    assert not m.drop.training
    assert np.allclose(m(x).numpy(), m(x).numpy())
    m.train()
    assert m.drop.training


def test_state_dict_roundtrip_through_npz_without_pickle(tmp_path):
    m = TwoLayer()
    m.steps[:] = 7
    path = tmp_path / "w.npz"
    m.save(path)
    with np.load(path, allow_pickle=False) as f:     # plain arrays only
        assert set(f.files) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "steps"}
    other = TwoLayer()
    other.load(path)
    for (k, a), (_, b) in zip(m.state_dict().items(), other.state_dict().items()):
        assert np.array_equal(a, b), k
    assert other.steps[0] == 7


def test_load_state_dict_errors_name_the_key():
    m = TwoLayer()
    sd = m.state_dict()
    missing = dict(sd)
    del missing["fc1.bias"]
    with pytest.raises(KeyError, match="missing keys \\['fc1.bias'\\]"):
        m.load_state_dict(missing)
    extra = dict(sd, bogus=np.zeros(1))
    with pytest.raises(KeyError, match="unexpected keys \\['bogus'\\]"):
        m.load_state_dict(extra)
    m.load_state_dict(extra, strict=False)
    bad = dict(sd, **{"fc2.weight": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="'fc2.weight' has shape \\(2, 2\\).*\\(3, 8\\)"):
        m.load_state_dict(bad)


def test_forward_hook_captures_and_can_be_removed():
    m = TwoLayer().eval()
    seen = []
    handle = m.fc1.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    m(tensor(np.ones((5, 4))))
    handle.remove()
    m(tensor(np.ones((5, 4))))
    assert seen == [(5, 8)]


def test_linear_matches_formula_and_gradchecks():
    lin = nn.Linear(4, 3, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    assert np.allclose(lin(tensor(x)).numpy(), x @ lin.weight.data.T + lin.bias.data, atol=1e-6)
    assert lin(tensor(np.ones((2, 5, 4), dtype=np.float32))).shape == (2, 5, 3)
    lin.double()
    gradcheck(lambda a: lin(a), [x.astype(np.float64)])


def test_sequential_indexing_and_repr():
    s = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Sigmoid(), nn.Flatten(), nn.Identity(), nn.LeakyReLU(0.2))
    assert len(s) == 6 and isinstance(s[1], nn.Tanh) and len(s[1:3]) == 2
    assert "LeakyReLU(negative_slope=0.2)" in repr(s)
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), 3)


def test_module_without_super_init_errors():
    class Bad(nn.Module):
        def __init__(self):
            self.w = 1

    with pytest.raises(RuntimeError, match="super"):
        Bad()


def test_init_scales_and_reproducibility():
    w = nn.Parameter(np.empty((256, 512), dtype=np.float32))
    nn.init.kaiming_normal_(w, nonlinearity="relu", rng=0)
    assert w.data.std() == pytest.approx(np.sqrt(2 / 512), rel=0.05)
    nn.init.xavier_uniform_(w, rng=0)
    assert w.data.std() == pytest.approx(np.sqrt(2 / (512 + 256)), rel=0.05)
    a = nn.Linear(5, 5, rng=3).weight.data
    b = nn.Linear(5, 5, rng=3).weight.data
    assert np.array_equal(a, b)
    assert np.abs(a).max() <= 1 / np.sqrt(5)       # PyTorch default: U(±1/sqrt(fan_in))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.init.kaiming_uniform_(w, nonlinearity="swish")


def test_apply_and_zero_grad():
    m = TwoLayer()
    m.apply(lambda mod: nn.init.zeros_(mod.bias) if isinstance(mod, nn.Linear) else None)
    assert np.all(m.fc1.bias.data == 0)
    m(tensor(np.ones((2, 4)))).sum().backward()
    assert m.fc1.weight.grad is not None
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_module_to_keeps_parameter_identity():
    m = TwoLayer()
    before = list(m.parameters())
    m.to(dtype=np.float64)
    assert all(a is b for a, b in zip(before, m.parameters()))
    assert m.fc1.weight.dtype == np.float64
    if not minidl.cuda_available():
        with pytest.raises(RuntimeError, match="no usable GPU"):
            m.to("cuda")


def test_capture_activations_and_forward_until():
    calls = []

    class Spy(nn.Module):
        def forward(self, x):
            calls.append(1)
            return x

    m = nn.Sequential(nn.Linear(4, 6, rng=0), nn.ReLU(), Spy(), nn.Linear(6, 2, rng=1))
    x = tensor(np.ones((3, 4), dtype=np.float32))
    with nn.capture_activations(m, ["1", "3"]) as acts:
        out = m(x)
    assert acts["1"].shape == (3, 6) and np.allclose(acts["3"].numpy(), out.numpy())
    assert len(m[1]._forward_hooks) == 0                 # hooks removed on exit
    calls.clear()
    h = nn.forward_until(m, x, "1")
    assert h.shape == (3, 6) and calls == []             # later layers never ran
    assert np.all(h.numpy() >= 0)
    with pytest.raises(KeyError, match="no submodule"):
        nn.forward_until(m, x, "9")


def test_assigning_a_new_array_to_a_buffer_keeps_it_registered():
    m = TwoLayer()
    m.steps = np.full(1, 5.0)              # replaced, not updated in place
    assert m.state_dict()["steps"][0] == 5.0
    m.steps = nn.Parameter(np.zeros(1))    # a Parameter takes the name over
    assert "steps" in dict(m.named_parameters()) and "steps" not in m._buffers
