"""dsmath_jax: DeepSeekMath (Shao et al., 2024) end to end in JAX."""
import setuptools

setuptools.setup(
    name="dsmath_jax",
    version="0.1.0",
    description="DeepSeekMath in JAX: corpus, pretraining, SFT, reward models, GRPO, evaluation.",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["dsmath_jax", "dsmath_jax.*", "configs"]),
    package_data={"dsmath_jax": ["assets/**/*", "assets/*"]},
    include_package_data=True,
    install_requires=[
        "jax>=0.7,<=0.10.2",
        "flax>=0.10",
        "optax",
        "orbax-checkpoint",
        "ml-collections",
        "grain",
        "tensorflow-datasets",
        "array-record",
        "absl-py",
        "numpy",
        "sentencepiece",
        "tokenizers",
        "safetensors",
        "gguf",
        "sympy",
        "math-verify",
        "latex2sympy2_extended",
        "tensorboardX",
        "matplotlib",
        "tqdm",
        "fsspec",
        "jinja2",
        # The corpus stages (quickstart's first stage needs them, so they are not an extra).
        "fasttext-numpy2-wheel",
        "warcio",
        "datasketch",
    ],
    extras_require={
        # Common Crawl scale: read inputs from gs:// and s3:// through fsspec.
        "corpus": ["gcsfs", "s3fs"],
        # --workdir=gs://... (README, "Workdirs anywhere"); orbax writes the arrays through tensorstore.
        "gcs": ["gcsfs"],
        "beam": ["apache-beam"],
        "notebooks": ["jupyter", "nbclient", "nbformat", "ipykernel"],
        "test": [
            "pytest",
            "pytest-xdist",
            "torch==2.13.0",
            "transformers",
            "accelerate",
            "nbclient",
            "nbformat",
            "ipykernel",
            "apache-beam",
            # tests/test_workdir_paths.py: a gs:// workdir against a local GCS emulator
            "gcsfs",
            "gcp-storage-emulator",
        ],
    },
)
