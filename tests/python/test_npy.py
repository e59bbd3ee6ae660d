"""Single tensors as .npy files, both ways, against numpy."""
import numpy as np
import pytest

import cvis


def test_save_is_read_by_numpy(tmp_path):
    a = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    cvis.save_npy(tmp_path / "a.npy", a)
    b = np.load(tmp_path / "a.npy")
    assert b.dtype == np.float32 and np.array_equal(a, b)


@pytest.mark.parametrize("dtype,order", [(np.float32, "C"), (np.float64, "F"), (">f4", "C"),
                                         (np.float16, "F")])
def test_load_what_numpy_writes(tmp_path, dtype, order):
    a = np.asarray(np.random.default_rng(1).normal(size=(3, 5)), dtype=dtype, order=order)
    np.save(tmp_path / "a.npy", a)
    assert np.array_equal(cvis.load_npy(tmp_path / "a.npy"), a.astype(np.float32))


def test_errors(tmp_path):
    with pytest.raises(cvis.IOError):
        cvis.load_npy(tmp_path / "missing.npy")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(cvis.FormatError):
        cvis.load_npy(tmp_path / "bad.npy")
    np.save(tmp_path / "int.npy", np.arange(4))
    with pytest.raises(cvis.UnsupportedError):
        cvis.load_npy(tmp_path / "int.npy")
