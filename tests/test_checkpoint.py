"""Checkpoints: Module.save / Module.load / Module.load_state_dict (minidl/nn/module.py).

What is checked, and why each matters when training runs for hours:
  * a save is atomic: ``kill -9`` or an exception mid-save leaves the previous checkpoint loadable
    and unchanged (a real SIGKILL of a process writing ~100 MB), and no temporary file behind;
  * the file written is exactly the name given (``np.savez(name)`` would append ``.npz``);
  * a truncated or corrupt file raises ``CheckpointError`` (a ValueError) naming the file;
  * a load is all or nothing: a bad shape or dtype in the last key changes no weight;
  * a dtype change is refused unless ``cast=True``; a round trip is exact.
"""
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from minidl import Tensor, nn
from minidl.nn.module import CheckpointError, load_npz, save_npz

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Net(nn.Module):
    """Parameters, a float buffer and an int64 buffer (batch norm's), in float32 or float64."""

    def __init__(self, dtype=np.float32, rng=0):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, rng=rng, dtype=dtype)
        self.bn = nn.BatchNorm2d(4, dtype=dtype)
        self.fc = nn.Linear(4, 3, rng=rng + 1, dtype=dtype)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(axis=(2, 3)))


def trained_net(dtype=np.float32, rng=0):
    """A Net whose buffers moved away from their initial values (so a round trip proves something)."""
    net = Net(dtype, rng)
    net(Tensor(np.random.default_rng(rng).standard_normal((2, 2, 5, 5)).astype(dtype)))
    return net


def snapshot(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def assert_state_equal(model, expected):
    state = model.state_dict()
    assert list(state) == list(expected)
    for k, v in expected.items():
        assert state[k].dtype == v.dtype, k
        np.testing.assert_array_equal(state[k], v, err_msg=k)


# ---- round trip and file name ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact_and_keeps_dtypes(tmp_path, dtype):
    net = trained_net(dtype)
    assert int(net.bn.num_batches_tracked) == 1
    net.save(tmp_path / "net.npz")
    other = Net(dtype, rng=5).load(tmp_path / "net.npz")
    assert_state_equal(other, net.state_dict())
    assert other.bn.num_batches_tracked.dtype == np.int64


def test_the_file_written_is_the_name_given(tmp_path):
    net = trained_net()
    net.save(str(tmp_path / "x.ckpt"))                        # not x.ckpt.npz
    assert os.listdir(tmp_path) == ["x.ckpt"]
    assert oct(os.stat(tmp_path / "x.ckpt").st_mode & 0o777) == oct(0o644)   # not mkstemp's 0o600
    assert_state_equal(Net(rng=5).load(str(tmp_path / "x.ckpt")), net.state_dict())
    with np.load(tmp_path / "x.ckpt", allow_pickle=False) as f:               # still a plain .npz
        assert sorted(f.files) == sorted(net.state_dict())


def test_values_are_kept_as_they_are_nan_included(tmp_path):
    net = trained_net()
    net.fc.bias.data[:] = [np.nan, np.inf, -1.5]
    net.save(tmp_path / "w.npz")
    np.testing.assert_array_equal(Net(rng=5).load(tmp_path / "w.npz").fc.bias.numpy(), [np.nan, np.inf, -1.5])


def test_save_into_a_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        trained_net().save(tmp_path / "nope" / "w.npz")


# ---- atomic saves ------------------------------------------------------------------------------

@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch, error):
    path = tmp_path / "w.ckpt"
    old = trained_net(rng=0)
    old.save(path)
    real_write = np.lib.format.write_array
    written = []

    def failing_write(fp, array, *args, **kwargs):          # writes two arrays, then fails
        if len(written) == 2:
            raise error
        written.append(array.shape)
        real_write(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(type(error)):
        trained_net(rng=3).save(path)
    assert len(written) == 2                                  # it did fail mid-write
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["w.ckpt"]
    assert_state_equal(Net(rng=5).load(path), old.state_dict())


def test_an_object_array_is_refused_when_saving(tmp_path):
    with pytest.raises(ValueError, match="pickle"):
        save_npz(tmp_path / "w.npz", {"a": np.zeros(2), "b": np.array([{"x": 1}], dtype=object)})
    assert os.listdir(tmp_path) == []


# A child process saves a ~100 MB model (all ones), then saves it again (all twos) with numpy's
# array writer slowed down after two of its four arrays: the parent kills it with SIGKILL while
# the second file is half written, so the kill lands mid-write every time.
KILLED_MID_WRITE = textwrap.dedent("""
    import sys, time
    import numpy as np
    from minidl import nn

    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            for i in range(4):                           # 4 x 6.25M float32 = 100 MB
                setattr(self, f"w{i}", nn.Parameter(np.ones(6_250_000, dtype=np.float32)))

    model, path = Big(), sys.argv[1]
    model.save(path)
    print("saved ones", flush=True)
    for p in model.parameters():
        p.data[...] = 2.0
    real_write, count = np.lib.format.write_array, [0]

    def slow_write(fp, array, *args, **kwargs):
        real_write(fp, array, *args, **kwargs)
        count[0] += 1
        if count[0] == 2:
            print("half written", flush=True)
            time.sleep(60)

    np.lib.format.write_array = slow_write
    model.save(path)
    print("saved twos", flush=True)                      # never reached
""")


def _child(script, *args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=REPO)


def _read_line(proc):
    line = proc.stdout.readline().strip()
    assert line, f"the child exited early with code {proc.wait()}"
    return line


def test_kill_9_mid_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "big.ckpt"
    proc = _child(KILLED_MID_WRITE, str(path))
    try:
        assert _read_line(proc) == "saved ones"
        assert _read_line(proc) == "half written"
        temporary = [f for f in os.listdir(tmp_path) if f != "big.ckpt"]
        assert len(temporary) == 1 and temporary[0].startswith(".big.ckpt.")
        assert os.path.getsize(tmp_path / temporary[0]) >= 50_000_000     # two arrays in, two to go
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    state = load_npz(path)                                   # the previous checkpoint, complete
    assert sorted(state) == ["w0", "w1", "w2", "w3"]
    for k, v in state.items():
        assert v.shape == (6_250_000,) and v.dtype == np.float32 and (v == 1.0).all(), k


# No patching here: a child rewrites a ~64 MB checkpoint in a loop (generation g: every weight
# equals g) and is killed at an arbitrary moment. Whenever it dies, the file holds one complete
# generation: never a mix, never a truncated file.
SAVING_IN_A_LOOP = textwrap.dedent("""
    import sys
    import numpy as np
    from minidl import nn

    model = nn.Module()
    for i in range(4):
        setattr(model, f"w{i}", nn.Parameter(np.zeros(4_000_000, dtype=np.float32)))
    for generation in range(1, 1000):
        for p in model.parameters():
            p.data[...] = generation
        model.save(sys.argv[1])
        print(generation, flush=True)
""")


def test_kill_9_at_an_arbitrary_moment_leaves_one_complete_checkpoint(tmp_path):
    path = tmp_path / "loop.ckpt"
    proc = _child(SAVING_IN_A_LOOP, str(path))
    try:
        assert _read_line(proc) == "1"                        # one complete save exists
        time.sleep(0.05 + 0.3 * np.random.default_rng().random())   # then, somewhere in a save
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    state = load_npz(path)
    generation = state["w0"][0]
    assert generation >= 1
    for k, v in state.items():
        assert v.shape == (4_000_000,) and (v == generation).all(), k


# ---- damaged or missing files ------------------------------------------------------------------

def test_a_missing_file_is_file_not_found_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such.ckpt"):
        Net().load(tmp_path / "no_such.ckpt")


def test_truncated_files_raise_checkpoint_error_naming_the_file(tmp_path):
    net = trained_net()
    net.save(tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    model = Net(rng=5)
    before = snapshot(model)
    for n in (0, 1, 30, len(data) // 2, len(data) - 100, len(data) - 1):
        path = tmp_path / f"cut_{n}.npz"
        path.write_bytes(data[:n])
        with pytest.raises(CheckpointError, match=f"cut_{n}.npz.*not a valid, complete minidl checkpoint"):
            model.load(path)
        assert_state_equal(model, before)                     # nothing was loaded
    assert issubclass(CheckpointError, ValueError)


def test_a_corrupted_member_is_found(tmp_path):
    trained_net().save(tmp_path / "w.npz")
    data = bytearray((tmp_path / "w.npz").read_bytes())
    data[200] ^= 0xFF                                         # inside the first array's bytes
    (tmp_path / "w.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"w.npz.*(CRC|entry)"):
        Net(rng=5).load(tmp_path / "w.npz")


def test_files_that_are_not_checkpoints(tmp_path):
    cases = {"random.npz": np.random.default_rng(0).bytes(1000),
             "pickle.npz": pickle.dumps({"fc.weight": np.zeros((3, 4))})}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    np.save(tmp_path / "single.npy", np.zeros(3))
    np.savez(tmp_path / "objects.npz", ok=np.zeros(2), bad=np.array([None, 1], dtype=object))
    with zipfile.ZipFile(tmp_path / "text.npz", "w") as zf:       # a zip, but no .npy inside
        zf.writestr("notes.txt", "hello")
    expected = {"random.npz": "random.npz", "pickle.npz": "pickle.npz", "single.npy": "single.npy.*single .npy",
                "objects.npz": "objects.npz.*'bad'.*[Oo]bject arrays", "text.npz": "text.npz.*'notes.txt'.*not an array"}
    for name, pattern in expected.items():
        with pytest.raises(CheckpointError, match=pattern):
            Net().load(tmp_path / name)


# ---- all-or-nothing loads, dtypes --------------------------------------------------------------

def test_a_bad_last_key_changes_no_weight(tmp_path):
    model = Net(rng=5)
    before = snapshot(model)
    good = trained_net().state_dict()

    def last(key, value):                                     # the bad entry comes last: every
        state = {k: v for k, v in good.items() if k != key}   # other weight is checked before it
        state[key] = value
        return state

    bad_shape = last("fc.bias", np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"'fc.bias' has shape \(4,\) in the state but \(3,\)"):
        model.load_state_dict(bad_shape)
    assert_state_equal(model, before)
    bad_dtype = last("fc.bias", np.zeros(3, np.float64))
    with pytest.raises(TypeError, match="'fc.bias' is float64 in the state but float32 in the model"):
        model.load_state_dict(bad_dtype)
    assert_state_equal(model, before)
    save_npz(tmp_path / "bad.npz", bad_shape)                # the same through a file
    with pytest.raises(ValueError, match="fc.bias"):
        model.load(tmp_path / "bad.npz")
    assert_state_equal(model, before)


def test_dtype_mismatch_raises_unless_cast(tmp_path):
    doubles = trained_net(np.float64)
    doubles.save(tmp_path / "f64.npz")
    model = Net(np.float32, rng=5)
    before = snapshot(model)
    with pytest.raises(TypeError, match=r"parameter 'conv.weight' is float64 in the state but float32 "
                                        r"in the model; pass cast=True"):
        model.load(tmp_path / "f64.npz")
    assert_state_equal(model, before)
    model.load(tmp_path / "f64.npz", cast=True)
    for k, v in model.state_dict().items():                   # the model keeps its own dtypes
        assert v.dtype == before[k].dtype, k
        np.testing.assert_array_equal(v, doubles.state_dict()[k].astype(before[k].dtype), err_msg=k)
    state = doubles.state_dict()                              # buffers too, integers included
    state = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in state.items()}
    state["bn.num_batches_tracked"] = state["bn.num_batches_tracked"].astype(np.int32)
    with pytest.raises(TypeError, match="buffer 'bn.num_batches_tracked' is int32 in the state but int64"):
        model.load_state_dict(state)
    model.load_state_dict(state, cast=True)
    assert model.bn.num_batches_tracked.dtype == np.int64


def test_object_or_string_arrays_in_a_state_dict_are_refused():
    model = Net()
    state = dict(model.state_dict(), **{"fc.bias": np.array(["a", "b", "c"])})
    with pytest.raises(TypeError, match="'fc.bias' holds <U1 data, not numbers"):
        model.load_state_dict(state, cast=True)


def test_load_keeps_each_arrays_device_and_does_not_share_memory(device):
    model = Net().to(device)
    state = trained_net(rng=3).state_dict()
    model.load_state_dict(state)
    for name, p in model.named_parameters():
        assert p.device == device, name
    assert model.bn.running_mean.__class__ is model.bn.running_var.__class__
    state["fc.bias"][:] = 123.0                                # the caller's arrays stay theirs
    assert not (model.fc.bias.numpy() == 123.0).any()
