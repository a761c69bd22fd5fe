"""keras_glimpse: active vision (glimpse models trained with RL) for Keras 3."""

import pathlib

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).parent


class BuildWithRegistry(build_py):
    """Copies the top-level registry/*.toml into the package as keras_glimpse/registry/."""

    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "keras_glimpse" / "registry"
        target.mkdir(parents=True, exist_ok=True)
        for toml in sorted((ROOT / "registry").glob("*.toml")):
            self.copy_file(str(toml), str(target / toml.name))


def _version():
    for line in (ROOT / "keras_glimpse" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return "0.1.0"


setup(
    name="keras_glimpse",
    version=_version(),
    description="Active vision for Keras 3: glimpse models that learn where to look.",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_namespace_packages(include=["keras_glimpse", "keras_glimpse.*"],
                                     exclude=["keras_glimpse.pretrained"]),
    include_package_data=False,
    # Trained weights of the reproduced presets (keras_glimpse.weights).
    package_data={"keras_glimpse": ["pretrained/*.weights.h5", "pretrained/index.json"]},
    cmdclass={"build_py": BuildWithRegistry},
    install_requires=[
        # Mutually compatible pins: TFP 0.25 needs tf-keras matching TF 2.21;
        # Keras 3.15 is the Keras 3 release that TF 2.21 is tested with.
        "tensorflow==2.21.*",
        "tf-keras==2.21.*",
        "keras==3.15.*",
        "tensorflow-probability==0.25.*",
        "numpy==2.4.*",  # the tested range; Keras 3.15 + NumPy 2.4 (see tests/conftest.py)
        "pandas",
        "absl-py",
    ],
    extras_require={
        # TensorBoard is no longer a TensorFlow dependency (TF 2.21); the apps
        # write TensorBoard logs when it is installed.
        "viz": ["matplotlib", "Pillow", "tensorboard==2.21.*"],
        "data": ["mlxtend"],
        # data.name = "tfds:<dataset>" (keras_glimpse.data.tfds); 4.9 works with TF 2.21
        # and installs no other tensorflow / keras / numpy.
        "tfds": ["tensorflow-datasets==4.9.*"],
        "test": ["pytest", "pytest-xdist", "tensorflow-datasets==4.9.*"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
