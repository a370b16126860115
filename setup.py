"""sr300-liveness: multi-modal face liveness SDK for the Intel RealSense SR300."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

EXTRAS = {
    # The last librealsense release that still drives an SR300 (and has a cp311 wheel).
    "camera": ["pyrealsense2==2.54.2.5684"],
    # torch 2.13.0 CPU is what these machines install from a local file; on a GPU box install
    # the matching CUDA build first and this pin is already satisfied.
    "train": ["torch==2.13.0", "onnx>=1.16", "onnxscript>=0.3", "safetensors>=0.4", "matplotlib>=3.8"],
    # The 24-member ensemble runs on Ray (a local cluster by default, --address joins one).
    "ensemble": ["ray[train]>=2.9"],
    # Precision in the ONNX graph (FP16 conversion, INT8 Q/DQ through ONNX Runtime's quantizer).
    "quantize": ["onnx>=1.16"],
    # The kiosk app: a local web server the browser shows in kiosk mode.
    "kiosk": ["flask>=3"],
    # The independent evaluation renderer (calibration/independent): least squares and scikit-image's
    # real photo (astronaut) and room pictures.
    "independent": ["scikit-image>=0.22", "scipy>=1.10"],
    # The device engine: TensorRT (JetPack ships it; elsewhere NVIDIA's index) and CUDA memory through
    # cuda-python (wheels for CUDA 12 and 13); pycuda also works when it is the one installed.
    "tensorrt": ["tensorrt>=10", "cuda-python>=12"],
    "dev": ["pytest>=8", "hypothesis>=6", "scikit-image>=0.22", "playwright>=1.40"],
}
# Everything that installs on a CPU-only machine (TensorRT cannot: see docs).
EXTRAS["all"] = (
    EXTRAS["camera"] + EXTRAS["train"] + EXTRAS["ensemble"] + EXTRAS["quantize"] + EXTRAS["kiosk"]
    + EXTRAS["independent"] + EXTRAS["dev"]
)

setup(
    name="sr300-liveness",
    version="0.1.0",
    description="Multi-modal (RGB, IR, depth) face liveness for the Intel RealSense SR300",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["sdk", "sdk.*", "training", "training.*", "calibration", "calibration.*"]),
    package_data={
        "sdk": [
            "detect/models/*.tflite",
            "detect/models/LICENSE*",
            "detect/models/NOTICE.md",
            "bundles/*/*",
            "kiosk/templates/*.html",
            "kiosk/static/*",
        ],
        # real face data of the independent evaluation renderer (licences beside it)
        "calibration": ["independent/data/*"],
    },
    include_package_data=True,
    install_requires=[
        "numpy>=1.26",
        # mediapipe depends on opencv-contrib-python; a second OpenCV distribution would clash,
        # so this is the only one the project asks for.
        "opencv-contrib-python>=4.9",
        "mediapipe==1.2.3",
        "onnxruntime>=1.18",
        "tqdm>=4.66",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["sr300-liveness=sdk.cli:main"]},
)
