# Shared helpers for the setup scripts (sourced, not run).

# Installs Debian packages, running `apt-get update` at most once per script run.
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ -z "${IDRA_APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq
    IDRA_APT_UPDATED=1
  fi
  echo "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
