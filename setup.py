from pathlib import Path

from setuptools import Extension, find_packages, setup

# The decoder loop of softvc/fast.py in C++ (plain CPython API, no torch headers: torch is not importable yet when a
# fresh `pip install -e .` runs this file). optional: without a compiler the install goes on and fast.py runs its
# TorchScript loop (same numerics).
decode_ext = Extension(
    "espnet_softvc.softvc._decode_ext",
    ["espnet_softvc/softvc/csrc/decode.cpp"],
    extra_compile_args=["-O3", "-std=c++17", "-pthread", "-ffp-contract=off"],
    extra_link_args=["-pthread"],
    language="c++",
    optional=True,
)

setup(
    name="espnet-softvc",
    version="0.1.0",
    description="Soft-VC acoustic model and a denoising postnet as an ESPnet2 plugin",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["espnet_softvc", "espnet_softvc.*"]),
    package_data={"espnet_softvc": ["data/*.txt"]},
    ext_modules=[decode_ext],
    install_requires=[
        "espnet==202511",
        "torchaudio==2.11.0",
        "kaldiio",
        "soundfile",
        "scikit-learn",
        "librosa",
        "tqdm",
        "pyyaml",
        "tensorboard",
        "matplotlib",
    ],
    # RNNoise and DeepFilterNet3 (the fusion denoiser, softvc-convert --denoise) and the resemblyzer judge are in no
    # extra: they install with --no-deps (scripts/setup.sh; espnet_softvc/postnet/external.py, scoring/judges.py)
    extras_require={
        "test": ["pytest", "pytest-xdist", "pytest-timeout", "ruff"],  # xdist: 2 workers; timeout: pytest.ini
        # evaluation only: the outside judges of espnet_softvc/scoring/judges.py (pocketsphinx, jiwer; speechmos for
        # DNSMOS and the onnxruntime it runs on but does not declare; webrtcvad for resemblyzer) and the metrics and
        # baseline of research/denoise_eval.py (pesq, pystoi, noisereduce)
        "eval": [
            "pocketsphinx==5.1.1",
            "jiwer",
            "speechmos",
            "onnxruntime",
            "webrtcvad-wheels",
            "pesq",
            "pystoi",
            "noisereduce",
        ],
    },
    entry_points={
        "console_scripts": [
            "softvc-mels=espnet_softvc.bin.mels:main",
            "softvc-generate=espnet_softvc.bin.generate:main",
            "softvc-encode=espnet_softvc.bin.encode:main",
            "softvc-train-units=espnet_softvc.bin.train_units:main",
            "softvc-dump-units=espnet_softvc.bin.dump_units:main",
            "softvc-train=espnet_softvc.bin.train:main",
            "softvc-checkpoint=espnet_softvc.bin.checkpoint:main",
            "softvc-convert=espnet_softvc.bin.convert:main",
            "softvc-pack=espnet_softvc.bin.pack:main",
            "softvc-denoise=espnet_softvc.bin.denoise:main",
            "softvc-baseline-data=espnet_softvc.bin.baseline_data:main",
            "softvc-results=espnet_softvc.bin.results:main",
            "softvc-score=espnet_softvc.bin.score:main",
            "softvc-score-speakers=espnet_softvc.bin.score_speakers:main",
            "softvc-samples=espnet_softvc.bin.samples:main",
        ]
    },
)
