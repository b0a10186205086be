"""softvc-samples: the samples page of a fake stage-11 experiment, checked on disk and in a real headless browser
(Debian's chromium, installed by scripts/setup.sh: a missing browser fails the test)."""

import csv
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import soundfile as sf
from conftest import assert_user_error, run_cli

CLI = "espnet_softvc.bin.samples"
SPEAKERS = {"spkA": ["spkA_001", "spkA_002", "spkA_003"], "spkB": ["spkB_001", "spkB_002"]}
TEXT = {"spkA_001": "the birch canoe slid", "spkA_002": "glue the sheet", "spkA_003": "it's easy to tell",
        "spkB_001": "rice is often served", "spkB_002": "the juice of lemons"}  # fmt: skip
NOT_SCORED = "spkB_002"  # an utterance with empty score cells


def _tone(seconds, sr, f0, seed):
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    wav = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.2 * t)) + 0.02 * rng.standard_normal(t.size)
    return (wav * np.hanning(t.size)).astype(np.float32)


def _scp(path, entries):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(entries.items())))


def _scores(path, utts, seed):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = "utt,seconds,wer,cer,hyp,spk_sim,spk_sim_src,closer_to_target,dnsmos_ovrl,dnsmos_sig,dnsmos_bak,mcd"
    columns += ",log_f0_rmse,f0_corr"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns.split(","))
        for utt in utts:
            if utt == NOT_SCORED:
                writer.writerow([utt, "0.5000"] + [""] * 12)
                continue
            wer, sim, src, ovrl = rng.uniform(0, 50), rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.6), rng.uniform(2, 4)
            row = [utt, "0.5000", f"{wer:.4f}", "12.5000", f"hyp of {utt}", f"{sim:.4f}", f"{src:.4f}", "1.0000"]
            writer.writerow(row + [f"{ovrl:.4f}", "3.5000", "3.9000", "", "", ""])
    path.with_name("summary.json").write_text(json.dumps({"n_utts": len(utts), "wer": 21.5, "spk_sim": 0.8}))


@pytest.fixture
def experiment(tmp_path):
    """A recipe dir after stage 11: data/{others,realdev}, exp/softvc_{soft,discrete}/convert_*/{wav,score}, the
    target wav.scp; sources at 22.05 kHz (others) and 16 kHz (realdev, converted by the soft model only)."""
    root = tmp_path / "recipe"
    wavs = root / "downloads"
    wavs.mkdir(parents=True)
    sets = {"others": (SPEAKERS, 22050), "realdev": ({"real1": ["real1_a"]}, 16000)}
    for dset, (speakers, sr) in sets.items():
        utts = [u for us in speakers.values() for u in us]
        scp = {}
        for i, utt in enumerate(utts):
            scp[utt] = wavs / f"{utt}.wav"
            sf.write(scp[utt], _tone(0.5, sr, 120 + 20 * i, i), sr, subtype="PCM_16")
        _scp(root / "data" / dset / "wav.scp", scp)
        _scp(root / "data" / dset / "utt2spk", {u: s for s, us in speakers.items() for u in us})
        if dset == "others":
            _scp(root / "data" / dset / "text", {u: TEXT[u] for u in utts})
        for j, kind in enumerate(("soft", "discrete")):
            if dset == "realdev" and kind == "discrete":
                continue
            convert = root / "exp" / f"softvc_{kind}" / f"convert_{dset}"
            (convert / "wav").mkdir(parents=True)
            for i, utt in enumerate(utts):
                sf.write(convert / "wav" / f"{utt}.wav", _tone(0.48, 16000, 200 + 10 * i, 100 * j + i), 16000)
            _scores(convert / "score" / "scores.csv", utts, j)
    target = {f"LJ001-000{i}": wavs / f"LJ001-000{i}.wav" for i in (1, 2)}
    for i, path in enumerate(target.values()):
        sf.write(path, _tone(0.6, 22050, 220, 50 + i), 22050)
    _scp(root / "exp" / "convert_target_wav.scp", target)
    return root


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [(tag, value) for name, value in attrs if name in ("src", "href")]


CHECK = """<script>
window.addEventListener("load", async () => {
  const settle = (el, ok, bad) => new Promise((done) => {
    if (ok(el)) return done(true);
    if (bad(el)) return done(false);
    el.addEventListener(el.tagName === "AUDIO" ? "loadedmetadata" : "load", () => done(ok(el)), { once: true });
    el.addEventListener("error", () => done(false), { once: true });
    setTimeout(() => done(ok(el)), 5000);
  });
  const audioOk = (a) => !a.error && a.readyState >= 1 && a.duration > 0 && isFinite(a.duration);
  const imgOk = (i) => i.complete && i.naturalWidth > 0;
  const count = async (sel, ok, bad) => {
    const els = [...document.querySelectorAll(sel)];
    const res = await Promise.all(els.map((el) => settle(el, ok, bad)));
    return `${res.filter(Boolean).length}/${els.length}`;
  };
  const audioBad = (a) => a.error !== null, imgBad = (i) => i.complete && i.naturalWidth === 0;
  document.body.dataset.audioOk = await count("audio:not([data-probe])", audioOk, audioBad);
  document.body.dataset.imgOk = await count("img:not([data-probe])", imgOk, imgBad);
  document.body.dataset.probes = await count("[data-probe]", (e) => (e.tagName === "AUDIO" ? audioOk : imgOk)(e),
    (e) => (e.tagName === "AUDIO" ? audioBad : imgBad)(e));
  document.body.dataset.checked = "yes";
});
</script>
<audio data-probe preload="metadata" src="audio/no-such.wav"></audio><img data-probe src="mel/no-such.png" alt="">
"""


def _chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("chromium not found: the samples page is checked in a headless browser (scripts/setup.sh installs it)")


def _browser_check(page, profile):
    """Open a copy of ``page`` with CHECK injected in headless chromium; the checker's results from the DOM."""
    probe = page.with_name("browser_check.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"), encoding="utf-8")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]
    args += ["--virtual-time-budget=10000", "--no-first-run", f"--user-data-dir={profile}", "--dump-dom"]
    proc = subprocess.run([_chromium(), *args, probe.as_uri()], capture_output=True, text=True, timeout=60)
    probe.unlink()
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert proc.returncode == 0 and body, proc.stderr[-3000:]
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', body[1]))


def test_samples_page(experiment, tmp_path):
    out = experiment / "samples"
    exp, data, target = experiment / "exp", experiment / "data", experiment / "exp" / "convert_target_wav.scp"
    proc = run_cli(CLI, exp, data, "--target_scp", target, "--out_dir", out, "--per_speaker", 2, check=True)
    assert (out / "index.html").is_file(), proc.stderr
    page = (out / "index.html").read_text(encoding="utf-8")

    parser = _Links()
    parser.feed(page)
    assert not {"script", "link", "iframe"} & set(parser.tags)  # nothing loaded from elsewhere, no script
    links = [value for _, value in parser.links]
    for link in links:
        parts = urlsplit(link)
        assert not parts.scheme and not parts.netloc and not link.startswith("/"), link
        assert ".." not in Path(unquote(parts.path)).parts, link
        assert (out / unquote(parts.path)).is_file(), link
    audio = [unquote(v) for tag, v in parser.links if tag == "audio"]
    images = [unquote(v) for tag, v in parser.links if tag == "img"]
    # target + others (2 speakers x 2 utterances x source, soft, discrete) + realdev (1 x source, soft)
    assert len(audio) == len(images) == 1 + 2 * 2 * 3 + 2
    assert "audio/target/LJ001-0001.wav" in audio
    assert "audio/others/discrete/spkA_002.wav" in audio and "audio/others/soft/spkA_003.wav" not in audio
    for rel in audio:
        info = sf.info(out / rel)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16000, 1), rel
        assert info.frames > 0
    source = sf.read(out / "audio/others/source/spkA_001.wav")[0]
    assert abs(len(source) - 8000) <= 1  # 0.5 s at 22.05 kHz, resampled to 16 kHz
    for rel in images:
        assert (out / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", rel

    # the scores and transcripts beside the audio
    with open(exp / "softvc_discrete/convert_others/score/scores.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["utt"] == "spkB_001")
    for shown in (f"WER {float(row['wer']):.1f} %", f"sim. to target {float(row['spk_sim']):.3f}"):
        assert shown in page
    assert f"sim. to source {float(row['spk_sim_src']):.3f}" in page
    assert f"DNSMOS {float(row['dnsmos_ovrl']):.2f}" in page and "hyp of spkB_001" in page
    assert TEXT["spkA_002"] in page and TEXT["spkA_003"] not in page
    assert page.count("<h3>") == 3 and "realdev" in page and "21.5" in page  # per-speaker tables, summaries

    # zipped, moved, unpacked elsewhere: still complete in a real browser
    archive = shutil.make_archive(str(tmp_path / "samples"), "zip", out)
    shutil.rmtree(out)
    moved = tmp_path / "elsewhere"
    shutil.unpack_archive(archive, moved)
    result = _browser_check(moved / "index.html", tmp_path / "chromium-profile")
    assert result.get("checked") == "yes", result
    assert result["audio-ok"] == f"{len(audio)}/{len(audio)}", result
    assert result["img-ok"] == f"{len(images)}/{len(images)}", result
    assert result["probes"] == "0/2", result  # the check tells a broken link: missing audio and image fail


def test_samples_bad_inputs(experiment, tmp_path):
    """Missing experiment, data and target files: one-line errors naming the file (the CLI once, then in-process)."""
    from espnet_softvc.scoring.samples import write_samples
    from espnet_softvc.utils.errors import UserError

    exp, data, target = experiment / "exp", experiment / "data", experiment / "exp" / "convert_target_wav.scp"
    out = tmp_path / "out"
    proc = run_cli(CLI, tmp_path / "empty_exp", data, "--target_scp", target, "--out_dir", out)
    assert_user_error(proc, str(tmp_path / "empty_exp"))
    with pytest.raises(UserError, match="convert_nosuchset"):
        write_samples(exp, data, target, out, sets=["nosuchset"])
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "missing.scp"))):
        write_samples(exp, data, tmp_path / "missing.scp", out)
    with pytest.raises(UserError, match="no utterance LJ999"):
        write_samples(exp, data, target, out, target_utt="LJ999")
    (data / "realdev" / "utt2spk").unlink()
    with pytest.raises(UserError, match=re.escape(str(data / "realdev" / "utt2spk"))):
        write_samples(exp, data, target, out)
    (data / "realdev" / "wav.scp").unlink()
    with pytest.raises(UserError, match=re.escape(str(data / "realdev" / "wav.scp"))):
        write_samples(exp, data, target, out)
    assert not (out / "index.html").exists()
