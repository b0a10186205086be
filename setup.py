from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="espnet-softvc",
    version="0.1.0",
    description="Soft-VC acoustic model and a denoising postnet as an ESPnet2 plugin",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["espnet_softvc", "espnet_softvc.*"]),
    package_data={"espnet_softvc": ["data/*.txt"]},
    install_requires=[
        "espnet==202511",
        "torchaudio==2.11.0",
        "kaldiio",
        "soundfile",
        "scikit-learn",
        "librosa",
        "noisereduce",
        "pesq",
        "pystoi",
        "speechmos",
        "pocketsphinx==5.1.1",
        "jiwer",
        "webrtcvad-wheels",
        "onnxruntime",
        "tqdm",
        "pyyaml",
        "tensorboard",
        "matplotlib",
    ],
    extras_require={"test": ["pytest", "ruff"]},
    entry_points={
        "console_scripts": [
            "softvc-mels=espnet_softvc.bin.mels:main",
            "softvc-generate=espnet_softvc.bin.generate:main",
            "softvc-encode=espnet_softvc.bin.encode:main",
            "softvc-train-units=espnet_softvc.bin.train_units:main",
            "softvc-dump-units=espnet_softvc.bin.dump_units:main",
            "softvc-train=espnet_softvc.bin.train:main",
            "softvc-checkpoint=espnet_softvc.bin.checkpoint:main",
            "softvc-pack=espnet_softvc.bin.pack:main",
            "softvc-denoise=espnet_softvc.bin.denoise:main",
            "softvc-baseline-data=espnet_softvc.bin.baseline_data:main",
            "softvc-results=espnet_softvc.bin.results:main",
            "softvc-score=espnet_softvc.bin.score:main",
        ]
    },
)
