# Headless Chromium and chromedriver for the admin pages' browser tests,
# sourced by scripts/test.
#
#   browser_install   installs Debian's chromium and chromium-driver if
#                     chromedriver is missing (the tests start both
#                     themselves, on 127.0.0.1, with a fresh profile).

browser_install() {
  if command -v chromedriver >/dev/null && [ -x /usr/bin/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "Chromium is not installed; run as root or: apt-get install chromium chromium-driver" >&2
    return 1
  fi
  echo "== installing Chromium and chromedriver from Debian's packages"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
}
