"""Reliability of the commands (issue 32): utterance ids never become paths outside OUT, no command writes over
its inputs, workers die with their parent on any signal, one-line errors instead of tracebacks, reruns skip what
is done, and nothing touches the network at import or model load.

Every case runs the command's ``main`` as ``python -m`` would (in this process, to spare the start-up; the signal
and network cases in their own processes) and checks the exit, the one ``error:`` line and that nothing was written
where it must not be.
"""

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import assert_user_error, run_main, small_s2s

from espnet_softvc.utils.errors import UserError

CONVERT, DENOISE, GENERATE = "espnet_softvc.bin.convert", "espnet_softvc.bin.denoise", "espnet_softvc.bin.generate"
ENCODE, MELS, CHECKPOINT = "espnet_softvc.bin.encode", "espnet_softvc.bin.mels", "espnet_softvc.bin.checkpoint"


def write_speech(path, seconds=0.5, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = 0.2 * np.sin(2 * np.pi * 180 * t) + 0.02 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav.astype(np.float32), sr, subtype="PCM_16")
    return path


def convert_args(small, kind="soft"):
    encoder = small / ("soft_encoder.pt" if kind == "soft" else "km.pt")
    return ["--content_encoder", encoder, "--acoustic_model", small / f"acoustic-{kind}.pt"]


def snapshot(root):
    """{path: bytes} of every file under ``root``: what a failed command must leave as it was."""
    return {p: p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def models(small, tmp_path_factory):
    """A denoising postnet checkpoint, one with a malformed config, and an ESPnet model file (config.yaml beside)."""
    from espnet_softvc.postnet.model import DenoisingPostnet
    from espnet_softvc.tasks.load import load_model, save_espnet

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    state = DenoisingPostnet("conv").state_dict()
    torch.save({"model": state, "config": {"arch": "conv"}}, root / "postnet.pt")
    torch.save({"model": state, "config": {"arch": "conv", "layers": "three"}}, root / "bad_config.pt")
    torch.save({"model": state, "config": ["conv"]}, root / "list_config.pt")
    torch.save({"model": {"w": torch.zeros(1)}, "config": {"arch": "conv"}}, root / "bad_weights.pt")
    save_espnet(load_model(small / "acoustic-soft.pt")[0], root / "espnet")
    return root


# ---- 1. utterance ids never become paths outside OUT ----
@pytest.mark.parametrize("utt", ["../../x", "ABSOLUTE", "..", "a/b"])
def test_an_utterance_id_that_is_not_a_file_name_is_refused_before_any_work(small, tmp_path, utt):
    utt = str(tmp_path / "VICTIM") if utt == "ABSOLUTE" else utt
    wav = write_speech(tmp_path / "src" / "a.wav")
    (tmp_path / "wav.scp").write_text(f"{utt} {wav}\n")
    out = tmp_path / "deep" / "er" / "out"
    before = snapshot(tmp_path)
    proc = run_main(CONVERT, tmp_path / "wav.scp", out, *convert_args(small))
    assert_user_error(proc, "wav.scp", f"utterance id {utt!r} is not a plain file name")
    assert snapshot(tmp_path) == before and not out.exists()


def test_decoding_and_the_results_figures_refuse_ids_that_are_not_file_names(small, tmp_path):
    import kaldiio

    from espnet_softvc.bin.softvc_inference import Unit2Speech, decode
    from espnet_softvc.scoring.plots import plot_mels

    scp = tmp_path / "units.scp"
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path / 'units.ark'},{scp}") as writer:
        writer["../escape"] = np.zeros((5, 256), np.float32)
    u2s = Unit2Speech(model_file=str(small / "acoustic-soft.pt"))
    with pytest.raises(UserError, match="utterance id '../escape' is not a plain file name"):
        decode(u2s, [(str(scp), "units", "kaldi_ark")], tmp_path / "out")
    with pytest.raises(UserError, match="utterance id '../escape' is not a plain file name"):
        plot_mels([], {"../escape": np.zeros((4, 128))}, ["../escape"], tmp_path / "figs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["units.ark", "units.scp"]


def test_check_file_name_takes_plain_names_only():
    from espnet_softvc.utils.io import check_file_name

    for name in ("LJ001-0001", "spk_a.b..c", "utt 1"[:3], "ñandú"):
        assert check_file_name(name, "scp") == name
    for name in ("", ".", "..", "../x", "/abs", "a\\b", "a\0b"):
        with pytest.raises(UserError, match="not a plain file name"):
            check_file_name(name, "scp")


# ---- 2. no command writes over its inputs ----
def test_convert_refuses_a_wav_scp_whose_wavs_lie_in_out(small, tmp_path):
    out = tmp_path / "out"
    wav = write_speech(out / "utt1.wav")
    (tmp_path / "wav.scp").write_text(f"utt1 {wav}\n")
    before = snapshot(tmp_path)
    proc = run_main(CONVERT, tmp_path / "wav.scp", out, *convert_args(small))
    assert_user_error(proc, "utt1.wav: this output would overwrite the input")
    assert snapshot(tmp_path) == before
    link = tmp_path / "link"  # the same through a symbolic link
    link.symlink_to(out)
    (tmp_path / "wav.scp").write_text(f"utt1 {link / 'utt1.wav'}\n")
    assert_user_error(run_main(CONVERT, tmp_path / "wav.scp", out, *convert_args(small)), "would overwrite the input")


def test_denoise_generate_and_checkpoint_refuse_to_overwrite_their_inputs(small, models, tmp_path):
    from espnet_softvc.feats.log_mel import wav_to_mel

    wavs, mels, units = tmp_path / "wavs", tmp_path / "mels", tmp_path / "units"
    write_speech(wavs / "a.wav")
    mels.mkdir()
    np.save(mels / "a.npy", wav_to_mel(wavs / "a.wav"))
    units.mkdir()
    np.save(units / "a.npy", np.random.default_rng(0).standard_normal((10, 256)).astype(np.float32))
    before = snapshot(tmp_path)
    cases = [
        (DENOISE, [mels, mels, "--model_file", models / "postnet.pt"], "would overwrite the input"),
        (DENOISE, [wavs, wavs, "--model_file", models / "postnet.pt", "--write_wav"], "would overwrite the input"),
        (GENERATE, ["soft", units, units, "--checkpoint", small / "acoustic-soft.pt", "--device", "cpu"], "a.npy"),
        (MELS, [mels, mels, "--extension", ".npy"], "a.npy: this output would overwrite the input"),
        (CHECKPOINT, ["to-original", models / "espnet/model.pth", models / "espnet/model.pth"], "model.pth: this"),
        (CHECKPOINT, ["to-espnet", models / "espnet/model.pth", models / "espnet"], "would overwrite the input"),
    ]
    espnet_before = snapshot(models / "espnet")
    for module, args, needle in cases:
        assert_user_error(run_main(module, *args), needle)
    assert snapshot(tmp_path) == before and snapshot(models / "espnet") == espnet_before


def test_an_unwritable_out_is_reported_before_any_conversion(small, tmp_path):
    write_speech(tmp_path / "in" / "ok.wav")
    (tmp_path / "in" / "broken.wav").write_text("not audio\n")  # converting first would report this file
    (tmp_path / "file").write_text("")
    proc = run_main(CONVERT, tmp_path / "in", tmp_path / "file" / "out", *convert_args(small))
    assert_user_error(proc, "file/out: cannot write the output directory")
    proc = run_main(CONVERT, tmp_path / "in", tmp_path / "file", *convert_args(small))
    assert_user_error(proc, "file: the output directory is a file")


# ---- 3. workers end with their parent ----
def children(pid):
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended (a container's init may not reap it)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_workers_end_with_their_parent_on_any_signal(small, tmp_path, sig):
    for i in range(24):
        write_speech(tmp_path / "in" / f"{i:02d}.wav", seconds=3, seed=i)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", CONVERT, tmp_path / "in", out, *convert_args(small), "--nj", "2"]
    # a user's Ctrl-C reaches a command whose SIGINT is not ignored; a background job of a non-interactive shell (CI
    # started with `&`) inherits it ignored, and Python then keeps it so: give the command the default disposition
    reset = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen(
        list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=reset
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*.wav")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # killed while converting: the first output is written, others are under way
        workers = children(proc.pid)
        assert proc.poll() is None and len(workers) == 2, (workers, proc.poll())
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(alive, workers)), f"workers {workers} outlived their parent ({sig.name})"
        err = proc.stderr.read()
        assert "Traceback" not in err, err
        if sig != signal.SIGKILL:
            assert proc.returncode == 128 + sig and err.strip().splitlines()[-1].startswith("error: "), err
        assert not list(out.rglob("*.tmp")) or sig == signal.SIGKILL  # a killed writer's temporaries: next write
    finally:
        proc.kill()
        proc.wait()


# ---- 4. one line, not a traceback ----
def test_a_missing_or_unknown_device_is_one_line(small, tmp_path):
    write_speech(tmp_path / "in" / "a.wav")
    np.save(tmp_path / "u.npy", np.zeros((5, 256), np.float32))
    (tmp_path / "units").mkdir()
    np.save(tmp_path / "units" / "a.npy", np.zeros((5, 256), np.float32))
    for device in ("cuda:99", "nonsense"):
        cases = [
            (CONVERT, [tmp_path / "in", tmp_path / "o1", *convert_args(small), "--device", device]),
            (ENCODE, ["soft", tmp_path / "in", tmp_path / "o2", "--checkpoint", small / "soft_encoder.pt"]),
            (GENERATE, ["soft", tmp_path / "units", tmp_path / "o3", "--checkpoint", small / "acoustic-soft.pt"]),
        ]
        for module, args in cases:
            assert_user_error(run_main(module, *args, "--device", device), f"--device {device}: ")
        with pytest.raises(UserError, match=f"--device {device}: "):
            small_s2s(small, device=device)


def test_malformed_postnet_checkpoints_are_one_line(small, models, tmp_path):
    from espnet_softvc.feats.log_mel import wav_to_mel

    write_speech(tmp_path / "in" / "a.wav")
    (tmp_path / "mels").mkdir()
    np.save(tmp_path / "mels" / "a.npy", wav_to_mel(tmp_path / "in" / "a.wav"))
    for name in ("bad_config.pt", "list_config.pt", "bad_weights.pt"):
        proc = run_main(DENOISE, tmp_path / "mels", tmp_path / "o", "--model_file", models / name)
        assert_user_error(proc, name)
        proc = run_main(CONVERT, tmp_path / "in", tmp_path / "o2", *convert_args(small), "--postnet", models / name)
        assert_user_error(proc, name)


def test_checkpoint_conversion_into_a_directory_or_a_file_is_one_line(small, models, tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    proc = run_main(CHECKPOINT, "to-original", models / "espnet/model.pth", tmp_path / "dir")
    assert_user_error(proc, "dir: is a directory")
    proc = run_main(CHECKPOINT, "to-espnet", small / "acoustic-soft.pt", tmp_path / "file")
    assert_user_error(proc, "file: the output directory is a file")


def test_speech2speech_refuses_a_bad_rate_or_empty_audio(small):
    s2s = small_s2s(small)
    wav = np.zeros(16000, np.float32)
    for fs in (0, -16000, 22050.5, None, "16000", True):
        with pytest.raises(UserError, match="sample rate"):
            s2s(wav, fs, name="utt")
    with pytest.raises(UserError, match="utt: empty audio"):
        s2s(np.zeros(0, np.float32), 22050, name="utt")
    assert s2s(wav, 16000.0)["wav"].shape == (16000,)  # a whole number given as a float is a rate


# ---- 6. messages that say what to do ----
def test_pipes_run_with_allow_pipes_and_a_single_wav_converts(small, tmp_path):
    wav = write_speech(tmp_path / "src" / "a.wav")
    (tmp_path / "wav.scp").write_text(f"utt1 cat {wav} |\n")
    proc = run_main(CONVERT, tmp_path / "wav.scp", tmp_path / "o", *convert_args(small))
    assert_user_error(proc, "utt1 is a shell pipe; pass --allow_pipes to run it")
    run_main(CONVERT, tmp_path / "wav.scp", tmp_path / "o", *convert_args(small), "--allow_pipes", check=True)
    assert sf.info(tmp_path / "o" / "utt1.wav").frames == 8000
    run_main(CONVERT, wav, tmp_path / "one", *convert_args(small), check=True)  # a wav, not a wav.scp
    run_main(CONVERT, wav, tmp_path / "two" / "b.wav", *convert_args(small), check=True)
    assert sf.info(tmp_path / "one" / "a.wav").frames == sf.info(tmp_path / "two" / "b.wav").frames == 8000
    assert_user_error(run_main(CONVERT, wav, wav, *convert_args(small)), "a.wav: this output would overwrite")


def test_uppercase_extensions_are_converted(small, tmp_path):
    write_speech(tmp_path / "in" / "LOUD.WAV")
    write_speech(tmp_path / "in" / "quiet.wav")
    run_main(CONVERT, tmp_path / "in", tmp_path / "out", *convert_args(small), check=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name[0] != ".") == ["LOUD.WAV", "quiet.wav"]


def test_errors_of_a_packed_model_name_the_package(small, models, tmp_path):
    from espnet_softvc.bin.pack import pack_model
    from espnet_softvc.bin.vc_inference import Speech2Speech

    zip_path = pack_model(tmp_path / "m.zip", models / "espnet/config.yaml", models / "espnet/model.pth", root=models)
    with pytest.raises(UserError) as error:
        Speech2Speech.from_pretrained(zip_path, content_encoder=str(small / "soft_encoder.pt"), sid=1)
    assert str(error.value).startswith(f"{zip_path} (model_file): speaker ids [1]"), error.value
    assert "softvc-model-" not in str(error.value)


# ---- a rerun skips what is complete ----
def test_a_rerun_skips_complete_outputs_and_redoes_missing_or_stale_ones(small, tmp_path):
    for i in range(3):
        write_speech(tmp_path / "in" / f"{i}.wav", seed=i)
    out = tmp_path / "out"
    run_main(CONVERT, tmp_path / "in", out, *convert_args(small), check=True)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")}
    (out / "1.wav").unlink()
    (out / "2.wav").write_bytes(b"RIFF")  # not a wav: redone
    proc = run_main(CONVERT, tmp_path / "in", out, *convert_args(small), check=True)
    assert "skipping 1 of 3 wavs already converted" in proc.stdout, proc.stdout
    assert (out / "0.wav").stat().st_mtime_ns == stamps["0.wav"] and sf.info(out / "2.wav").frames == 8000
    proc = run_main(CONVERT, tmp_path / "in", out, *convert_args(small, "discrete"), check=True)  # other model
    assert "skipping" not in proc.stdout and (out / "0.wav").stat().st_mtime_ns != stamps["0.wav"]


# ---- 7. no network at import or model load ----
NO_NETWORK = """
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError("network blocked by the test")
socket.getaddrinfo = socket.create_connection = socket.socket.connect = refuse
from espnet_softvc.tasks.load import load_model
load_model(sys.argv[1])
import espnet2.tasks.tts, espnet2.bin.tts_inference
print("attempts", attempts)
sys.exit(1 if attempts else 0)
"""


@pytest.mark.slow  # a fresh interpreter imports ESPnet's tasks (9 s)
def test_loading_an_espnet_model_touches_no_network(models):
    env = dict(os.environ, NLTK_DATA="/nonexistent")  # no NLTK data: g2p_en would download it
    proc = subprocess.run(
        [sys.executable, "-c", NO_NETWORK, str(models / "espnet/model.pth")], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def test_a_zombie_writer_counts_as_dead_for_its_temporaries(tmp_path):
    """A worker killed with its parent can stay a zombie (a container's init may not reap it): its ``atomic_path``
    temporaries are stale all the same, and the next write of that file removes them."""
    from espnet_softvc.utils.io import _alive, atomic_path

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while not Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].startswith(" Z"):
        assert time.monotonic() < deadline
        time.sleep(0.05)  # exited, not yet reaped: a zombie
    stale = tmp_path / f".out.wav.{child.pid}.abc.tmp"
    stale.write_bytes(b"partial")
    assert not _alive(child.pid) and _alive(os.getpid())
    with atomic_path(tmp_path / "out.wav") as tmp:
        tmp.write_bytes(b"done")
    assert not stale.exists() and (tmp_path / "out.wav").read_bytes() == b"done"
    child.wait()


def _write_and_hang(path):  # a worker's write under way when its parent ends the pool
    from espnet_softvc.utils.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(b"partial")
        time.sleep(600)


def test_a_pool_ended_mid_write_kills_its_workers_and_removes_their_temporaries(tmp_path):
    """Leaving a ``Pool`` by an exception (a signal, in a CLI) kills its workers with SIGTERM's default action (a
    Python handler can lose the signal before a blocking call, and the pool's terminate then waits for ever), then
    removes the temporaries those workers left under ``out_dir``; a live writer's temporary there stays."""
    from espnet_softvc.utils.io import atomic_path
    from espnet_softvc.utils.workers import Pool

    out = tmp_path / "out"
    with atomic_path(out / "sub" / "mine.wav") as mine:  # the parent's own write, under way
        with pytest.raises(RuntimeError), Pool(2, out_dir=out) as pool:
            pool.pool.map_async(_write_and_hang, [out / "a.wav", out / "sub" / "b.wav"], chunksize=1)
            deadline = time.monotonic() + 60
            while len(list(out.rglob("*.tmp"))) < 3:
                assert time.monotonic() < deadline, list(out.rglob("*"))
                time.sleep(0.05)
            raise RuntimeError("interrupted")
        assert [p.exitcode for p in pool.workers] == [-signal.SIGTERM] * 2
        assert list(out.rglob("*.tmp")) == [mine]
    assert not list(out.rglob("*.tmp")) and (out / "sub" / "mine.wav").exists()
