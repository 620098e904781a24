# The test runner's virtualenv, outside the repo and rebuilt when the
# requirements change. Sourced by ./lab.
# shellcheck shell=bash

ensure_venv() {
  local fp dir
  fp=$(cat "$LAB_REPO/requirements.txt" "$LAB_REPO/requirements-dev.txt" | sha256sum | cut -c1-12)
  dir=$LAB_CACHE/venv-$fp
  if [ ! -x "$dir/bin/pytest" ]; then
    step "creating the test virtualenv in $dir (once)"
    rm -rf "$LAB_CACHE"/venv-*
    mkdir -p "$LAB_CACHE"
    /usr/bin/python3 -m venv "$dir"
    { "$dir/bin/pip" install -q -U pip && "$dir/bin/pip" install -q -r "$LAB_REPO/requirements-dev.txt"; } \
      >"$LAB_CACHE/venv.log" 2>&1 \
      || { rm -rf "$dir"; die "installing the test requirements failed" "see $LAB_CACHE/venv.log"; }
  fi
  LAB_VENV=$dir
}
