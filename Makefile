# One-command environment for robot_instseg on a machine without an apt ROS install.
#   make setup   .venv with pinned deps + colcon build of both packages into install/
#   make test    the lint and type gate (ruff, mypy on engine/), then the whole test suite
#   make lint    the gate alone
#   make demo    the main job on the bundled defaults
#   make label-tools  the labelling round trip's outside components: Label Studio (.venv-labelstudio),
#                  datumaro (.venv-datumaro), each in its own venv, and Debian's chromium for the browser check
#   make setup-ray  Ray Data (requirements-ray.txt) into .venv, for the offline verbs' --ray; `make test` runs it
#   make setup-gpu  GPU wheels (onnxruntime-gpu, tensorrt, CUDA torch) on a GPU machine; never in CI
#   make shell   a bash inside the environment (or: source scripts/env.sh)
SHELL := /bin/bash
.SHELLFLAGS := -e -o pipefail -c
PYTHON ?= python3
VENV := .venv
DEPS_STAMP := $(VENV)/.deps-installed
BUILD_STAMP := install/.build-complete
ENV := source scripts/env.sh &&
BUILD_INPUTS := package.xml setup.py setup.cfg resource/robot_instseg \
	robot_instseg_msgs/package.xml robot_instseg_msgs/CMakeLists.txt \
	$(wildcard robot_instseg_msgs/msg/*.msg launch/* config/* models/*)

.PHONY: setup build test lint demo shell clean distclean bench-deps setup-gpu setup-ray label-tools browser

setup: $(BUILD_STAMP)

$(DEPS_STAMP): requirements.txt requirements-nodeps.txt scripts/fix_wheel_cmake_paths.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	$(VENV)/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(VENV)/bin/python scripts/fix_wheel_cmake_paths.py
	touch $(VENV)/COLCON_IGNORE
	touch $@

$(BUILD_STAMP): $(DEPS_STAMP) $(BUILD_INPUTS)
	$(MAKE) build
	touch $@

# The ByteTrack baseline of `robot-instseg eval --track` (benchmark only; see requirements-bench.txt).
bench-deps: $(DEPS_STAMP)
	$(VENV)/bin/python -m pip install --quiet -r requirements-bench.txt
	$(VENV)/bin/python -m pip install --quiet --no-deps supervision==0.26.1

# The labelling round trip's components, each in its own venv (their Django / opencv pins must not touch ours).
LS_STAMP := .venv-labelstudio/.installed
DM_STAMP := .venv-datumaro/.installed
$(LS_STAMP): requirements-labelstudio.txt
	test -x .venv-labelstudio/bin/python || $(PYTHON) -m venv .venv-labelstudio
	.venv-labelstudio/bin/python -m pip install --quiet --upgrade pip
	.venv-labelstudio/bin/python -m pip install --quiet -r requirements-labelstudio.txt
	touch $@
$(DM_STAMP): requirements-datumaro.txt
	test -x .venv-datumaro/bin/python || $(PYTHON) -m venv .venv-datumaro
	.venv-datumaro/bin/python -m pip install --quiet --upgrade pip
	.venv-datumaro/bin/python -m pip install --quiet -r requirements-datumaro.txt
	touch $@
# Debian's chromium for the task-page screenshot test; without root or the package the test skips and says why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		chromium chromium-driver >/dev/null) || echo "make browser: chromium not installed (needs root and Debian's packages)"; }
label-tools: $(LS_STAMP) $(DM_STAMP) browser

# Ray Data for `--ray` on run / bag2coco / eval --model: an extra, never part of `make setup` (the node is Ray-free).
RAY_STAMP := $(VENV)/.ray-installed
$(RAY_STAMP): $(DEPS_STAMP) requirements-ray.txt
	$(VENV)/bin/python -m pip install --quiet -r requirements-ray.txt
	touch $@
setup-ray: $(RAY_STAMP)

# GPU machines only (requirements-gpu.txt; README "GPU and Jetson"); never run by `make setup` or CI.
# TORCH_CUDA names the PyTorch wheel index for your driver's CUDA (cu126, cu128, cu130, ...).
TORCH_CUDA ?= cu128
setup-gpu: $(DEPS_STAMP)
	$(VENV)/bin/python -m pip uninstall --quiet -y onnxruntime torch
	$(VENV)/bin/python -m pip install --quiet -r requirements-gpu.txt
	$(VENV)/bin/python -m pip install --quiet --index-url https://download.pytorch.org/whl/$(TORCH_CUDA) torch==2.13.0
	$(VENV)/bin/python -c "import torch, onnxruntime as o; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| onnxruntime providers', o.get_available_providers())"

build: $(DEPS_STAMP)
	$(ENV) colcon --log-base log build --symlink-install \
		--base-paths . robot_instseg_msgs \
		--event-handlers console_cohesion- summary+ \
		--cmake-args -DPython3_EXECUTABLE=$$VIRTUAL_ENV/bin/python -DBUILD_TESTING=OFF
	# The host kernels (robot_instseg/jit.py) compiled once into their cache, not on a node's first frame.
	$(ENV) python -m robot_instseg.jit

test: setup lint label-tools setup-ray
	$(ENV) python -m pytest -q test

lint: setup
	$(ENV) ruff check --no-cache robot_instseg scripts test
	$(ENV) mypy

demo: setup
	$(ENV) bash scripts/demo.sh

shell: setup
	bash --rcfile <(echo 'source ~/.bashrc 2>/dev/null; source scripts/env.sh; PS1="(robot_instseg) $$PS1"') -i

clean:
	rm -rf build install log

distclean: clean
	rm -rf $(VENV)
