"""What every framequeue image is, whichever way it is built: the Dockerfiles at the repository root and the
offline builder (tools.image.build) both follow these values, and tests/unit/test_image_recipe.py checks that
the Dockerfiles say the same, so the two cannot drift."""

from __future__ import annotations

#: the Debian release the CPU image is built on (debian:bookworm-slim, or debootstrap's suite)
SUITE = "bookworm"
#: the Python of SUITE's python3 package: the only one the image can have
PYTHON = "3.11"
#: Debian packages the image runs with (the wheels bundle FFmpeg, OpenCV's and ONNX Runtime's libraries)
RUNTIME_PACKAGES = ("python3", "ca-certificates")
#: Debian packages only the build needs (the venv is made by Debian's python3 -m venv)
BUILD_PACKAGES = ("python3-venv",)

USER = "framequeue"
UID = 10001
GID = 10001
#: the user's home, the working directory and FQ_HOME (the embedded deployment's folder)
HOME = "/var/lib/framequeue"
#: the virtual environment holding framequeue and its dependencies
VENV = "/opt/framequeue/venv"
#: the model repository (FQ_MODEL_REPO): mounted there, or baked there at build time
MODEL_REPO = "/models"

#: the extras the CPU image installs: every backend and runtime ([cpu] is ONNX Runtime's CPU wheel)
EXTRAS = "cpu,postgres,redis,rabbitmq,nats,s3,serve,openvino,tflite"
#: the GPU image's: onnxruntime-gpu in place of onnxruntime, and no OpenVINO (a CPU runtime)
EXTRAS_GPU = "gpu,postgres,redis,rabbitmq,nats,s3,serve,tflite"

ENTRYPOINT = ("framequeue",)
CMD = ("--help",)
ENV = {
    "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "VIRTUAL_ENV": VENV,
    "FQ_HOME": HOME,
    "FQ_MODEL_REPO": MODEL_REPO,
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "LANG": "C.UTF-8",
}
#: the `User` of the image config: numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd
USER_SPEC = f"{UID}:{GID}"
