from setuptools import find_packages, setup

setup(
    name="espnet-softvc",
    version="0.1.0",
    description="Soft-VC acoustic model and a denoising postnet as an ESPnet2 plugin",
    long_description=open("README.md").read(),
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
        "tqdm",
        "pyyaml",
        "tensorboard",
        "matplotlib",
    ],
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "softvc-mels=espnet_softvc.bin.mels:main",
            "softvc-generate=espnet_softvc.bin.generate:main",
        ]
    },
)
